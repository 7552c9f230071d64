"""The bronze layer: append-only batches, idempotent by id, readable by user, forgettable."""

from __future__ import annotations

import datetime as dt
import glob
import hashlib

import pandas as pd
import pyarrow.parquet as pq
import pytest

from income.data import batches
from income.data.batches import LABELS, RECORDS
from income.data.schema import RAW_COLUMNS
from income.data.synthetic import SyntheticWorld, generate_records
from income.data.validation import LABEL_ONLY_COLUMNS, validate_labels, validate_records
from income.platform.lineage import content_hash

DAY1, DAY2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)
A, B, C = "a" * 16, "b" * 16, "c" * 16


@pytest.fixture
def root(tmp_path) -> str:
    return str(tmp_path / "offline")


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return generate_records(30, seed=3)


def labels_of(records: pd.DataFrame) -> pd.DataFrame:
    return records.loc[records["income"].notna(), LABEL_ONLY_COLUMNS].reset_index(drop=True)


def all_parquet_rows(root: str) -> pd.DataFrame:
    files = glob.glob(f"{root}/**/*.parquet", recursive=True)
    return pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)


def test_batch_id_is_the_first_16_hex_digits_of_the_sha256():
    digest = hashlib.sha256(b"batch").hexdigest()

    assert batches.batch_id(digest) == digest[:16]
    with pytest.raises(ValueError, match="not a sha256"):
        batches.batch_id("xyz")


def test_file_sha256_is_the_digest_of_the_bytes(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"user_id,event_timestamp\n")

    assert batches.file_sha256(str(path)) == hashlib.sha256(b"user_id,event_timestamp\n").hexdigest()


def test_append_writes_the_layout_and_reads_back_the_typed_rows(root, records):
    batch, written = batches.append_batch(root, RECORDS, records, DAY1, A)

    assert written
    assert batch == batches.Batch(
        RECORDS, DAY1, A, f"{root}/raw/records/ingest_date=2024-03-01/batch={A}/part-0.parquet", len(records)
    )
    assert glob.glob(batches.bronze_glob(root, RECORDS)) == [batch.uri]
    back = batches.read_bronze(root, RECORDS)
    pd.testing.assert_frame_equal(back[RAW_COLUMNS], records)
    assert set(back["ingest_date"]) == {DAY1} and set(back["batch_id"]) == {A}


def test_the_same_id_twice_writes_nothing_even_on_another_day_or_kind(root, records):
    first, _ = batches.append_batch(root, RECORDS, records, DAY1, A)
    files_before = sorted(glob.glob(f"{root}/**", recursive=True))

    again, written = batches.append_batch(root, RECORDS, records.head(3), DAY2, A)
    as_labels, labels_written = batches.append_batch(root, LABELS, labels_of(records), DAY2, A)

    assert (again, as_labels) == (first, first)
    assert not written and not labels_written
    assert sorted(glob.glob(f"{root}/**", recursive=True)) == files_before


def test_list_and_find_batches_in_ingest_order(root, records):
    batches.append_batch(root, LABELS, labels_of(records), DAY2, A)
    batches.append_batch(root, RECORDS, records, DAY2, C)
    batches.append_batch(root, RECORDS, records.head(2), DAY1, B)

    listed = batches.list_batches(root)

    assert [(b.kind, b.ingest_date, b.batch_id) for b in listed] == [
        (RECORDS, DAY1, B),
        (LABELS, DAY2, A),
        (RECORDS, DAY2, C),
    ]
    assert [b.batch_id for b in batches.list_batches(root, RECORDS)] == [B, C]
    assert batches.find_batch(root, A).rows == len(labels_of(records))
    assert batches.find_batch(root, "d" * 16) is None
    assert batches.list_batches(f"{root}/nothing-here") == []


def test_an_empty_batch_is_recorded_with_its_schema(root, records):
    batches.append_batch(root, RECORDS, records, DAY1, A)
    no_income = records.head(0)

    batch, written = batches.append_batch(root, RECORDS, no_income, DAY2, B)

    assert written and batch.rows == 0
    assert batches.find_batch(root, B) == batch
    assert pq.read_schema(batch.uri).field("workclass").type == "string"
    assert len(batches.read_bronze(root, RECORDS)) == len(records)


def test_all_missing_text_is_stored_as_strings(root, records):
    batch, _ = batches.append_batch(root, RECORDS, records.assign(income=None), DAY1, A)

    assert str(pq.read_schema(batch.uri).field("income").type) == "string"
    assert batches.read_bronze(root, RECORDS)["income"].isna().all()


