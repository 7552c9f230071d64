"""Validate raw census records: typed valid rows out, every rejected row quarantined with why.

The rules live in one pandera schema, `RAW_RECORDS_SCHEMA`: its parsers turn text or
numbers into typed columns (unparseable values become missing, which the not-null rule
then rejects), its checks hold the bounds and domains of `income.data.domains`, and one
frame-wide check rejects repeated (user_id, event_timestamp) keys after the first.
`validate_records` runs it lazily, so one pass collects every failure of every row.

Per-row failures are quarantined; only problems with the input as a whole are fatal
(`InvalidInputError`): a required column missing, a column of the wrong kind, or more
rows rejected than `max_invalid_share` allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from income.data.domains import CATEGORICAL_DOMAINS, NUMERIC_BOUNDS
from income.data.schema import (
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
INTEGER_COLUMNS = [ENTITY_KEY, *NUMERIC_ATTRIBUTES]
TEXT_COLUMNS = [*CATEGORICAL_ATTRIBUTES, LABEL_SOURCE]
DUPLICATE_REASON = "duplicate (user_id, event_timestamp)"
QUARANTINE_EXTRA_COLUMNS = ["row_number", "reason", "source"]


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


@dataclass(frozen=True)
class ValidationSummary:
    """Counts of one validation run; JSON-friendly (shown in a Flyte Deck)."""

    source: str
    rows: int
    valid_rows: int
    quarantined_rows: int
    max_invalid_share: float
    reasons: dict[str, int]

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


def _require_columns(raw: pd.DataFrame, source: str) -> None:
    missing = [column for column in RAW_COLUMNS if column not in raw.columns]
    if missing:
        raise InvalidInputError(f"{source}: required columns missing: {', '.join(missing)}")


def _require_parseable_columns(raw: pd.DataFrame, source: str) -> None:
    """Fail when most present values of a number or timestamp column do not parse."""
    expected = {column: (parse_integers, "integers") for column in INTEGER_COLUMNS}
    expected[TIMESTAMP] = (parse_timestamps, "timestamps")
    for column, (parse, kind) in expected.items():
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


def _failures(records: pd.DataFrame, source: str) -> pd.DataFrame:
    """One row per (row_number, rule) that failed: columns row_number, short, detail."""
    try:
        RAW_RECORDS_SCHEMA.validate(records, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        no_rows = pd.Series([], dtype="int64")
        return pd.DataFrame({"row_number": no_rows, "short": [], "detail": []})
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
    failures["order"] = failures["column"].map({c: i for i, c in enumerate(RAW_COLUMNS)})
    failures = failures.sort_values(["row_number", "order", "short"], kind="stable")
    return failures[["row_number", "short", "detail"]].drop_duplicates()


def _typed(rows: pd.DataFrame) -> pd.DataFrame:
    """The raw-record contract types, for rows that passed every rule."""
    typed = {}
    for column in INTEGER_COLUMNS:
        values = rows[column]
        # Integers given as integers keep every bit; anything else went through float64.
        if not pd.api.types.is_integer_dtype(values.dtype):
            values = parse_integers(values)
        typed[column] = values.astype("int64")
    typed[TIMESTAMP] = parse_timestamps(rows[TIMESTAMP])
    for column in TEXT_COLUMNS:
        typed[column] = parse_text(rows[column])
    return pd.DataFrame(typed, index=rows.index)[RAW_COLUMNS]


def validate_records(raw: pd.DataFrame, source: str, max_invalid_share: float = 0.05) -> ValidationResult:
    """Split raw records into typed valid rows and quarantined rows with their reasons."""
    _require_columns(raw, source)
    records = raw[RAW_COLUMNS].reset_index(drop=True)
    _require_parseable_columns(records, source)
    failures = _failures(records, source)
    reasons = failures.groupby("row_number", sort=True)["detail"].agg("; ".join)
    is_rejected = np.zeros(len(records), dtype=bool)
    is_rejected[reasons.index.to_numpy()] = True
    counts = failures.drop_duplicates(["row_number", "short"])["short"].value_counts()
    summary = ValidationSummary(
        source=source,
        rows=len(records),
        valid_rows=int((~is_rejected).sum()),
        quarantined_rows=int(is_rejected.sum()),
        max_invalid_share=max_invalid_share,
        reasons={str(reason): int(count) for reason, count in counts.items()},
    )
    if summary.invalid_share > max_invalid_share:
        top = "; ".join(f"{reason} ({count:,})" for reason, count in list(counts.items())[:5])
        raise InvalidInputError(
            f"{source}: {summary.invalid_share:.2%} of {summary.rows:,} rows are invalid, more "
            f"than the allowed {max_invalid_share:.2%}; top reasons: {top}"
        )
    kept = records[~is_rejected]
    valid = _typed(kept).reset_index(drop=True)
    rejected = records[is_rejected]
    quarantine = pd.DataFrame({column: _as_text(rejected[column]) for column in RAW_COLUMNS})
    quarantine["row_number"] = rejected.index.to_numpy(dtype="int64")
    quarantine["reason"] = reasons.to_numpy(dtype=object)
    quarantine["source"] = source
    return ValidationResult(valid=valid, quarantine=quarantine.reset_index(drop=True), summary=summary)
