"""as_of times: ISO-8601 in, UTC out, to the microsecond; folder labels that turn back into the same time."""

from __future__ import annotations

import pandas as pd
import pytest

from income.inference.as_of import as_of_label, label_as_of, parse_as_of


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01", "2026-01-01T00:00:00+00:00"),  # naive means UTC
        ("2026-01-01T02:00:00+02:00", "2026-01-01T00:00:00+00:00"),
        ("2026-01-01T00:00:00.0000019Z", "2026-01-01T00:00:00.000001+00:00"),  # below a microsecond: cut
    ],
)
def test_parse_as_of_gives_utc_to_the_microsecond(text, expected):
    assert parse_as_of(text).isoformat() == expected


def test_an_empty_as_of_is_now_to_the_second():
    before = pd.Timestamp.now(tz="UTC").floor("s")
    now = parse_as_of("")
    assert before <= now <= pd.Timestamp.now(tz="UTC") and now.microsecond == 0


def test_a_time_that_is_not_iso_is_refused_naming_it():
    with pytest.raises(ValueError, match="'yesterday'"):
        parse_as_of("yesterday")


@pytest.mark.parametrize(
    ("as_of", "label"),
    [
        ("2026-01-01T00:00:00Z", "2026-01-01T00-00-00Z"),
        ("2026-01-01T12:30:05.000001Z", "2026-01-01T12-30-05.000001Z"),
    ],
)
def test_labels_are_folder_safe_and_turn_back_into_the_time(as_of, label):
    assert as_of_label(pd.Timestamp(as_of)) == label
    assert label_as_of(label) == pd.Timestamp(as_of)


def test_a_folder_name_that_is_not_a_label_is_refused():
    with pytest.raises(ValueError, match="not an as_of label"):
        label_as_of("2026-01-01T00:00:00Z")
