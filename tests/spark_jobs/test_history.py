from pyspark.testing import assertDataFrameEqual

from spark_jobs.history import history_features
from tests.spark_jobs.records import at, make_records, table

KEYS = "user_id long, event_timestamp timestamp"


def test_all_columns_in_order_with_their_types(spark):
    records = make_records(
        spark,
        {"event_timestamp": at(0), "capital_gain": 5000, "hours_per_week": 40},
        {"event_timestamp": at(10), "capital_loss": 300, "hours_per_week": 45},
    )

    expected = table(
        spark,
        f"{KEYS}, capital_net long, records_365d long, job_changes_365d long,"
        " marital_changes_365d long, hours_per_week_mean_365d double, records_total long",
        [(1, at(0), 5000, 1, 0, 0, 40.0, 1), (1, at(10), -300, 2, 0, 0, 42.5, 2)],
    )
    assertDataFrameEqual(history_features(records), expected)


def test_counts_changes_null_safely_and_never_on_a_first_record(spark):
    records = make_records(
        spark,
        # First record: not a change although there is nothing (null) before it.
        {"event_timestamp": at(0), "occupation": "Sales", "marital_status": "Never-married"},
        {"event_timestamp": at(10), "occupation": None, "marital_status": "Married-civ-spouse"},
        {"event_timestamp": at(20), "occupation": None, "marital_status": "Married-civ-spouse"},
        {"event_timestamp": at(30), "occupation": "Sales", "marital_status": "Divorced"},
        {"event_timestamp": at(40), "occupation": "Sales", "marital_status": "Divorced"},
        # A user whose first record has no occupation.
        {"user_id": 2, "event_timestamp": at(5), "occupation": None},
        {"user_id": 2, "event_timestamp": at(15), "occupation": "Tech-support"},
    )

    expected = table(
        spark,
        f"{KEYS}, job_changes_365d long, marital_changes_365d long",
        [
            (1, at(0), 0, 0),
            (1, at(10), 1, 1),  # value -> null
            (1, at(20), 1, 1),  # null -> null is no change
            (1, at(30), 2, 2),  # null -> value
            (1, at(40), 2, 2),
            (2, at(5), 0, 0),
            (2, at(15), 1, 0),
        ],
    )
    result = history_features(records)
    assertDataFrameEqual(
        result.select("user_id", "event_timestamp", "job_changes_365d", "marital_changes_365d"),
        expected,
    )


def test_window_excludes_exactly_365_days_and_includes_a_microsecond_less(spark):
    records = make_records(
        spark,
        {"user_id": 1, "event_timestamp": at(0), "occupation": "Sales", "hours_per_week": 10},
        {"user_id": 1, "event_timestamp": at(365), "occupation": "Tech-support"},
        {"user_id": 2, "event_timestamp": at(0), "occupation": "Sales", "hours_per_week": 10},
        {"user_id": 2, "event_timestamp": at(365, -1), "occupation": "Tech-support"},
        # Another user with records inside both windows, which must not leak in.
        {"user_id": 3, "event_timestamp": at(1), "hours_per_week": 99},
        {"user_id": 3, "event_timestamp": at(364), "hours_per_week": 99},
    )

    expected = table(
        spark,
        f"{KEYS}, records_365d long, job_changes_365d long, hours_per_week_mean_365d double",
        [
            (1, at(0), 1, 0, 10.0),
            # The earlier record is out of the window, yet still the previous one: a change.
            (1, at(365), 1, 1, 40.0),
            (2, at(0), 1, 0, 10.0),
            (2, at(365, -1), 2, 1, 25.0),
            (3, at(1), 1, 0, 99.0),
            (3, at(364), 2, 0, 99.0),
        ],
    )
    result = history_features(records)
    assertDataFrameEqual(
        result.select(
            "user_id",
            "event_timestamp",
            "records_365d",
            "job_changes_365d",
            "hours_per_week_mean_365d",
        ),
        expected,
    )


def test_rolling_mean_hours_and_changes_drop_out_of_the_window(spark):
    records = make_records(
        spark,
        {"event_timestamp": at(0), "occupation": "Sales", "hours_per_week": 40},
        {"event_timestamp": at(100), "occupation": "Tech-support", "hours_per_week": 20},
        {"event_timestamp": at(400), "occupation": "Tech-support", "hours_per_week": 50},
        {"event_timestamp": at(500), "occupation": "Sales", "hours_per_week": 35},
    )

    expected = table(
        spark,
        f"{KEYS}, records_365d long, job_changes_365d long, hours_per_week_mean_365d double",
        [
            (1, at(0), 1, 0, 40.0),
            (1, at(100), 2, 1, 30.0),
            (1, at(400), 2, 1, 35.0),  # the record at day 0 is out
            (1, at(500), 2, 1, 42.5),  # so is the change at day 100
        ],
    )
    result = history_features(records)
    assertDataFrameEqual(
        result.select(
            "user_id",
            "event_timestamp",
            "records_365d",
            "job_changes_365d",
            "hours_per_week_mean_365d",
        ),
        expected,
    )


def test_as_of_restates_the_window_when_records_leave_it(spark):
    records = make_records(
        spark,
        {"event_timestamp": at(0), "occupation": "Sales", "hours_per_week": 40, "capital_gain": 100},
        {"event_timestamp": at(100), "occupation": "Tech-support", "hours_per_week": 20},
        # Another user: the expiry of day 0 falls exactly on a record, so no extra row.
        {"user_id": 2, "event_timestamp": at(0)},
        {"user_id": 2, "event_timestamp": at(365)},
    )

    expected = table(
        spark,
        f"{KEYS}, capital_net long, records_365d long, job_changes_365d long,"
        " marital_changes_365d long, hours_per_week_mean_365d double, records_total long",
        [
            (1, at(0), 100, 1, 0, 0, 40.0, 1),
            (1, at(100), 0, 2, 1, 0, 30.0, 2),
            (1, at(365), 0, 1, 1, 0, 20.0, 2),  # day 0 left the window, not the user's tenure
            # day 100 left too: an empty window, the latest record's capital_net stays
            (1, at(465), 0, 0, 0, 0, None, 2),
            (2, at(0), 0, 1, 0, 0, 40.0, 1),
            (2, at(365), 0, 1, 0, 0, 40.0, 2),
            # user 2's day-365 record leaves at day 730, after as_of: not stated yet
        ],
    )
    assertDataFrameEqual(history_features(records, as_of=at(600)), expected)
