from pyspark.testing import assertDataFrameEqual

from spark_jobs.occupation import occupation_features
from tests.spark_jobs.records import at, make_records, table


def test_one_row_per_record_with_the_occupation_columns_in_order_and_nulls_kept(spark):
    records = make_records(
        spark,
        {"user_id": 1, "event_timestamp": at(0), "capital_gain": 2174, "hours_per_week": 45},
        {
            "user_id": 2,
            "event_timestamp": at(0),
            "workclass": None,
            "occupation": None,
            "education": "HS-grad",
            "education_num": 9,
            "capital_loss": 1902,
        },
    )

    expected = table(
        spark,
        "user_id long, event_timestamp timestamp, workclass string, education string,"
        " education_num long, occupation string, hours_per_week long, capital_gain long,"
        " capital_loss long",
        [
            (1, at(0), "State-gov", "Bachelors", 13, "Adm-clerical", 45, 2174, 0),
            (2, at(0), None, "HS-grad", 9, None, 40, 0, 1902),
        ],
    )
    assertDataFrameEqual(occupation_features(records), expected)
