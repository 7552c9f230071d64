"""Validation of raw records: typed valid rows, quarantined rows with reasons, fatal errors."""

from __future__ import annotations

import pandas as pd
import pytest

from income.data.schema import RAW_COLUMNS
from income.data.synthetic import generate_records
from income.data.validation import InvalidInputError, validate_records

GOOD = {
    "user_id": 1,
    "event_timestamp": pd.Timestamp("2023-01-01T12:00:00.000001Z"),
    "age": 39,
    "workclass": "State-gov",
    "fnlwgt": 77516,
    "education": "Bachelors",
    "education_num": 13,
    "marital_status": "Never-married",
    "occupation": "Adm-clerical",
    "relationship": "Not-in-family",
    "race": "White",
    "sex": "Male",
    "capital_gain": 2174,
    "capital_loss": 0,
    "hours_per_week": 40,
    "native_country": "United-States",
    "income": "<=50K",
}
CONTRACT_DTYPES = {
    "user_id": "int64",
    "event_timestamp": "datetime64[us, UTC]",
    "age": "int64",
    "fnlwgt": "int64",
    "education_num": "int64",
    "capital_gain": "int64",
    "capital_loss": "int64",
    "hours_per_week": "int64",
}


def records(*changes: dict) -> pd.DataFrame:
    """One good record per change dict, user ids 1.. unless a change sets one."""
    rows = [{**GOOD, "user_id": i + 1, **change} for i, change in enumerate(changes)]
    return pd.DataFrame(rows, columns=RAW_COLUMNS)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"user_id": 0}, "user_id not positive: 0"),
        ({"user_id": "x7"}, "user_id not a number: x7"),
        ({"event_timestamp": "yesterday"}, "event_timestamp not a timestamp: yesterday"),
        ({"event_timestamp": None}, "event_timestamp missing"),
        ({"age": -3}, "age out of range [16, 100]: -3"),
        ({"age": 250}, "age out of range [16, 100]: 250"),
        ({"age": "abc"}, "age not a number: abc"),
        ({"age": 39.5}, "age not an integer: 39.5"),
        ({"age": None}, "age missing"),
        ({"fnlwgt": 0}, "fnlwgt out of range >= 1: 0"),
        ({"education_num": 17}, "education_num out of range [1, 16]: 17"),
        ({"capital_gain": 100000}, "capital_gain out of range [0, 99999]: 100000"),
        ({"capital_loss": -1}, "capital_loss out of range [0, 99999]: -1"),
        ({"hours_per_week": 0}, "hours_per_week out of range [1, 99]: 0"),
        ({"hours_per_week": 150}, "hours_per_week out of range [1, 99]: 150"),
        ({"sex": "Unknown"}, "sex not in domain: Unknown"),
        ({"education": "Kindergarten"}, "education not in domain: Kindergarten"),
        ({"workclass": "Astronaut"}, "workclass not in domain: Astronaut"),
        ({"native_country": "Atlantis"}, "native_country not in domain: Atlantis"),
        ({"marital_status": None}, "marital_status missing"),
        ({"relationship": None}, "relationship missing"),
        ({"race": "Martian"}, "race not in domain: Martian"),
        ({"income": ">50K."}, "income not in domain: >50K."),
    ],
)
def test_each_kind_of_bad_row_is_quarantined_with_its_reason(change, reason):
    raw = records({}, {"user_id": 2, **change}, {"user_id": 3})

    result = validate_records(raw, "inline", max_invalid_share=1.0)

    assert result.valid["user_id"].tolist() == [1, 3]
    quarantined = result.quarantine.iloc[0]
    assert len(result.quarantine) == 1
    assert quarantined["reason"] == reason
    assert quarantined["row_number"] == 1
    assert quarantined["source"] == "inline"
    column, value = next(iter(change.items()))
    assert quarantined[column] == (None if value is None else str(value))
    assert result.summary.reasons == {reason.split(": ")[0]: 1}


def test_a_row_failing_several_rules_lists_them_all_in_column_order():
    raw = records({"sex": "Unknown", "age": 250, "marital_status": None})

    result = validate_records(raw, "inline", max_invalid_share=1.0)

    assert result.quarantine["reason"].tolist() == [
        "age out of range [16, 100]: 250; marital_status missing; sex not in domain: Unknown"
    ]


