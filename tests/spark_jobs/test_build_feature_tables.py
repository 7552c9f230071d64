from pyspark.testing import assertDataFrameEqual

from income.data.schema import FEATURE_TABLES, LABEL_TABLE
from spark_jobs import build_feature_tables
from tests.spark_jobs.records import at, make_records

KEYS = ["user_id", "event_timestamp"]


def test_returns_every_table_with_one_row_per_record_and_labels_per_labelled_record(spark):
    records = make_records(
        spark,
        {"user_id": 1, "event_timestamp": at(0), "income": ">50K"},
        {"user_id": 1, "event_timestamp": at(400), "income": None},
        {"user_id": 2, "event_timestamp": at(0), "income": "<=50K", "occupation": None},
    )

    tables = build_feature_tables(records)

    assert list(tables) == [*FEATURE_TABLES, LABEL_TABLE]
    for name in FEATURE_TABLES:
        assertDataFrameEqual(tables[name].select(KEYS), records.select(KEYS))
    assertDataFrameEqual(tables[LABEL_TABLE].select(KEYS), records.where("income IS NOT NULL").select(KEYS))
