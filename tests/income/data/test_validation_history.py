"""Validation against time and history: future timestamps, re-sent rows, conflicts, labels-only batches."""

from __future__ import annotations

import pandas as pd
import pytest

from income.data.schema import RAW_COLUMNS
from income.data.validation import (
    LABEL_ONLY_COLUMNS,
    MIN_ROWS_FOR_SHARE,
    InvalidInputError,
    is_labels_only,
    validate_labels,
    validate_records,
)
from tests.income.data.test_validation import GOOD, records

NOW = pd.Timestamp("2023-06-01T00:00:00Z")
T = GOOD["event_timestamp"]
CONFLICT = "conflicts with an earlier batch (the first value wins)"
LATE_LABEL = "label for an already ingested record: send it in a labels-only batch"
LABEL_CONFLICT = "conflicts with an earlier label (the first value wins)"


def labels(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=LABEL_ONLY_COLUMNS)


def test_timestamps_after_now_are_quarantined_and_now_itself_is_accepted():
    raw = records({}, {"event_timestamp": NOW}, {"event_timestamp": NOW + pd.Timedelta(microseconds=1)})

    result = validate_records(raw, "inline", max_invalid_share=1.0, now=NOW)

    assert result.valid["user_id"].tolist() == [1, 2]
    assert result.quarantine["reason"].tolist() == ["event_timestamp in the future"]
    assert result.quarantine["row_number"].tolist() == [2]
    assert result.summary.reasons == {"event_timestamp in the future": 1}


def test_a_future_row_failing_other_rules_lists_every_reason():
    raw = records({"age": 250, "event_timestamp": "2030-01-01T00:00:00Z"})

    result = validate_records(raw, "inline", max_invalid_share=1.0, now=NOW)

    assert result.quarantine["reason"].tolist() == [
        "age out of range [16, 100]: 250; event_timestamp in the future"
    ]


def test_a_naive_now_is_taken_as_utc():
    raw = records({"event_timestamp": "2023-06-01T00:00:01Z"})

    result = validate_records(raw, "inline", max_invalid_share=1.0, now=pd.Timestamp("2023-06-01"))

    assert result.quarantine["reason"].tolist() == ["event_timestamp in the future"]


def test_identical_records_are_already_ingested_and_different_ones_conflict():
    history = validate_records(records({}, {"workclass": None}, {}), "earlier").valid
    raw = records({}, {"workclass": None}, {"age": 40}, {"user_id": 9})

    result = validate_records(raw, "later", max_invalid_share=1.0, history=history)

    assert result.valid["user_id"].tolist() == [9]
    assert result.summary.already_ingested == 2
    assert (result.summary.valid_rows, result.summary.quarantined_rows, result.summary.rows) == (1, 1, 4)
    assert result.quarantine[["user_id", "reason"]].values.tolist() == [["3", CONFLICT]]
    assert result.summary.reasons == {CONFLICT: 1}


def test_history_read_back_as_text_compares_by_value():
    history = records({}).astype(str).assign(event_timestamp=str(T))

    result = validate_records(records({}), "later", history=history)

    assert result.valid.empty and result.summary.already_ingested == 1


def test_the_first_copy_of_a_key_in_history_is_the_one_compared():
    history = validate_records(records({"age": 30}), "a").valid
    history = pd.concat([history, history.assign(age=31)], ignore_index=True)

    result = validate_records(records({"age": 31}), "later", max_invalid_share=1.0, history=history)

    assert result.quarantine["reason"].tolist() == [CONFLICT]


def test_income_rules_on_reingest():
    history = validate_records(records({"income": None}, {"income": ">50K"}, {"income": ">50K"}), "a").valid
    raw = records({"income": "<=50K"}, {"income": None}, {"income": "<=50K"})

    result = validate_records(raw, "later", max_invalid_share=1.0, history=history)

    assert result.valid.empty
    assert result.summary.already_ingested == 1  # user 2: no income now, the stored label stays
    assert result.quarantine[["user_id", "reason"]].values.tolist() == [["1", LATE_LABEL], ["3", CONFLICT]]


def test_history_conflicts_count_towards_the_invalid_share():
    rows = MIN_ROWS_FOR_SHARE  # a batch large enough to be judged by its share
    history = validate_records(records(*[{}] * rows), "a").valid

    with pytest.raises(InvalidInputError, match=f"100.00% of {rows} rows are invalid"):
        validate_records(records(*[{"age": 41}] * rows), "later", history=history)


def test_summary_shows_already_ingested_rows():
    history = validate_records(records({}), "a").valid

    page = validate_records(records({}), "later", history=history).summary.to_html()

    assert "<th>already ingested rows</th><td>1</td>" in page


def test_labels_are_typed_and_bad_ones_quarantined_with_reasons():
    raw = labels(
        (1, "2023-01-01T00:00:00Z", ">50K"),
        (2, "2023-01-01T00:00:00Z", None),
        (3, "2023-01-01T00:00:00Z", "rich"),
        (1, "2023-01-01T00:00:00Z", "<=50K"),
        (4, "2024-01-01T00:00:00Z", "<=50K"),
        (None, "2023-01-01T00:00:00Z", "<=50K"),
    )

    result = validate_labels(raw, "labels.csv", max_invalid_share=1.0, now=NOW)

    assert result.valid.to_dict("records") == [
        {"user_id": 1, "event_timestamp": pd.Timestamp("2023-01-01T00:00:00Z"), "income": ">50K"}
    ]
    assert str(result.valid["event_timestamp"].dtype) == "datetime64[us, UTC]"
    assert result.quarantine["reason"].tolist() == [
        "income missing",
        "income not in domain: rich",
        "duplicate (user_id, event_timestamp)",
        "event_timestamp in the future",
        "user_id missing",
    ]
    assert list(result.quarantine.columns) == [*LABEL_ONLY_COLUMNS, "row_number", "reason", "source"]


def test_class_is_a_synonym_of_income_without_adults_trailing_dot():
    raw = pd.DataFrame({"user_id": [1, 2], "event_timestamp": [T, T], "class": [">50K.", "<=50K"]})

    result = validate_labels(raw, "labels.csv")

    assert result.valid["income"].tolist() == [">50K", "<=50K"]


def test_labels_against_history_same_is_already_ingested_different_conflicts():
    history = labels((1, T, ">50K"), (2, T, ">50K"))
    raw = labels((1, T, ">50K"), (2, T, "<=50K"), (3, T, "<=50K"))

    result = validate_labels(raw, "later", max_invalid_share=1.0, history_labels=history)

    assert result.valid["user_id"].tolist() == [3]
    assert result.summary.already_ingested == 1
    assert result.quarantine[["user_id", "reason"]].values.tolist() == [["2", LABEL_CONFLICT]]


def test_labels_need_their_columns():
    with pytest.raises(InvalidInputError, match=r"^l\.csv: required columns missing: income$"):
        validate_labels(pd.DataFrame({"user_id": [1], "event_timestamp": [T]}), "l.csv")


def test_labels_only_is_told_by_columns():
    assert is_labels_only(["user_id", "event_timestamp", "income"])
    assert is_labels_only(["event_timestamp", "class", "user_id"])
    assert not is_labels_only(RAW_COLUMNS)
    assert not is_labels_only(["user_id", "event_timestamp", "class", "age"])
    assert not is_labels_only(["user_id", "income"])
