"""The synthetic world day by day: backfill and days partition it, labels arrive after the lag, drift."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from income.data.schema import CATEGORICAL_ATTRIBUTES, NUMERIC_ATTRIBUTES, RAW_COLUMNS
from income.data.synthetic import Drift, SyntheticWorld, floor_day, generate_records
from income.data.validation import LABEL_ONLY_COLUMNS, validate_labels, validate_records
from income.platform.lineage import content_hash

WORLD = SyntheticWorld(400, seed=5, start="2024-01-01", end="2024-07-01", label_lag_days=10)
UNTIL = pd.Timestamp("2024-04-10T15:30:00Z")
KEY = ["user_id", "event_timestamp"]


def days_from(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def sorted_by_key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(KEY).reset_index(drop=True)


@pytest.fixture(scope="module")
def days() -> dict[dt.date, object]:
    return {day: WORLD.day(day) for day in days_from(UNTIL.date(), dt.date(2024, 8, 1))}


def test_floor_day_is_utc_midnight():
    assert floor_day(pd.Timestamp("2024-04-10T23:59:59.999999Z")) == pd.Timestamp("2024-04-10T00:00:00Z")
    assert floor_day(pd.Timestamp("2024-04-10T01:00:00+02:00")) == pd.Timestamp("2024-04-09T00:00:00Z")
    assert floor_day(pd.Timestamp("2024-04-10T12:00")) == pd.Timestamp("2024-04-10T00:00:00Z")


def test_the_world_is_generate_records_in_time_order_with_unique_keys():
    records = WORLD.records()

    expected = generate_records(400, seed=5, start="2024-01-01", end="2024-07-01")
    pd.testing.assert_frame_equal(sorted_by_key(records), sorted_by_key(expected))
    assert records["event_timestamp"].is_monotonic_increasing
    assert not records.duplicated(KEY).any()


def test_backfill_and_the_following_days_hold_every_record_once(days):
    backfill = WORLD.backfill(UNTIL)
    day_records = pd.concat([batch.records for batch in days.values()], ignore_index=True)

    union = pd.concat([backfill, day_records], ignore_index=True)

    assert not union.duplicated(KEY).any()
    pd.testing.assert_frame_equal(
        sorted_by_key(union.drop(columns="income")), sorted_by_key(WORLD.records().drop(columns="income"))
    )
    assert day_records["income"].isna().all()
    assert backfill["event_timestamp"].max() < pd.Timestamp("2024-04-10T00:00:00Z")
    assert day_records["event_timestamp"].min() >= pd.Timestamp("2024-04-10T00:00:00Z")


def test_backfill_labels_and_day_labels_hold_every_label_once_after_the_lag(days):
    backfill = WORLD.backfill(UNTIL)
    inline = backfill.loc[backfill["income"].notna(), LABEL_ONLY_COLUMNS]
    later = pd.concat([batch.labels for batch in days.values()], ignore_index=True)

    world = WORLD.records()
    all_labels = world.loc[world["income"].notna(), LABEL_ONLY_COLUMNS]
    pd.testing.assert_frame_equal(sorted_by_key(pd.concat([inline, later])), sorted_by_key(all_labels))
    assert inline["event_timestamp"].max() < pd.Timestamp("2024-03-31T00:00:00Z")  # 10 April - 10 days
    assert (
        backfill.loc[backfill["event_timestamp"] >= pd.Timestamp("2024-03-31T00:00:00Z"), "income"]
        .isna()
        .all()
    )
    for day, batch in days.items():
        label_day = pd.Timestamp(day - dt.timedelta(days=10), tz="UTC")
        assert (
            batch.labels["event_timestamp"].between(label_day, label_day + pd.Timedelta(days=1), "left").all()
        )
    assert list(later.columns) == LABEL_ONLY_COLUMNS


def test_the_same_day_gives_the_same_content_in_another_world_object():
    day = dt.date(2024, 5, 20)
    again = SyntheticWorld(400, seed=5, start="2024-01-01", end="2024-07-01", label_lag_days=10)
    other_seed = SyntheticWorld(400, seed=6, start="2024-01-01", end="2024-07-01", label_lag_days=10)

    first, second = WORLD.day(day), again.day(day)

    assert content_hash(first.records) == content_hash(second.records)
    assert content_hash(first.labels) == content_hash(second.labels)
    assert content_hash(first.records) != content_hash(other_seed.day(day).records)
    assert content_hash(WORLD.backfill(UNTIL)) == content_hash(again.backfill(UNTIL))


def test_days_validate_and_invalid_rows_reach_the_quarantine_deterministically():
    world = SyntheticWorld(3000, seed=2, start="2024-01-01", end="2024-03-01", invalid_share=0.05)
    day = dt.date(2024, 2, 1)

    records = validate_records(world.day(day).records, "day", max_invalid_share=1.0)
    labels = validate_labels(world.day(day).labels, "day labels", max_invalid_share=1.0)

    assert len(records.quarantine) > 0 and len(records.valid) > 0
    assert labels.quarantine.empty or set(labels.quarantine["reason"]) <= {
        "duplicate (user_id, event_timestamp)"
    }
    again = validate_records(world.day(day).records, "day", max_invalid_share=1.0)
    pd.testing.assert_frame_equal(records.quarantine, again.quarantine)


def test_density_is_about_three_records_per_user_over_the_span():
    records = WORLD.records()
    per_day = records.groupby(records["event_timestamp"].dt.date).size()

    assert 3 * 400 / 182 * 0.8 < per_day.mean() < 3 * 400 / 182 * 1.2


DRIFT = Drift("2024-04-01")
START = DRIFT.start_time


@pytest.fixture(scope="module")
def drifted() -> tuple[pd.DataFrame, pd.DataFrame]:
    arguments = {"n_users": 3000, "seed": 4, "start": "2024-01-01", "end": "2024-07-01"}
    return generate_records(**arguments), generate_records(**arguments, drift=DRIFT)


def test_drift_leaves_everything_before_its_start_unchanged(drifted):
    plain, changed = drifted
    before = plain["event_timestamp"] < START

    pd.testing.assert_frame_equal(plain[before], changed[before])
    assert list(changed.columns) == RAW_COLUMNS


def test_drift_moves_jobs_towards_the_shifted_mix_and_adds_hours(drifted):
    plain, changed = drifted
    after = changed["event_timestamp"] >= START
    moved = after & (changed["occupation"] != plain["occupation"]) & plain["occupation"].notna()

    assert 0.2 < moved[after].mean() < 0.35
    assert set(changed.loc[moved, "occupation"]) <= {"Tech-support", "Exec-managerial", "Prof-specialty"}
    assert changed.loc[after & plain["occupation"].isna(), "occupation"].isna().all()
    expected_hours = (plain.loc[after, "hours_per_week"] + 8).clip(1, 99)
    assert changed.loc[after, "hours_per_week"].equals(expected_hours)
    moved_users = changed.loc[moved, "user_id"]
    later = changed[after & changed["user_id"].isin(moved_users)]
    assert later.groupby("user_id")["occupation"].nunique().eq(1).all()  # one move, kept


def test_drift_changes_labels_only_after_its_start(drifted):
    plain, changed = drifted
    after = (changed["event_timestamp"] >= START) & changed["income"].notna()

    assert (changed.loc[after, "income"] != plain.loc[after, "income"]).mean() > 0.05
    assert changed["income"].isna().equals(plain["income"].isna())


def test_a_model_trained_before_the_drift_ranks_worse_after_it():
    drift = Drift("2024-01-01")
    records = generate_records(5000, seed=7, start="2023-01-01", end="2025-01-01", drift=drift)
    labelled = records[records["income"].notna()]
    features = labelled[[*NUMERIC_ATTRIBUTES, *CATEGORICAL_ATTRIBUTES]].astype(
        {column: "category" for column in CATEGORICAL_ATTRIBUTES}
    )
    target = (labelled["income"] == ">50K").to_numpy()
    before = (labelled["event_timestamp"] < drift.start_time).to_numpy()
    train = before & (labelled["user_id"] % 3 != 0).to_numpy()
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=40, random_state=0)
    model.fit(features[train], target[train])
    scores = model.predict_proba(features)[:, 1]

    auc_before = roc_auc_score(target[before & ~train], scores[before & ~train])
    auc_after = roc_auc_score(target[~before], scores[~before])

    assert auc_before > 0.85
    assert auc_after < auc_before - 0.05
