"""The users a batch scores: every user of the published offline store, or the user_ids of a file."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from income.data.schema import ENTITY_KEY, FEATURE_TABLES
from income.features.offline_store import current


class PopulationError(ValueError):
    """The population file is missing, unreadable or lacks usable user_ids."""


def population_from_offline_store(spark, offline_root: str):
    """Distinct user_id over the published feature tables (a Spark DataFrame with one column)."""
    published = current(offline_root)
    frames = [spark.read.parquet(published.uri(t)).select(ENTITY_KEY) for t in FEATURE_TABLES]
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union.distinct()


def population_from_file(uri: str) -> pd.DataFrame:
    """The distinct user_ids of a parquet or CSV file with a `user_id` column, sorted."""
    is_csv = uri.lower().endswith((".csv", ".csv.gz"))
    local = uri.removeprefix("file://")
    if "://" not in local and not os.path.exists(local):
        raise PopulationError(f"population file {uri} does not exist")
    try:
        frame = pd.read_csv(uri) if is_csv else pd.read_parquet(uri)
    except Exception as error:  # noqa: BLE001 - pandas/pyarrow raise many types
        kind = "CSV" if is_csv else "parquet"
        raise PopulationError(f"cannot read population file {uri} as {kind}: {error}") from error
    if ENTITY_KEY not in frame.columns:
        raise PopulationError(
            f"population file {uri} has no {ENTITY_KEY!r} column (columns: {list(frame.columns)})"
        )
    ids = pd.to_numeric(frame[ENTITY_KEY], errors="coerce")
    bad = ids.isna() | (ids != ids.round())
    if bad.any():
        examples = frame.loc[bad, ENTITY_KEY].head(3).tolist()
        raise PopulationError(
            f"population file {uri}: {int(bad.sum())} {ENTITY_KEY} values are not integers, e.g. {examples}"
        )
    users = pd.DataFrame({ENTITY_KEY: np.unique(ids.astype("int64").to_numpy())})
    if users.empty:
        raise PopulationError(f"population file {uri} holds no {ENTITY_KEY}")
    return users
