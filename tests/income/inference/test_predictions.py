"""Prediction partitions: swapped in whole (interrupted swaps repaired), read back with as_of as a time."""

from __future__ import annotations

import pandas as pd

from income.data.schema import ENTITY_KEY
from income.inference.predictions import (
    AS_OF,
    partition_uri,
    read_predictions,
    staging_uri,
    swap_into_place,
)

FIRST = pd.Timestamp("2026-01-01T00:00:00Z")
SECOND = pd.Timestamp("2026-01-02T06:30:00.000001Z")


def scores(users: list[int]) -> pd.DataFrame:
    return pd.DataFrame({ENTITY_KEY: pd.Series(users, dtype="int64"), "probability": 0.5})


def users(uri: str) -> list[int]:
    return sorted(pd.read_parquet(uri)[ENTITY_KEY].tolist())


def test_an_interrupted_swap_is_restored_before_the_next_one(spark, tmp_path):
    """A run that died between its two renames left the old partition only as a trash copy."""
    target = tmp_path / "predictions" / "as_of=2026"
    staging_dir = tmp_path / "predictions" / "_staging"
    spark.createDataFrame(scores([1])).write.parquet(str(staging_dir / "as_of=2026-deadrun-replaced"))
    assert not target.exists()
    spark.createDataFrame(scores([2, 3])).write.parquet(str(staging_dir / "as_of=2026-newrun"))

    swap_into_place(spark, str(staging_dir / "as_of=2026-newrun"), str(target))

    assert users(str(target)) == [2, 3]
    assert not any(staging_dir.iterdir())  # the restored copy was the old partition: replaced, then removed


def test_a_swap_replaces_its_partition_and_leaves_the_others(spark, tmp_path):
    root = str(tmp_path / "predictions")
    for as_of, batch in [(FIRST, [1, 2]), (SECOND, [3]), (FIRST, [4, 5, 6])]:
        staging = staging_uri(root, as_of)
        spark.createDataFrame(scores(batch)).write.parquet(staging)
        swap_into_place(spark, staging, partition_uri(root, as_of))

    assert partition_uri(root, SECOND).endswith("/as_of=2026-01-02T06-30-00.000001Z")
    assert users(partition_uri(root, FIRST)) == [4, 5, 6]
    assert not any((tmp_path / "predictions" / "_staging").iterdir())
    everything = read_predictions(root)
    assert everything.groupby(AS_OF)[ENTITY_KEY].apply(sorted).to_dict() == {FIRST: [4, 5, 6], SECOND: [3]}
    assert str(everything[AS_OF].dtype) == "datetime64[us, UTC]"
    one = read_predictions(root, SECOND)
    assert one[ENTITY_KEY].tolist() == [3] and one[AS_OF].tolist() == [SECOND]
