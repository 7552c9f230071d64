"""The offline store publishes a run's tables together or not at all, and keeps what others need."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from income.data.schema import ENTITY_KEY, TIMESTAMP
from income.features.offline_store import (
    NoPublishedFeatureSet,
    TableInfo,
    clone_table,
    collect_garbage,
    current,
    new_version,
    publish,
    publish_pandas_tables,
    seal,
    version_uri,
    versions,
    write_table,
)
from income.platform.files import parquet_files, write_parquet_atomically, write_text_atomically

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def frame(users: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            ENTITY_KEY: pd.Series(users, dtype="int64"),
            TIMESTAMP: pd.Series([pd.Timestamp("2025-06-01", tz="UTC")] * len(users)).astype(
                "datetime64[us, UTC]"
            ),
            "age": pd.Series([30 + u for u in users], dtype="int64"),
        }
    )


def read(uri: str) -> pd.DataFrame:
    return pd.read_parquet(uri).sort_values(ENTITY_KEY).reset_index(drop=True)


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> str:
    """The store's root: a local folder, or a prefix in a bucket of the test's S3 server (moto)."""
    if request.param == "local":
        return str(tmp_path)
    return f"{request.getfixturevalue('s3_bucket')}/offline_store"


def test_nothing_is_visible_before_the_first_publication(root):
    with pytest.raises(NoPublishedFeatureSet, match="run the feature pipeline first"):
        current(root)


def test_a_sealed_version_is_invisible_until_published(root):
    first = publish_pandas_tables(root, {"demographic": frame([1, 2]), "labels": frame([1])})
    version = new_version()
    seal(root, version, [TableInfo("demographic", f"{version_uri(root, version)}/demographic", 5)])

    assert current(root).version == first.version
    assert current(root).tables["labels"].rows == 1
    assert publish(root, version).version == current(root).version == version


def test_every_table_of_a_version_is_published_at_once(root):
    old = publish_pandas_tables(root, {"demographic": frame([1]), "labels": frame([1])})
    new = publish_pandas_tables(root, {"demographic": frame([1, 2, 3]), "labels": frame([1, 2])})

    published = current(root)
    assert published.version == new.version != old.version
    assert {name: len(read(published.uri(name))) for name in published.tables} == {
        "demographic": 3,
        "labels": 2,
    }
    assert len(read(old.uri("demographic"))) == 1  # the old version is still there for rebuilds


def test_publishing_an_incomplete_version_is_refused(root):
    with pytest.raises(FileNotFoundError, match="not complete"):
        publish(root, new_version())


def test_garbage_collection_keeps_the_newest_published_and_young_unfinished_versions(root):
    published = [
        publish_pandas_tables(root, {"labels": frame([i])}).version for i in range(4)
    ]  # four publications, oldest first
    old_abandoned = new_version(datetime.now(UTC) - timedelta(days=2))
    young_abandoned = new_version()
    for version in (old_abandoned, young_abandoned):  # runs that died before sealing
        write_parquet_atomically(frame([9]), f"{version_uri(root, version)}/labels/part-0.parquet")

    removed = collect_garbage(root, keep=2, abandoned_after=timedelta(hours=6))

    assert sorted(removed) == sorted([*published[:2], old_abandoned])
    assert versions(root) == sorted([*published[2:], young_abandoned])
    assert current(root).version == published[-1]


def test_garbage_collection_never_removes_the_published_version(root):
    first = publish_pandas_tables(root, {"labels": frame([1])})
    later = publish_pandas_tables(root, {"labels": frame([2])})
    publish(root, first.version)  # rolled back to the first: it is current, though older

    removed = collect_garbage(root, keep=1)

    assert removed == [later.version] and current(root).version == first.version
    with pytest.raises(ValueError, match="at least 1"):
        collect_garbage(root, keep=0)


def test_a_clone_holds_the_data_files_of_its_source_and_no_bookkeeping(root):
    source = publish_pandas_tables(root, {"labels": frame([1, 2])}).uri("labels")
    write_text_atomically(f"{source}/_SUCCESS", "")
    target = f"{version_uri(root, new_version())}/labels"

    clone_table(source, target)

    assert parquet_files(target) == [f"{target}/part-0.parquet"]
    assert read(target).equals(read(source))
    assert parquet_files(source) == [f"{source}/part-0.parquet"]  # the source keeps its files


def test_an_empty_spark_table_keeps_its_columns(spark, tmp_path):
    root = str(tmp_path)
    version = new_version()
    empty = spark.createDataFrame(frame([1])).limit(0)

    info = write_table(empty, root, version, "labels")

    assert info.rows == 0
    back = spark.read.parquet(info.uri)
    assert back.count() == 0
    assert {ENTITY_KEY, TIMESTAMP, "age"} <= set(back.columns)


def test_a_spark_table_is_partitioned_by_event_month(spark, tmp_path):
    root = str(tmp_path)
    info = write_table(spark.createDataFrame(frame([1, 2, 3])), root, new_version(), "demographic")

    assert info.rows == 3
    assert [p.name for p in sorted((tmp_path / "versions").glob("*/demographic/event_month=*"))] == [
        "event_month=202506"
    ]


def test_a_clone_rewrites_only_the_partitions_given_and_leaves_the_previous_version_alone(spark, tmp_path):
    from pyspark.sql import functions as F

    store = tmp_path / ".runtime" / "offline_store"  # a hidden folder, like the demo's
    root = str(store)
    june = spark.createDataFrame(frame([1, 2]))
    july = june.withColumn(TIMESTAMP, F.col(TIMESTAMP) + F.expr("INTERVAL 40 DAYS"))
    first = write_table(june.unionByName(july), root, new_version(), "demographic")
    changed = july.withColumn("age", F.lit(99))

    second = write_table(changed, root, new_version(), "demographic", clone_of=first.uri)

    assert second.rows == 4
    before = spark.read.parquet(first.uri).orderBy(TIMESTAMP, ENTITY_KEY).collect()
    after = spark.read.parquet(second.uri).orderBy(TIMESTAMP, ENTITY_KEY).collect()
    assert [r.age for r in before] == [r.age for r in before[:2]] * 2  # untouched
    assert [r.age for r in after[:2]] == [r.age for r in before[:2]] and [r.age for r in after[2:]] == [
        99,
        99,
    ]
    # June's files are shared (hard links), not copied.
    old = next((store / "versions").glob("*/demographic/event_month=202506/*.parquet"))
    assert old.stat().st_nlink == 2
