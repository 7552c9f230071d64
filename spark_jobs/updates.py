"""What one more batch changes in the feature and label tables, partition by partition.

A batch adds census records and labels, and time moves from the previous run's `as_of` to
this run's. Census views gain one row per new record; the label table gains the batch's
labels; the history view is recomputed for the users it touches: users with a new record
(from that record's time on, which also covers a late record older than the user's
latest), and users one of whose records left the 365-day window between the two `as_of`s
(from that moment on). Every other row stays as it was.

`update_feature_tables` returns, per table, the complete new content of each month
partition it touches (unchanged rows of those months included), ready for a dynamic
partition overwrite on a copy of the previous version; the union of the untouched
partitions and these equals a full rebuild (tests/spark_jobs/test_updates.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from income.data.schema import ENTITY_KEY, FEATURE_TABLES, LABEL_TABLE, PARTITION_COLUMN, TIMESTAMP
from spark_jobs.demographic import demographic_features
from spark_jobs.history import expiry_times, history_features
from spark_jobs.labels import label_table
from spark_jobs.occupation import occupation_features
from spark_jobs.relationship import relationship_features

_CENSUS_JOBS = {
    "demographic": demographic_features,
    "relationship": relationship_features,
    "occupation": occupation_features,
}


def census_tables(records: DataFrame) -> dict[str, DataFrame]:
    """The views with one row per census record (all but history)."""
    return {name: job(records) for name, job in _CENSUS_JOBS.items()}


def event_month(timestamp: Column) -> Column:
    """The partition of a row: yyyymm of its event time (the session time zone is UTC)."""
    return (F.year(timestamp) * 100 + F.month(timestamp)).cast("int")


@dataclass(frozen=True)
class FeatureUpdate:
    """Per table, the full new content of the month partitions that changed (with PARTITION_COLUMN)."""

    partitions: dict[str, DataFrame]
    changed_users: DataFrame  # user_id: whose feature rows changed (the online store rewrites them)


def _with_month(frame: DataFrame) -> DataFrame:
    return frame.withColumn(PARTITION_COLUMN, event_month(F.col(TIMESTAMP)))


def _appended(previous: DataFrame, new_rows: DataFrame) -> DataFrame:
    """The previous rows of the months `new_rows` fall in, plus `new_rows`."""
    new_rows = _with_month(new_rows)
    months = new_rows.select(PARTITION_COLUMN).distinct()
    kept = previous.join(F.broadcast(months), PARTITION_COLUMN, "left_semi").select(*previous.columns)
    return kept.unionByName(new_rows.select(*kept.columns))


def update_feature_tables(
    records: DataFrame,
    new_records: DataFrame,
    previous: dict[str, DataFrame],
    previous_as_of: datetime,
    as_of: datetime,
    new_label_rows: DataFrame | None = None,
) -> FeatureUpdate:
    """The partitions a batch changes.

    `records`: every record, the new ones included; `new_records`: the batch's; `previous`:
    the previous version's tables (with PARTITION_COLUMN); `previous_as_of` <= `as_of`.
    """
    if as_of < previous_as_of:
        raise ValueError(f"as_of {as_of} is before the previous version's {previous_as_of}")
    # Per touched user, the first moment whose history changes.
    left_window = records.select(ENTITY_KEY, expiry_times(records).alias("since")).where(
        (F.col("since") > F.lit(previous_as_of)) & (F.col("since") <= F.lit(as_of))
    )
    since = (
        new_records.select(ENTITY_KEY, F.col(TIMESTAMP).alias("since"))
        .unionByName(left_window)
        .groupBy(ENTITY_KEY)
        .agg(F.min("since").alias("since"))
        .cache()
    )
    users = F.broadcast(since.select(ENTITY_KEY))
    their_records = records.join(users, ENTITY_KEY, "left_semi").cache()  # read by three windows
    restated = (
        history_features(their_records, as_of)
        .join(F.broadcast(since), ENTITY_KEY)
        .where(F.col(TIMESTAMP) >= F.col("since"))
        .drop("since")
    )
    restated = _with_month(restated)
    months = restated.select(PARTITION_COLUMN).distinct()
    old_history = (
        previous["history"]
        .join(F.broadcast(months), PARTITION_COLUMN, "left_semi")
        .select(*previous["history"].columns)
    )
    # Rows of touched users from their first changed moment on are all recomputed.
    unchanged = (
        old_history.join(F.broadcast(since), ENTITY_KEY, "left")
        .where(F.col("since").isNull() | (F.col(TIMESTAMP) < F.col("since")))
        .select(*old_history.columns)
    )
    partitions = {name: _appended(previous[name], rows) for name, rows in census_tables(new_records).items()}
    partitions["history"] = unchanged.unionByName(restated.select(*unchanged.columns))
    labels = label_table(new_records, new_label_rows)
    partitions[LABEL_TABLE] = _appended(previous[LABEL_TABLE], labels)
    ordered = {name: partitions[name] for name in [*FEATURE_TABLES, LABEL_TABLE]}
    return FeatureUpdate(partitions=ordered, changed_users=since.select(ENTITY_KEY))
