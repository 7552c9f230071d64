"""Reading Adult-format CSV files into raw records."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from income.data.adult import read_adult_csv, read_batch_file, to_batch_file
from income.data.schema import RAW_COLUMNS
from income.data.validation import InvalidInputError, validate_labels, validate_records

HEADER = (
    "age, workclass, fnlwgt, education, Education-Num, marital-status, occupation, "
    "relationship, race, sex, capital-gain, capital-loss, hours-per-week, native-country, class"
)
ROWS = [
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, "
    "Male, 2174, 0, 40, United-States, <=50K",
    "52, ?, 209642, HS-grad, 9, Married-civ-spouse, ?, Husband, White, Male, 0, 0, 45, , >50K.",
    "28, Private, 338409, Bachelors, 13, Married-civ-spouse, Prof-specialty, Wife, Black, "
    "Female, 0, 0, 40, Cuba, <=50K.",
    "",
]


def write(tmp_path: Path, lines: list[str], name: str = "adult.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_normalised_stripped_text_with_missing_values(tmp_path):
    records = read_adult_csv(write(tmp_path, [HEADER, *ROWS]))

    assert list(records.columns) == RAW_COLUMNS
    assert len(records) == 3
    assert records.loc[0, "education_num"] == "13"
    assert records.loc[0, "native_country"] == "United-States"
    assert records.loc[1, "workclass"] is None
    assert records.loc[1, "occupation"] is None
    assert records.loc[1, "native_country"] is None
    assert records["income"].tolist() == ["<=50K", ">50K", "<=50K"]


def test_derived_ids_and_timestamps_spread_rows_over_1994(tmp_path):
    path = write(tmp_path, [HEADER, *ROWS])

    records = read_adult_csv(path, user_id_offset=100)

    assert records["user_id"].tolist() == [101, 102, 103]
    assert str(records["event_timestamp"].dtype) == "datetime64[us, UTC]"
    # floor(i * 365 days / 3) after 1994-01-01T00:00:00Z
    assert records["event_timestamp"].tolist() == [
        pd.Timestamp("1994-01-01T00:00:00Z"),
        pd.Timestamp("1994-05-02T16:00:00Z"),
        pd.Timestamp("1994-09-01T08:00:00Z"),
    ]
    pd.testing.assert_frame_equal(read_adult_csv(path, user_id_offset=100), records)


def test_user_id_and_timestamp_columns_are_used_when_present(tmp_path):
    lines = [
        "user_id," + HEADER + ",event_timestamp",
        "17," + ROWS[0] + ",2020-03-04T05:06:07.123456Z",
        "9," + ROWS[1] + ",2020-03-04 08:00:00",
    ]

    records = read_adult_csv(write(tmp_path, lines), user_id_offset=100)

    assert records["user_id"].tolist() == ["17", "9"]
    assert records["event_timestamp"].tolist() == [
        pd.Timestamp("2020-03-04T05:06:07.123456Z"),
        pd.Timestamp("2020-03-04T08:00:00Z"),
    ]


def test_unparseable_given_timestamps_stay_text_for_the_quarantine(tmp_path):
    lines = [HEADER + ",event_timestamp", ROWS[0] + ",2020-03-04", ROWS[1] + ",someday"]
    records = read_adult_csv(write(tmp_path, lines))

    result = validate_records(records, "adult.csv", max_invalid_share=1.0)

    assert result.quarantine["reason"].tolist() == ["event_timestamp not a timestamp: someday"]


def test_without_class_column_income_is_missing(tmp_path):
    header = HEADER.removesuffix(", class")
    rows = [row.rsplit(",", 1)[0] for row in ROWS[:3]]

    records = read_adult_csv(write(tmp_path, [header, *rows]))

    assert records["income"].tolist() == [None, None, None]
    assert records.loc[0, "native_country"] == "United-States"


def test_records_read_validate_into_the_contract(tmp_path):
    records = read_adult_csv(write(tmp_path, [HEADER, *ROWS]))

    result = validate_records(records, "adult.csv")

    assert result.quarantine.empty
    assert result.valid["age"].tolist() == [39, 52, 28]
    assert result.valid["income"].tolist() == ["<=50K", ">50K", "<=50K"]


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(InvalidInputError, match=rf"^{path}: file not found$"):
        read_adult_csv(path)


def test_binary_file_is_named(tmp_path):
    path = tmp_path / "adult.parquet"
    path.write_bytes(b"PAR1\x00\x15\x04\x15\x80\x01")
    with pytest.raises(InvalidInputError, match=rf"^{path}: not a text file"):
        read_adult_csv(path)


def test_empty_file_is_named(tmp_path):
    path = write(tmp_path, ["", "  "])
    with pytest.raises(InvalidInputError, match=rf"^{path}: empty file$"):
        read_adult_csv(path)


def test_file_without_header_is_named(tmp_path):
    path = write(tmp_path, ROWS[:2])
    with pytest.raises(InvalidInputError, match=rf"^{path}: no header row"):
        read_adult_csv(path)


def test_missing_adult_columns_are_named(tmp_path):
    header = HEADER.replace(" sex,", "").replace(" fnlwgt,", "")
    rows = [row.replace(" Male,", "").replace(" 77516,", "") for row in ROWS[:1]]
    path = write(tmp_path, [header, *rows])
    with pytest.raises(InvalidInputError, match=rf"^{path}: required Adult columns missing: fnlwgt, sex$"):
        read_adult_csv(path)


def test_real_adult_training_file_reads_and_validates(adult_csv):
    records = read_adult_csv(adult_csv)

    result = validate_records(records, adult_csv.name, max_invalid_share=0.0)

    assert len(records) == 32_561
    assert result.summary.quarantined_rows == 0
    assert result.summary.reasons == {}
    assert (result.valid["income"] == ">50K").sum() == 7_841
    assert result.valid["workclass"].isna().sum() == 1_836
    assert result.valid["event_timestamp"].is_monotonic_increasing


BATCH_HEADER = f"user_id, event_timestamp, {HEADER}"
STAMPED = [f"{i + 10}, 2024-05-0{i + 1}T08:00:00Z, {row}" for i, row in enumerate(ROWS[:3])]


def test_a_batch_csv_reads_as_records_with_its_ids_and_times(tmp_path):
    records = read_batch_file(str(write(tmp_path, [BATCH_HEADER, *STAMPED], "batch.csv")))

    assert list(records.columns) == RAW_COLUMNS
    assert records["user_id"].tolist() == ["10", "11", "12"]
    assert records["event_timestamp"].tolist()[0] == pd.Timestamp("2024-05-01T08:00:00Z")
    assert records["income"].tolist() == ["<=50K", ">50K", "<=50K"]
    assert validate_records(records, "batch.csv").quarantine.empty


def test_a_batch_parquet_reads_like_the_csv(tmp_path):
    from_csv = read_batch_file(str(write(tmp_path, [BATCH_HEADER, *STAMPED], "batch.csv")))
    path = tmp_path / "batch.parquet"
    raw = pd.read_csv(tmp_path / "batch.csv", dtype=str, keep_default_na=False)
    raw.to_parquet(path)

    pd.testing.assert_frame_equal(read_batch_file(str(path)), from_csv)


def test_a_labels_only_csv_reads_as_labels_with_class_as_income(tmp_path):
    lines = ["user_id,event_timestamp,class", "10,2024-05-01T08:00:00Z,>50K.", "11,2024-05-02,<=50K"]

    labels = read_batch_file(str(write(tmp_path, lines, "labels.csv")))

    assert list(labels.columns) == ["user_id", "event_timestamp", "income"]
    assert labels["income"].tolist() == [">50K", "<=50K"]
    assert validate_labels(labels, "labels.csv").valid["user_id"].tolist() == [10, 11]


def test_a_batch_without_ids_or_times_is_refused(tmp_path):
    path = write(tmp_path, [HEADER, *ROWS], "batch.csv")

    with pytest.raises(InvalidInputError, match=r"needs user_id and event_timestamp; missing: user_id"):
        read_batch_file(str(path))


def test_an_adult_file_becomes_a_batch_file_with_its_derived_ids_and_times(tmp_path):
    source = write(tmp_path, [HEADER, *ROWS], "adult.csv")
    destination = str(tmp_path / "batch.parquet")

    rows = to_batch_file(source, destination)

    batch, records = read_batch_file(destination), read_adult_csv(source)
    assert rows == len(batch) == 3
    pd.testing.assert_frame_equal(batch, records)


def test_unreadable_batch_files_are_named(tmp_path):
    missing = tmp_path / "none.csv"
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")

    with pytest.raises(InvalidInputError, match=rf"^{missing}: file not found$"):
        read_batch_file(str(missing))
    with pytest.raises(InvalidInputError, match=rf"^{broken}: not a readable parquet file"):
        read_batch_file(str(broken))
