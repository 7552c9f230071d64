from pyspark.sql import functions as F
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
    ).withColumn("arrived_at", F.lit(at(300)))

    expected = table(
        spark,
        "user_id long, event_timestamp timestamp, label long, arrived_at timestamp",
        [(1, at(0), 1, at(300)), (1, at(100), 0, at(300))],
    )
    assertDataFrameEqual(label_table(records), expected, checkRowOrder=False)


def test_labels_of_a_labels_only_batch_join_the_inline_ones_with_their_own_arrival(spark):
    records = make_records(spark, {"user_id": 1, "event_timestamp": at(0), "income": None})
    later = spark.createDataFrame(
        [(1, at(0), ">50K", at(30))],
        "user_id long, event_timestamp timestamp, income string, arrived_at timestamp",
    )
    expected = table(
        spark,
        "user_id long, event_timestamp timestamp, label long, arrived_at timestamp",
        [(1, at(0), 1, at(30))],
    )
    assertDataFrameEqual(label_table(records, later), expected)