def test_valid_rows_pass_through_unchanged_with_contract_dtypes():
    raw = records({}, {"workclass": None, "occupation": None, "native_country": None}, {"income": None})

    result = validate_records(raw, "inline")

    assert result.quarantine.empty
    assert list(result.valid.columns) == RAW_COLUMNS
    assert {c: str(result.valid[c].dtype) for c in CONTRACT_DTYPES} == CONTRACT_DTYPES
    pd.testing.assert_frame_equal(result.valid, raw.astype({"event_timestamp": "datetime64[us, UTC]"}))
    assert result.valid.loc[1, "workclass"] is None
    assert result.valid.loc[2, "income"] is None


def test_text_values_are_typed():
    raw = records({}).astype(str).assign(event_timestamp="2023-01-01T12:00:00.000001Z")

    result = validate_records(raw, "inline")

    pd.testing.assert_frame_equal(
        result.valid, records({}).astype({"event_timestamp": "datetime64[us, UTC]"})
    )


def test_every_row_ends_up_valid_or_quarantined():
    raw = records({}, {"age": 300}, {}, {"sex": "?"}, {"user_id": 1}, {})

    result = validate_records(raw, "inline", max_invalid_share=1.0)

    assert len(result.valid) + len(result.quarantine) == len(raw)
    assert sorted([*result.quarantine["row_number"], 0, 2, 5]) == list(range(6))
    assert result.summary.rows == 6
    assert (result.summary.valid_rows, result.summary.quarantined_rows) == (3, 3)


def test_later_duplicates_of_a_key_are_quarantined_and_the_first_kept():
    raw = records({"user_id": 7, "age": 30}, {"user_id": 7, "age": 31}, {"user_id": 7, "age": 32})

    result = validate_records(raw, "inline", max_invalid_share=1.0)

    assert result.valid["age"].tolist() == [30]
    assert result.quarantine["row_number"].tolist() == [1, 2]
    assert set(result.quarantine["reason"]) == {"duplicate (user_id, event_timestamp)"}


def test_keys_equal_after_parsing_are_duplicates():
    raw = records({}, {"user_id": "1", "event_timestamp": "2023-01-01 12:00:00.000001+00:00"})

    result = validate_records(raw, "inline", max_invalid_share=1.0)

    assert result.quarantine["reason"].tolist() == ["duplicate (user_id, event_timestamp)"]


def test_missing_columns_are_named():
    raw = records({}).drop(columns=["sex", "income"])

    with pytest.raises(InvalidInputError, match=r"^survey\.csv: required columns missing: sex, income$"):
        validate_records(raw, "survey.csv")


def test_a_mistyped_column_is_fatal_and_explained():
    raw = records({"age": "old"}, {"age": "young"}, {"age": 40})

    with pytest.raises(InvalidInputError) as error:
        validate_records(raw, "survey.csv")

    assert str(error.value) == (
        "survey.csv: column 'age' should hold integers, but 2 of its 3 values do not parse (e.g. 'old')"
    )


def test_too_many_bad_rows_is_fatal_with_share_threshold_and_top_reasons():
    raw = records(*([{}] * 10 + [{"age": 300}] * 5 + [{"age": 300, "sex": "X"}] * 5))

    with pytest.raises(InvalidInputError) as error:
        validate_records(raw, "survey.csv", max_invalid_share=0.25)

    assert str(error.value) == (
        "survey.csv: 50.00% of 20 rows are invalid, more than the allowed 25.00%; "
        "top reasons: age out of range [16, 100] (10); sex not in domain (5)"
    )


def test_a_batch_too_small_to_judge_is_not_fatal_and_its_bad_rows_are_quarantined():
    raw = records({}, {"age": 300}, {})  # one bad row in three: a daily batch, not a broken input

    result = validate_records(raw, "day.csv", max_invalid_share=0.05)

    assert (len(result.valid), len(result.quarantine)) == (2, 1)


def test_summary_renders_as_html_table():
    result = validate_records(records({}, {"age": 300}), "a<b>.csv", max_invalid_share=1.0)

    page = result.summary.to_html()

    assert "a&lt;b&gt;.csv" in page
    assert "<td>age out of range [16, 100]</td><td>1</td>" in page


def test_generated_records_validate_completely():
    raw = generate_records(300, seed=3)

    result = validate_records(raw, "synthetic")

    assert result.quarantine.empty
    pd.testing.assert_frame_equal(result.valid, raw)


def test_generated_invalid_share_is_quarantined():
    raw = generate_records(3000, seed=3, invalid_share=0.02)

    result = validate_records(raw, "synthetic")

    assert result.summary.quarantined_rows == round(0.02 * len(raw))
    assert len(result.valid) + len(result.quarantine) == len(raw)
    assert "duplicate (user_id, event_timestamp)" in result.summary.reasons
    assert "sex not in domain" in result.summary.reasons
