from pyspark.testing import assertDataFrameEqual

from spark_jobs.labels import label_table
from tests.spark_jobs.records import at, make_records, table


def test_maps_income_to_a_long_label_and_leaves_out_unlabelled_records(spark):
    records = make_records(
        spark,
        {"user_id": 1, "event_timestamp": at(0), "income": ">50K"},
        {"user_id": 1, "event_timestamp": at(100), "income": "<=50K"},
        {"user_id": 1, "event_timestamp": at(200), "income": None},
        {"user_id": 2, "event_timestamp": at(0), "income": None},
    )

    expected = table(
        spark,
        "user_id long, event_timestamp timestamp, label long",
        [(1, at(0), 1), (1, at(100), 0)],
    )
    assertDataFrameEqual(label_table(records), expected)
