"""Read UCI Adult-format CSV files into raw records (values still text; validation types them).

The header is normalised (surrounding spaces stripped, lower case, hyphens to
underscores), every value is stripped, `?` and empty values become None, and the
`class` column becomes `income` without the trailing "." of `adult.test` (">50K." ->
">50K"). A file without `class` holds new people to score: income is None throughout.

The Adult files identify neither people nor moments, so when the file has no
`user_id` / `event_timestamp` column they are derived from the data row position i
(0-based, blank lines skipped) out of n rows:

- user_id = user_id_offset + i + 1, so two files read with offsets that do not overlap
  never share an id;
- event_timestamp = 1994-01-01T00:00:00Z + floor(i * 365 days / n), in microseconds:
  rows spread evenly over the 1994 survey year, in file order, so time-based
  train/test splits are possible.

Either column, when present, is used as given (timestamps parsed as UTC, naive ones taken
as UTC; values that do not parse stay text for validation to quarantine).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from income.data.schema import ADULT_ATTRIBUTES, ENTITY_KEY, LABEL_SOURCE, RAW_COLUMNS, TIMESTAMP
from income.data.validation import InvalidInputError, parse_timestamps

SURVEY_START = pd.Timestamp("1994-01-01T00:00:00Z")
SURVEY_MICROS = 365 * 24 * 3600 * 1_000_000
CLASS_COLUMN = "class"
MISSING_MARKERS = ["?", ""]


def normalise_header(name: str) -> str:
    """Adult header name -> snake_case column name ("education-num" -> "education_num")."""
    return name.strip().lower().replace("-", "_")


def _read_text(path: Path) -> str:
    """The file's text; fails with the file named when it is missing, binary or empty."""
    if not path.is_file():
        raise InvalidInputError(f"{path}: file not found")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InvalidInputError(f"{path}: cannot read the file ({error.strerror})") from error
    if b"\x00" in data:
        raise InvalidInputError(f"{path}: not a text file (binary content)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInputError(
            f"{path}: not a UTF-8 text file (bad byte at position {error.start})"
        ) from error
    if not text.strip():
        raise InvalidInputError(f"{path}: empty file")
    return text


def _require_header(columns: list[str], path: Path) -> None:
    known = {*ADULT_ATTRIBUTES, CLASS_COLUMN, ENTITY_KEY, TIMESTAMP}
    if not known.intersection(columns):
        raise InvalidInputError(
            f"{path}: no header row (first line reads {','.join(columns)[:80]!r}); "
            f"expected Adult column names such as age,workclass,fnlwgt,..."
        )
    missing = [column for column in ADULT_ATTRIBUTES if column not in columns]
    if missing:
        raise InvalidInputError(f"{path}: required Adult columns missing: {', '.join(missing)}")


def _derived_timestamps(n_rows: int) -> pd.Series:
    offsets = np.arange(n_rows, dtype="int64") * SURVEY_MICROS // max(n_rows, 1)
    start = SURVEY_START.value // 1000  # Timestamp.value is in nanoseconds
    return pd.Series((start + offsets).astype("datetime64[us]")).dt.tz_localize("UTC")


def _timestamps_as_given(values: pd.Series) -> pd.Series:
    """Parsed UTC timestamps where every present value parses, else the text unchanged."""
    parsed = parse_timestamps(values)
    return parsed if not (values.notna() & parsed.isna()).any() else values


def read_adult_csv(path: str | Path, user_id_offset: int = 0) -> pd.DataFrame:
    """Raw records (RAW_COLUMNS, attribute values as text or None) from an Adult-format CSV."""
    path = Path(path)
    _read_text(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InvalidInputError(f"{path}: not a readable CSV file ({error})") from error
    frame.columns = [normalise_header(str(name)) for name in frame.columns]
    _require_header(list(frame.columns), path)
    frame = frame.apply(lambda values: values.str.strip())
    frame = frame.where(~frame.isin(MISSING_MARKERS), None)
    n_rows = len(frame)
    records = pd.DataFrame(index=frame.index)
    if ENTITY_KEY in frame:
        records[ENTITY_KEY] = frame[ENTITY_KEY]
    else:
        records[ENTITY_KEY] = np.arange(1, n_rows + 1, dtype="int64") + user_id_offset
    if TIMESTAMP in frame:
        records[TIMESTAMP] = _timestamps_as_given(frame[TIMESTAMP])
    else:
        records[TIMESTAMP] = _derived_timestamps(n_rows)
    for column in ADULT_ATTRIBUTES:
        records[column] = frame[column]
    if CLASS_COLUMN in frame:
        records[LABEL_SOURCE] = frame[CLASS_COLUMN].str.removesuffix(".")
    else:
        records[LABEL_SOURCE] = None
    return records[RAW_COLUMNS].astype({LABEL_SOURCE: object}).reset_index(drop=True)
