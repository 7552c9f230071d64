from pyspark.testing import assertDataFrameEqual

from spark_jobs.demographic import demographic_features
from tests.spark_jobs.records import at, make_records, table


def test_one_row_per_record_with_the_demographic_columns_in_order(spark):
    records = make_records(
        spark,
        {"user_id": 1, "event_timestamp": at(0), "age": 25, "sex": "Female", "race": "Black"},
        {"user_id": 1, "event_timestamp": at(400), "age": 26, "native_country": None},
        {"user_id": 2, "event_timestamp": at(0), "native_country": "Mexico"},
    )

    expected = table(
        spark,
        "user_id long, event_timestamp timestamp, age long, sex string, race string, native_country string",
        [
            (1, at(0), 25, "Female", "Black", "United-States"),
            (1, at(400), 26, "Male", "White", None),
            (2, at(0), 39, "Male", "White", "Mexico"),
        ],
    )
    assertDataFrameEqual(demographic_features(records), expected)
