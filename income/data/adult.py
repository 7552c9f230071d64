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

`python -m income.data.adult ADULT.csv BATCH.parquet` writes such a file as a batch file for
the feature pipeline, with the derived columns made explicit (`make adult` does this).

Either column, when present, is used as given (timestamps parsed as UTC, naive ones taken
as UTC; values that do not parse stay text for validation to quarantine).

`read_batch_file` reads one batch of the daily pipeline from any URI pyarrow reaches: a CSV
(normalised as above) or a parquet file (by the `.parquet` / `.pq` suffix; headers and text
values normalised the same way). A batch must identify people and moments itself, so
`user_id` and `event_timestamp` are required. A file with those, `income` or `class`, and no
Adult attribute is a labels-only batch (`validation.is_labels_only`) and reads as
LABEL_ONLY_COLUMNS; any other file reads as raw records (RAW_COLUMNS).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from income.data.schema import ADULT_ATTRIBUTES, ENTITY_KEY, LABEL_SOURCE, RAW_COLUMNS, TIMESTAMP
from income.data.validation import LABEL_ONLY_COLUMNS, InvalidInputError, is_labels_only, parse_timestamps
from income.platform.files import filesystem_and_path, write_parquet_atomically

SURVEY_START = pd.Timestamp("1994-01-01T00:00:00Z")
SURVEY_MICROS = 365 * 24 * 3600 * 1_000_000
CLASS_COLUMN = "class"
MISSING_MARKERS = ["?", ""]


def normalise_header(name: str) -> str:
    """Adult header name -> snake_case column name ("education-num" -> "education_num")."""
    return name.strip().lower().replace("-", "_")


def _read_bytes(uri: str | Path) -> bytes:
    """The file's bytes, on any filesystem pyarrow reaches; fails with the file named."""
    filesystem, path = filesystem_and_path(str(uri))
    try:
        if filesystem.get_file_info(path).type != pa.fs.FileType.File:
            raise InvalidInputError(f"{uri}: file not found")
        with filesystem.open_input_stream(path) as stream:
            return stream.read()
    except OSError as error:
        raise InvalidInputError(f"{uri}: cannot read the file ({error})") from error


def _read_text(path: str | Path) -> str:
    """The file's text; fails with the file named when it is missing, binary or empty."""
    data = _read_bytes(path)
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


def _parse_csv(text: str, path: str | Path) -> pd.DataFrame:
    """Every column as stripped text with None for missing, headers normalised."""
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InvalidInputError(f"{path}: not a readable CSV file ({error})") from error
    frame.columns = [normalise_header(str(name)) for name in frame.columns]
    frame = frame.apply(lambda values: values.str.strip())
    return frame.where(~frame.isin(MISSING_MARKERS), None)


def _parse_parquet(data: bytes, path: str | Path) -> pd.DataFrame:
    """The columns as stored, headers normalised, text stripped with None for missing."""
    try:
        frame = pq.read_table(pa.BufferReader(data)).to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise InvalidInputError(f"{path}: not a readable parquet file ({error})") from error
    frame.columns = [normalise_header(str(name)) for name in frame.columns]
    for column in frame.columns:
        if frame[column].dtype == object or isinstance(frame[column].dtype, pd.StringDtype):
            text = frame[column].astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
            frame[column] = text.where(~text.isin(MISSING_MARKERS) & text.notna(), None)
    return frame


def _income(frame: pd.DataFrame) -> pd.Series:
    """The label column: `income`, else `class` without Adult's trailing ".", else all None."""
    if LABEL_SOURCE in frame:
        return frame[LABEL_SOURCE].astype(object)
    if CLASS_COLUMN in frame:
        values = frame[CLASS_COLUMN].astype(object)
        return values.map(lambda v: v.removesuffix(".") if isinstance(v, str) else v)
    return pd.Series([None] * len(frame), index=frame.index, dtype=object)


def _records(frame: pd.DataFrame, path: str | Path, user_id_offset: int) -> pd.DataFrame:
    """Raw records (RAW_COLUMNS) from a normalised frame; ids and times derived when absent."""
    _require_header(list(frame.columns), path)
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
    records[LABEL_SOURCE] = _income(frame)
    return records[RAW_COLUMNS].astype({LABEL_SOURCE: object}).reset_index(drop=True)


def read_adult_csv(path: str | Path, user_id_offset: int = 0) -> pd.DataFrame:
    """Raw records (RAW_COLUMNS, attribute values as text or None) from an Adult-format CSV."""
    path = Path(path)
    return _records(_parse_csv(_read_text(path), path), path, user_id_offset)


def read_batch_file(uri: str) -> pd.DataFrame:
    """One batch file (CSV or parquet): raw records, or labels when it is labels-only (see above)."""
    is_parquet = uri.lower().endswith((".parquet", ".pq"))
    frame = _parse_parquet(_read_bytes(uri), uri) if is_parquet else _parse_csv(_read_text(uri), uri)
    missing = [column for column in (ENTITY_KEY, TIMESTAMP) if column not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"{uri}: a batch file needs user_id and event_timestamp; missing: {', '.join(missing)}"
        )
    if is_labels_only(frame.columns):
        labels = frame[[ENTITY_KEY]].assign(
            **{TIMESTAMP: _timestamps_as_given(frame[TIMESTAMP]), LABEL_SOURCE: _income(frame)}
        )
        return labels[LABEL_ONLY_COLUMNS].reset_index(drop=True)
    return _records(frame, uri, user_id_offset=0)


def to_batch_file(source: str | Path, destination: str, user_id_offset: int = 0) -> int:
    """An Adult-format CSV -> a batch file (parquet) with its derived user_id and event_timestamp."""
    records = read_adult_csv(source, user_id_offset)
    write_parquet_atomically(records, destination)
    return len(records)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: python -m income.data.adult ADULT.csv BATCH.parquet")
    try:
        rows = to_batch_file(argv[0], argv[1])
    except InvalidInputError as error:
        sys.exit(str(error))
    print(f"{argv[1]}: {rows:,} records with derived user_id and event_timestamp, from {argv[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
