"""Validate raw census records: typed valid rows out, every rejected row quarantined with why.

The rules live in one pandera schema, `RAW_RECORDS_SCHEMA`: its parsers turn text or
numbers into typed columns (unparseable values become missing, which the not-null rule
then rejects), its checks hold the bounds and domains of `income.data.domains`, and one
frame-wide check rejects repeated (user_id, event_timestamp) keys after the first.
`validate_records` runs it lazily, so one pass collects every failure of every row.

Per-row failures are quarantined; only problems with the input as a whole are fatal
(`InvalidInputError`): a required column missing, a column of the wrong kind, or more
rows rejected than `max_invalid_share` allows (every quarantined row counts, conflicts and
future timestamps included; already ingested rows do not). A batch of fewer than
MIN_ROWS_FOR_SHARE rows is not judged by its share: one bad row in a daily batch of three is
not a broken input (its bad rows are quarantined all the same).

Validation against time and history (keyword arguments of both validators):

- `now`: a row with event_timestamp > now is quarantined, "event_timestamp in the future".
- `history` (records) / `history_labels` (labels): what the bronze layer already holds for
  these users. Only rows that passed every other rule are compared, by (user_id,
  event_timestamp) against the first earlier copy of the key (the first value wins):

  records: attributes (RAW_COLUMNS but income) equal, null-safe, and income equal or missing
  in the new row -> already ingested: dropped, counted in `already_ingested`, not quarantined
  (its data is stored). Attributes different, or both incomes present and different ->
  quarantined, "conflicts with an earlier batch (the first value wins)". Attributes equal
  but the earlier copy had no income and the new row has one -> quarantined, "label for an
  already ingested record: send it in a labels-only batch": a record batch never changes a
  stored record, and labels that arrive later travel as labels (`validate_labels`), whose
  history also holds labels delivered that way.

  labels: same income -> already ingested; different -> quarantined, "conflicts with an
  earlier label (the first value wins)". A label whose record is not (yet) in the bronze
  layer is valid: the label table joins labels to records when it is built.

`validate_labels` checks a labels-only batch (user_id, event_timestamp, income; `class` is
a synonym of income, Adult's trailing "." removed). `is_labels_only` tells one from a
record batch by its columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from income.data.domains import CATEGORICAL_DOMAINS, NUMERIC_BOUNDS
from income.data.schema import (
    ADULT_ATTRIBUTES,
    CATEGORICAL_ATTRIBUTES,
    ENTITY_KEY,
    HIGH_INCOME,
    LABEL_SOURCE,
    LOW_INCOME,
    NULLABLE_ATTRIBUTES,
    NUMERIC_ATTRIBUTES,
    RAW_COLUMNS,
    TIMESTAMP,
)

KEY_COLUMNS = [ENTITY_KEY, TIMESTAMP]
LABEL_ONLY_COLUMNS = [ENTITY_KEY, TIMESTAMP, LABEL_SOURCE]
CLASS_COLUMN = "class"  # Adult's name of the income column
INTEGER_COLUMNS = [ENTITY_KEY, *NUMERIC_ATTRIBUTES]
DUPLICATE_REASON = "duplicate (user_id, event_timestamp)"
FUTURE_REASON = "event_timestamp in the future"
CONFLICT_REASON = "conflicts with an earlier batch (the first value wins)"
LATE_LABEL_REASON = "label for an already ingested record: send it in a labels-only batch"
LABEL_CONFLICT_REASON = "conflicts with an earlier label (the first value wins)"
QUARANTINE_EXTRA_COLUMNS = ["row_number", "reason", "source"]

MIN_ROWS_FOR_SHARE = 20  # smaller batches are not judged by their share of invalid rows


class InvalidInputError(ValueError):
    """The input as a whole is unusable: missing file or column, wrong kind, too many bad rows."""


def parse_integers(values: pd.Series) -> pd.Series:
    """Numbers as float64; missing or unparseable values become NaN."""
    return pd.to_numeric(values, errors="coerce").astype("float64")


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Timestamps as datetime64[us, UTC] (naive ones are taken as UTC); unparseable become NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        parsed = values.dt.tz_localize("UTC")
    else:
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    # Spark cannot read nanosecond parquet timestamps: microseconds everywhere.
    return parsed.dt.as_unit("us")


def parse_text(values: pd.Series) -> pd.Series:
    """Values as an object column with None for missing (NaN and pd.NA included)."""
    return values.astype(object).where(values.notna(), None)


def _is_integer(values: pd.Series) -> pd.Series:
    return values == np.floor(values)


def _integer_column(column: str, low: int, high: int | None) -> pa.Column:
    bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
    in_bounds = (
        pa.Check.in_range(low, high, error=f"{column} out of range {bounds}")
        if high is not None
        else pa.Check.ge(low, error=f"{column} out of range {bounds}")
    )
    return pa.Column(
        "float64",
        parsers=pa.Parser(parse_integers),
        checks=[pa.Check(_is_integer, error=f"{column} not an integer"), in_bounds],
        nullable=False,
    )


def _text_column(column: str, allowed: list[str], nullable: bool) -> pa.Column:
    return pa.Column(
        object,
        parsers=pa.Parser(parse_text),
        checks=pa.Check.isin(allowed, error=f"{column} not in domain"),
        nullable=nullable,
    )


def _first_of_each_key(records: pd.DataFrame) -> pd.Series:
    # Rows with a missing key part are rejected by the not-null rules, not as duplicates.
    return ~records.duplicated(KEY_COLUMNS, keep="first") | records[KEY_COLUMNS].isna().any(axis=1)


RAW_RECORDS_SCHEMA = pa.DataFrameSchema(
    {
        ENTITY_KEY: pa.Column(
            "float64",
            parsers=pa.Parser(parse_integers),
            checks=[
                pa.Check(_is_integer, error=f"{ENTITY_KEY} not an integer"),
                pa.Check.gt(0, error=f"{ENTITY_KEY} not positive"),
            ],
            nullable=False,
        ),
        TIMESTAMP: pa.Column("datetime64[us, UTC]", parsers=pa.Parser(parse_timestamps), nullable=False),
        **{column: _integer_column(column, *NUMERIC_BOUNDS[column]) for column in NUMERIC_ATTRIBUTES},
        **{
            column: _text_column(column, CATEGORICAL_DOMAINS[column], column in NULLABLE_ATTRIBUTES)
            for column in CATEGORICAL_ATTRIBUTES
        },
        LABEL_SOURCE: _text_column(LABEL_SOURCE, [HIGH_INCOME, LOW_INCOME], nullable=True),
    },
    checks=[pa.Check(_first_of_each_key, error=DUPLICATE_REASON)],
    coerce=False,
)
LABELS_SCHEMA = pa.DataFrameSchema(
    {
        ENTITY_KEY: RAW_RECORDS_SCHEMA.columns[ENTITY_KEY],
        TIMESTAMP: RAW_RECORDS_SCHEMA.columns[TIMESTAMP],
        LABEL_SOURCE: _text_column(LABEL_SOURCE, [HIGH_INCOME, LOW_INCOME], nullable=False),
    },
    checks=[pa.Check(_first_of_each_key, error=DUPLICATE_REASON)],
    coerce=False,
)


@dataclass(frozen=True)
class ValidationSummary:
    """Counts of one validation run; JSON-friendly (shown in a Flyte Deck)."""

    source: str
    rows: int
    valid_rows: int
    quarantined_rows: int
    max_invalid_share: float
    reasons: dict[str, int]
    # Rows already in the bronze layer with the same values: dropped, neither valid nor quarantined.
    already_ingested: int = 0

    @property
    def invalid_share(self) -> float:
        """Share of input rows that were quarantined."""
        return self.quarantined_rows / self.rows if self.rows else 0.0

    def to_html(self) -> str:
        """A small HTML table of the counts and the reasons, most frequent first."""
        from income.platform import report_html as h

        counts = [
            ("source", self.source),
            ("rows", f"{self.rows:,}"),
            ("valid rows", f"{self.valid_rows:,}"),
            ("quarantined rows", f"{self.quarantined_rows:,} ({self.invalid_share:.2%})"),
            ("already ingested rows", f"{self.already_ingested:,}"),
            ("max invalid share", f"{self.max_invalid_share:.2%}"),
        ]
        reasons = [(reason, f"{count:,}") for reason, count in self.reasons.items()]
        return (
            h.heading(f"Validation of {self.source}")
            + h.key_values(counts)
            + h.table(["reason", "rows"], reasons)
        )


@dataclass(frozen=True)
class ValidationResult:
    """Typed valid records, the quarantined rows with their reasons, and the counts."""

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    summary: ValidationSummary


def _require_columns(raw: pd.DataFrame, source: str, columns: list[str]) -> None:
    missing = [column for column in columns if column not in raw.columns]
    if missing:
        raise InvalidInputError(f"{source}: required columns missing: {', '.join(missing)}")


def _require_parseable_columns(raw: pd.DataFrame, source: str) -> None:
    """Fail when most present values of a number or timestamp column do not parse."""
    expected = {column: (parse_integers, "integers") for column in INTEGER_COLUMNS}
    expected[TIMESTAMP] = (parse_timestamps, "timestamps")
    for column, (parse, kind) in expected.items():
        if column not in raw.columns:
            continue
        present = raw[column].notna()
        unparsed = present & parse(raw[column]).isna()
        if unparsed.sum() * 2 > present.sum():
            example = raw[column][unparsed].iloc[0]
            raise InvalidInputError(
                f"{source}: column {column!r} should hold {kind}, but {unparsed.sum():,} of "
                f"its {present.sum():,} values do not parse (e.g. {example!r})"
            )


def _as_text(values: pd.Series) -> pd.Series:
    return values.astype(str).where(values.notna(), None).astype(object)


def _no_failures() -> pd.DataFrame:
    return pd.DataFrame({"row_number": pd.Series([], dtype="int64"), "short": [], "detail": []})


def _failures(records: pd.DataFrame, source: str, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """One row per (row_number, rule) that failed: columns row_number, short, detail."""
    try:
        schema.validate(records, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return _no_failures()
    whole_column = cases["index"].isna()
    if whole_column.any():
        first = cases[whole_column].iloc[0]
        raise InvalidInputError(
            f"{source}: column {first['column']!r} failed {first['check']!r} as a whole "
            f"(found {first['failure_case']!r})"
        )
    frame_wide = cases["schema_context"] == "DataFrameSchema"
    wide = cases.loc[frame_wide & (cases["check"] == DUPLICATE_REASON), ["index"]]
    wide = wide.drop_duplicates().assign(short=DUPLICATE_REASON, column=ENTITY_KEY)
    by_column = cases.loc[~frame_wide, ["index", "column", "check"]]
    row_number = by_column["index"].astype("int64").to_numpy()
    original = np.empty(len(by_column), dtype=object)
    for column in by_column["column"].unique():
        at = (by_column["column"] == column).to_numpy()
        original[at] = records[column].to_numpy(dtype=object)[row_number[at]]
    short = by_column["check"].to_numpy(dtype=object).copy()
    nulls = short == "not_nullable"
    was_missing = pd.isna(original)
    column_names = by_column["column"].to_numpy(dtype=object)
    expected = np.where(column_names == TIMESTAMP, "a timestamp", "a number")
    short[nulls & was_missing] = column_names[nulls & was_missing] + " missing"
    unparsed = nulls & ~was_missing
    short[unparsed] = column_names[unparsed] + " not " + expected[unparsed]
    detail = short.copy()
    shown = ~was_missing
    detail[shown] = short[shown] + ": " + pd.Series(original[shown]).astype(str).to_numpy()
    failures = pd.DataFrame(
        {"row_number": row_number, "short": short, "detail": detail, "column": column_names}
    )
    wide = wide.rename(columns={"index": "row_number"}).assign(detail=DUPLICATE_REASON)
    failures = pd.concat([failures, wide.astype({"row_number": "int64"})], ignore_index=True)
    # Reasons in column order, so a row's reason reads the same way on every run.
    failures["order"] = failures["column"].map({c: i for i, c in enumerate(records.columns)})
    failures = failures.sort_values(["row_number", "order", "short"], kind="stable")
    return failures[["row_number", "short", "detail"]].drop_duplicates()


def _future_failures(records: pd.DataFrame, now: pd.Timestamp | None) -> pd.DataFrame:
    """A failure for each row whose timestamp parses and lies after `now` (naive: UTC)."""
    if now is None:
        return _no_failures()
    now = pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now
    late = np.flatnonzero((parse_timestamps(records[TIMESTAMP]) > now).to_numpy())
    return pd.DataFrame({"row_number": late.astype("int64"), "short": FUTURE_REASON, "detail": FUTURE_REASON})


def _typed(rows: pd.DataFrame) -> pd.DataFrame:
    """The contract types (raw records or labels), for rows that passed every rule."""
    typed = {}
    for column in rows.columns:
        values = rows[column]
        if column == TIMESTAMP:
            typed[column] = parse_timestamps(values)
        elif column in INTEGER_COLUMNS:
            # Integers given as integers keep every bit; anything else went through float64.
            if not pd.api.types.is_integer_dtype(values.dtype):
                values = parse_integers(values)
            typed[column] = values.astype("int64")
        else:
            typed[column] = parse_text(values)
    return pd.DataFrame(typed, index=rows.index)


def _earlier_copies(history: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The first earlier copy of each key, typed like validation's output."""
    first = history[columns].drop_duplicates(KEY_COLUMNS, keep="first")
    return _typed(first.reset_index(drop=True))


