"""The content hash: the same for the same content in any order, different for any changed value."""

from __future__ import annotations

import pandas as pd

from income.data.schema import ENTITY_KEY, LABEL, TIMESTAMP
from income.training.fingerprint import fingerprint


def small_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            ENTITY_KEY: [2, 1, 3],
            TIMESTAMP: pd.to_datetime(["2024-01-02", "2024-01-01", "2024-01-02"], utc=True),
            LABEL: [0, 1, 0],
            "age": pd.array([30, None, 41], dtype="Int64"),
            "sex": ["Male", None, "Female"],
            "hours_per_week_mean_365d": [40.0, 38.5, float("nan")],
        }
    )


def test_fingerprint_is_stable_and_sees_every_value():
    df = small_frame()
    first = fingerprint(df)
    assert first["rows"] == 3
    # The same content, whatever the column order, row order or timestamp unit.
    assert fingerprint(df[df.columns[::-1]]) == first
    assert fingerprint(df.iloc[[2, 0, 1]]) == first
    assert fingerprint(df.astype({TIMESTAMP: "datetime64[us, UTC]"})) == first
    # Pinned: the hash tags models, so it must not drift between runs or releases unnoticed.
    assert first["sha256"] == "571c37aca4b6cdd0ced9836d83654f0ae434b29da5c7490e1fe5c0fbba794cdf"
    changed = df.copy()
    changed.loc[0, "age"] = 31
    assert fingerprint(changed)["sha256"] != first["sha256"]
    changed = df.copy()
    changed.loc[1, "sex"] = "Female"
    assert fingerprint(changed)["sha256"] != first["sha256"]
