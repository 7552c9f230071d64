"""A table's content hash, the same whatever the order of its rows and columns."""

from __future__ import annotations

import hashlib

import pandas as pd

from income.data.schema import ENTITY_KEY, TIMESTAMP


def fingerprint(df: pd.DataFrame) -> dict:
    """Row count and a sha256 of the content, the same whatever the column or row order.

    Rows are put in (event_timestamp, user_id) order when those columns exist, columns in
    name order; each column contributes its name and the 64-bit hashes of its values
    (pandas' fixed-key hashing: stable across runs; timestamps as UTC microseconds).
    """
    if {ENTITY_KEY, TIMESTAMP} <= set(df.columns):
        df = df.sort_values([TIMESTAMP, ENTITY_KEY], kind="stable")
    digest = hashlib.sha256()
    for name in sorted(df.columns):
        column = df[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(column):
            column = pd.to_datetime(column, utc=True).astype("datetime64[us, UTC]").astype("int64")
        elif column.dtype == object or pd.api.types.is_string_dtype(column):
            column = column.astype(object).where(column.notna(), None)
        elif pd.api.types.is_integer_dtype(column):
            column = column.astype("Int64")
        digest.update(name.encode() + b"\0")
        digest.update(pd.util.hash_pandas_object(column, index=False).to_numpy().tobytes())
    return {"rows": len(df), "sha256": digest.hexdigest()}