def test_read_with_users_filter_returns_only_those_users_in_ingest_order(root, records):
    batches.append_batch(root, RECORDS, records[records["user_id"] > 10], DAY2, A)
    batches.append_batch(root, RECORDS, records[records["user_id"] <= 10], DAY1, B)

    some = batches.read_bronze(root, RECORDS, users=[3, 12])

    expected = pd.concat([records[records["user_id"] == 3], records[records["user_id"] == 12]])
    pd.testing.assert_frame_equal(some[RAW_COLUMNS], expected.reset_index(drop=True))
    assert (
        some["ingest_date"].tolist()
        == [DAY1] * (some["user_id"] == 3).sum() + [DAY2] * (some["user_id"] == 12).sum()
    )
    assert batches.read_bronze(root, RECORDS, users=[]).empty
    assert batches.read_bronze(root, LABELS).empty


def test_read_labels_holds_inline_and_labels_only_labels(root, records):
    inline = records[records["user_id"] <= 10]
    later = labels_of(records[records["user_id"] > 10])
    batches.append_batch(root, RECORDS, inline, DAY1, A)
    batches.append_batch(root, RECORDS, records[records["user_id"] > 10].assign(income=None), DAY1, B)
    batches.append_batch(root, LABELS, later, DAY2, C)

    known = batches.read_labels(root)

    pd.testing.assert_frame_equal(known[LABEL_ONLY_COLUMNS], labels_of(records))
    assert known["batch_id"].tolist() == [A] * len(labels_of(inline)) + [C] * len(later)


def test_remove_users_leaves_no_trace_and_keeps_everyone_else(root, records):
    raw = records.assign(age=records["age"].where(records.index % 7 != 0, 250))
    result = validate_records(raw, "in", max_invalid_share=1.0)
    batches.append_batch(root, RECORDS, result.valid, DAY1, A, quarantine=result.quarantine)
    batches.append_batch(root, LABELS, labels_of(records), DAY2, B)
    forgotten = {1, 7, 8}
    quarantined = result.quarantine["user_id"].astype(int).isin(forgotten).sum()
    before = all_parquet_rows(root)

    removed = batches.remove_users(root, forgotten)

    after = all_parquet_rows(root)
    assert removed == len(before) - len(after) > quarantined > 0
    assert not after["user_id"].astype(int).isin(forgotten).any()
    kept = batches.read_bronze(root, RECORDS)
    expected = result.valid[~result.valid["user_id"].isin(forgotten)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept[RAW_COLUMNS], expected)
    assert batches.find_batch(root, A).rows == len(expected)
    assert batches.remove_users(root, forgotten) == 0


def ingest_day(root: str, world: SyntheticWorld, day: dt.date) -> list[tuple[batches.Batch, bool]]:
    """What a daily run does with a synthetic day: validate against history, then append."""
    now = pd.Timestamp(day + dt.timedelta(days=1), tz="UTC")
    batch = world.day(day)
    written = []
    for kind, frame in ((RECORDS, batch.records), (LABELS, batch.labels)):
        identity = batches.batch_id(content_hash(frame))
        users = frame["user_id"].unique()
        if kind == RECORDS:
            history = batches.read_bronze(root, RECORDS, users)
            result = validate_records(frame, identity, now=now, history=history)
        else:
            result = validate_labels(
                frame, identity, now=now, history_labels=batches.read_labels(root, users)
            )
        written.append(batches.append_batch(root, kind, result.valid, day, identity, result.quarantine))
    return written


def test_a_world_ingested_day_by_day_holds_each_record_and_label_once(root):
    world = SyntheticWorld(300, seed=1, start="2024-01-01", end="2024-03-01", label_lag_days=5)
    until = pd.Timestamp("2024-02-01T00:00:00Z")
    backfill = world.backfill(until)
    result = validate_records(backfill, "backfill", now=until)
    batches.append_batch(
        root, RECORDS, result.valid, dt.date(2024, 1, 31), batches.batch_id(content_hash(backfill))
    )
    days = [dt.date(2024, 2, 1) + dt.timedelta(days=i) for i in range(5)]

    first = [ingest_day(root, world, day) for day in days]
    again = ingest_day(root, world, days[2])

    assert all(written for day in first for _, written in day)
    assert [written for _, written in again] == [False, False]
    records = batches.read_bronze(root, RECORDS)
    expected = world.records()
    expected = expected[expected["event_timestamp"] < pd.Timestamp("2024-02-06T00:00:00Z")]
    assert len(records) == len(expected) and not records.duplicated(["user_id", "event_timestamp"]).any()
    known = batches.read_labels(root)
    ripe = expected[expected["event_timestamp"] < pd.Timestamp("2024-02-01T00:00:00Z")]
    assert len(known) == ripe["income"].notna().sum()
    assert not known.duplicated(["user_id", "event_timestamp"]).any()