def _same(new: pd.Series, old: pd.Series) -> np.ndarray:
    """Null-safe equality: equal values, or both missing."""
    new, old = parse_text(new), parse_text(old)
    both_missing = new.isna().to_numpy() & old.isna().to_numpy()
    return (new.to_numpy(dtype=object) == old.to_numpy(dtype=object)) | both_missing


def _matched(valid: pd.DataFrame, history: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`valid` (index kept) with each key's earlier copy beside it, columns suffixed `_earlier`."""
    earlier = _earlier_copies(history, columns).assign(_found=True)
    matched = valid.reset_index().merge(earlier, on=KEY_COLUMNS, how="left", suffixes=("", "_earlier"))
    matched["_found"] = matched["_found"].notna()
    return matched.set_index("index")


def _record_outcomes(valid: pd.DataFrame, history: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """(already ingested, reason or None) of each valid record, against the earlier records."""
    reasons = np.full(len(valid), None, dtype=object)
    if history is None or valid.empty:
        return np.zeros(len(valid), dtype=bool), reasons
    matched = _matched(valid, history, RAW_COLUMNS)
    found = matched["_found"].to_numpy()
    attributes_same = np.ones(len(valid), dtype=bool)
    for column in ADULT_ATTRIBUTES:
        attributes_same &= _same(matched[column], matched[f"{column}_earlier"])
    new_income, old_income = matched[LABEL_SOURCE], matched[f"{LABEL_SOURCE}_earlier"]
    income_known = new_income.notna().to_numpy()
    late_label = found & attributes_same & income_known & old_income.isna().to_numpy()
    already = found & attributes_same & (~income_known | _same(new_income, old_income))
    reasons[late_label] = LATE_LABEL_REASON
    reasons[found & ~already & ~late_label] = CONFLICT_REASON
    return already, reasons


def _label_outcomes(valid: pd.DataFrame, history: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """(already ingested, reason or None) of each valid label, against the earlier labels."""
    reasons = np.full(len(valid), None, dtype=object)
    if history is None or valid.empty:
        return np.zeros(len(valid), dtype=bool), reasons
    matched = _matched(valid, history, LABEL_ONLY_COLUMNS)
    found = matched["_found"].to_numpy()
    already = found & _same(matched[LABEL_SOURCE], matched[f"{LABEL_SOURCE}_earlier"])
    reasons[found & ~already] = LABEL_CONFLICT_REASON
    return already, reasons


def _validate(
    records: pd.DataFrame, source: str, max_invalid_share: float, schema, now, outcomes
) -> ValidationResult:
    """The shared pass: schema rules, the future, then history via `outcomes(valid rows)`."""
    _require_parseable_columns(records, source)
    failures = pd.concat([_failures(records, source, schema), _future_failures(records, now)])
    is_rejected = np.zeros(len(records), dtype=bool)
    is_rejected[failures["row_number"].to_numpy(dtype="int64")] = True
    typed = _typed(records[~is_rejected])
    already, history_reasons = outcomes(typed)
    in_conflict = pd.notna(history_reasons)
    conflicting = typed.index.to_numpy()[in_conflict]
    history_failures = pd.DataFrame(
        {
            "row_number": conflicting,
            "short": history_reasons[in_conflict],
            "detail": history_reasons[in_conflict],
        }
    )
    failures = pd.concat([failures, history_failures], ignore_index=True)
    failures = failures.sort_values("row_number", kind="stable")
    is_rejected[conflicting] = True
    reasons = failures.groupby("row_number", sort=True)["detail"].agg("; ".join)
    counts = failures.drop_duplicates(["row_number", "short"])["short"].value_counts()
    summary = ValidationSummary(
        source=source,
        rows=len(records),
        valid_rows=int((~is_rejected).sum() - already.sum()),
        quarantined_rows=int(is_rejected.sum()),
        max_invalid_share=max_invalid_share,
        reasons={str(reason): int(count) for reason, count in counts.items()},
        already_ingested=int(already.sum()),
    )
    if summary.invalid_share > max_invalid_share and summary.rows >= MIN_ROWS_FOR_SHARE:
        top = "; ".join(f"{reason} ({count:,})" for reason, count in list(counts.items())[:5])
        raise InvalidInputError(
            f"{source}: {summary.invalid_share:.2%} of {summary.rows:,} rows are invalid, more "
            f"than the allowed {max_invalid_share:.2%}; top reasons: {top}"
        )
    valid = typed[~already & ~in_conflict].reset_index(drop=True)
    rejected = records[is_rejected]
    quarantine = pd.DataFrame({column: _as_text(rejected[column]) for column in records.columns})
    quarantine["row_number"] = rejected.index.to_numpy(dtype="int64")
    quarantine["reason"] = reasons.to_numpy(dtype=object)
    quarantine["source"] = source
    return ValidationResult(valid=valid, quarantine=quarantine.reset_index(drop=True), summary=summary)


def validate_records(
    raw: pd.DataFrame,
    source: str,
    max_invalid_share: float = 0.05,
    *,
    now: pd.Timestamp | None = None,
    history: pd.DataFrame | None = None,
) -> ValidationResult:
    """Split raw records into typed valid rows and quarantined rows with their reasons.

    `now` quarantines later timestamps; `history` (earlier bronze records of these users,
    RAW_COLUMNS) drops rows already ingested and quarantines conflicting ones (module docstring).
    """
    _require_columns(raw, source, RAW_COLUMNS)
    records = raw[RAW_COLUMNS].reset_index(drop=True)
    return _validate(
        records,
        source,
        max_invalid_share,
        RAW_RECORDS_SCHEMA,
        now,
        lambda valid: _record_outcomes(valid, history),
    )


def labels_with_income_column(raw: pd.DataFrame) -> pd.DataFrame:
    """`raw` with `class` (when there is no income column) as income, Adult's trailing "." removed."""
    if LABEL_SOURCE in raw.columns or CLASS_COLUMN not in raw.columns:
        return raw
    income = parse_text(raw[CLASS_COLUMN]).map(
        lambda value: value.removesuffix(".") if isinstance(value, str) else value
    )
    return raw.drop(columns=[CLASS_COLUMN]).assign(**{LABEL_SOURCE: income.astype(object)})


def validate_labels(
    raw: pd.DataFrame,
    source: str,
    max_invalid_share: float = 0.05,
    *,
    now: pd.Timestamp | None = None,
    history_labels: pd.DataFrame | None = None,
) -> ValidationResult:
    """Split a labels-only batch into typed labels (LABEL_ONLY_COLUMNS) and quarantined rows.

    Every label needs a user, a time and an income (">50K" or "<=50K"); `class` stands for
    income. `now` and `history_labels` (earlier labels of these users, inline or labels-only)
    work as in `validate_records` (module docstring).
    """
    raw = labels_with_income_column(raw)
    _require_columns(raw, source, LABEL_ONLY_COLUMNS)
    labels = raw[LABEL_ONLY_COLUMNS].reset_index(drop=True)
    return _validate(
        labels,
        source,
        max_invalid_share,
        LABELS_SCHEMA,
        now,
        lambda valid: _label_outcomes(valid, history_labels),
    )


def is_labels_only(columns) -> bool:
    """Whether an input with these columns is a labels-only batch rather than records.

    True when it has user_id, event_timestamp and income (or `class`) and no Adult attribute.
    """
    names = set(columns)
    has_label = LABEL_SOURCE in names or CLASS_COLUMN in names
    return {ENTITY_KEY, TIMESTAMP} <= names and has_label and not names & set(ADULT_ATTRIBUTES)
