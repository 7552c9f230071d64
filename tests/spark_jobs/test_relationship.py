from pyspark.testing import assertDataFrameEqual

from spark_jobs.relationship import relationship_features
from tests.spark_jobs.records import at, make_records, table


def test_one_row_per_record_with_the_relationship_columns_in_order(spark):
    records = make_records(
        spark,
        {"user_id": 1, "event_timestamp": at(0)},
        {
            "user_id": 1,
            "event_timestamp": at(30),
            "marital_status": "Married-civ-spouse",
            "relationship": "Husband",
        },
    )

    expected = table(
        spark,
        "user_id long, event_timestamp timestamp, marital_status string, relationship string",
        [
            (1, at(0), "Never-married", "Not-in-family"),
            (1, at(30), "Married-civ-spouse", "Husband"),
        ],
    )
    assertDataFrameEqual(relationship_features(records), expected)
