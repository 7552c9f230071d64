"""The time a batch is scored as of: parsed from ISO-8601, and as a folder-safe label and back."""

from __future__ import annotations

import re

import pandas as pd

_LABEL_FORMAT = "%Y-%m-%dT%H-%M-%S"
_LABEL_PATTERN = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})(\.\d{6})?Z$")


def parse_as_of(text: str = "") -> pd.Timestamp:
    """An ISO-8601 time as a UTC timestamp (naive means UTC); empty: now, to the second."""
    if not text:
        return pd.Timestamp.now(tz="UTC").floor("s")
    try:
        ts = pd.Timestamp(text)
    except ValueError as error:
        raise ValueError(
            f"as_of must be an ISO-8601 time such as 2026-01-01T00:00:00Z, not {text!r}"
        ) from error
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.floor("us")


def as_of_label(as_of: pd.Timestamp) -> str:
    """Folder-safe and sortable: 2026-01-01T00-00-00Z (microseconds only when present)."""
    micro = f".{as_of.microsecond:06d}" if as_of.microsecond else ""
    return f"{as_of.strftime(_LABEL_FORMAT)}{micro}Z"


def label_as_of(label: str) -> pd.Timestamp:
    """The inverse of as_of_label."""
    match = _LABEL_PATTERN.match(label)
    if not match:
        raise ValueError(f"not an as_of label: {label!r}")
    day, hh, mm, ss, micro = match.groups()
    return pd.Timestamp(f"{day}T{hh}:{mm}:{ss}{micro or ''}", tz="UTC")
