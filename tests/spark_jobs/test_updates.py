"""A batch applied to the previous tables gives exactly the tables a full rebuild gives."""

from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from income.data.schema import ARRIVED_AT, FEATURE_TABLES, LABEL_TABLE, PARTITION_COLUMN, TIMESTAMP
from spark_jobs import build_feature_tables, update_feature_tables
from spark_jobs.updates import event_month
from tests.spark_jobs.records import at, make_records

TABLES = [*FEATURE_TABLES, LABEL_TABLE]


def _with_month(tables):
    return {n: t.withColumn(PARTITION_COLUMN, event_month(F.col(TIMESTAMP))) for n, t in tables.items()}


def _arrived(frame, days):
    return frame.withColumn(ARRIVED_AT, F.lit(at(days)))


def _label_rows(spark, rows, days):
    frame = spark.createDataFrame(rows, "user_id long, event_timestamp timestamp, income string")
    return _arrived(frame, days)


def test_incremental_update_equals_a_full_rebuild(spark):
    first = _arrived(
        make_records(
            spark,
            {"user_id": 1, "event_timestamp": at(0), "occupation": "Sales", "income": ">50K"},
            {"user_id": 1, "event_timestamp": at(200), "hours_per_week": 60, "income": None},
            {"user_id": 2, "event_timestamp": at(10), "income": None},
            {"user_id": 2, "event_timestamp": at(300), "marital_status": "Divorced", "income": None},
            {"user_id": 3, "event_timestamp": at(40), "income": "<=50K"},
        ),
        300,
    )
    first_labels = _label_rows(spark, [(2, at(10), ">50K")], 300)
    second = _arrived(
        make_records(
            spark,
            {"user_id": 1, "event_timestamp": at(500), "occupation": "Tech-support", "income": None},
            {"user_id": 2, "event_timestamp": at(150), "income": None},  # late: older than day 300
            {"user_id": 4, "event_timestamp": at(480), "income": "<=50K"},
        ),
        520,
    )
    second_labels = _label_rows(spark, [(2, at(300), "<=50K"), (1, at(200), ">50K")], 520)
    previous = _with_month(build_feature_tables(first, as_of=at(301), label_rows=first_labels))

    update = update_feature_tables(
        first.unionByName(second), second, previous, at(301), at(520), second_labels
    )

    full = _with_month(
        build_feature_tables(
            first.unionByName(second), as_of=at(520), label_rows=first_labels.unionByName(second_labels)
        )
    )
    for name in TABLES:
        changed = update.partitions[name]
        months = changed.select(PARTITION_COLUMN).distinct()
        untouched = previous[name].join(months, PARTITION_COLUMN, "left_anti").select(*changed.columns)
        assertDataFrameEqual(untouched.unionByName(changed), full[name])
    # user 3's day-40 record left the window at day 405: a change without a new record.
    assert sorted(r.user_id for r in update.changed_users.collect()) == [1, 2, 3, 4]


def test_an_update_with_nothing_new_and_no_time_passing_changes_nothing(spark):
    records = _arrived(make_records(spark, {"user_id": 1, "event_timestamp": at(0)}), 1)
    previous = _with_month(build_feature_tables(records, as_of=at(10)))
    update = update_feature_tables(records, records.limit(0), previous, at(10), at(10))
    assert all(frame.count() == 0 for frame in update.partitions.values())
    assert update.changed_users.count() == 0
