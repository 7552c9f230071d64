"""Synthetic feature rows in the model's schema, and an offline store of them, for the scoring benchmarks.

Values are drawn from the project's domains (income.data.domains) and ranges, ~2% missing, typed
as Feast returns them (nullable Int64 numbers, strings or None, a float mean), so that the
champion of `make demo` scores them as it scores real features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from income.data import domains
from income.data.schema import ENTITY_KEY, HISTORY_FEATURES, TIMESTAMP, VIEW_ATTRIBUTES, service_features
from income.training.model import kinds

# Every feature of every view (income_v2 serves them all): the tables hold them all.
ALL_FEATURES = service_features("income_v2")
CATEGORICAL, NUMERIC = kinds(ALL_FEATURES)

NUMERIC_RANGES = {
    "age": (17, 90),
    "education_num": (1, 16),
    "hours_per_week": (1, 99),
    "capital_gain": (0, 20_000),
    "capital_loss": (0, 4_000),
    "capital_net": (-4_000, 20_000),
    "records_365d": (1, 4),
    "job_changes_365d": (0, 3),
    "marital_changes_365d": (0, 2),
    "records_total": (1, 6),
}
CATEGORIES = {
    "sex": domains.SEX,
    "race": domains.RACE,
    "native_country": domains.NATIVE_COUNTRY,
    "marital_status": domains.MARITAL_STATUS,
    "relationship": domains.RELATIONSHIP,
    "workclass": domains.WORKCLASS,
    "education": domains.EDUCATION,
    "occupation": domains.OCCUPATION,
}
MISSING_SHARE = 0.02


def make_features(rows: int, seed: int = 3) -> pd.DataFrame:
    """Feast-shaped feature rows: nullable Int64 numbers, strings or None, a float mean."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {ENTITY_KEY: np.arange(1, rows + 1, dtype=np.int64)}
    for name in NUMERIC:
        if name == "hours_per_week_mean_365d":
            values = pd.Series(rng.uniform(1, 99, rows))
        else:
            lo, hi = NUMERIC_RANGES[name]
            small = name in ("capital_gain", "capital_loss", "capital_net")
            raw = np.where(rng.random(rows) < 0.9, 0, rng.integers(lo, hi + 1, rows)) if small else None
            values = pd.Series(raw if small else rng.integers(lo, hi + 1, rows), dtype="Int64")
        values[rng.random(rows) < MISSING_SHARE] = pd.NA
        data[name] = values
    for name in CATEGORICAL:
        choices = np.array(CATEGORIES[name], dtype=object)
        values = choices[rng.integers(0, len(choices), rows)]
        values[rng.random(rows) < MISSING_SHARE] = None
        data[name] = values
    frame = pd.DataFrame(data)
    return frame[[ENTITY_KEY, *ALL_FEATURES]]


def publish_feature_tables(
    root: str, users: int, start: pd.Timestamp, end: pd.Timestamp, rows_per_user: int = 2, seed: int = 5
) -> dict[str, int]:
    """Publish the four feature tables of `users` users under `root` as one version.

    Every user has `rows_per_user` rows per table, at random times in [start, end): a
    point-in-time join as of `end` or later picks one of them per table. Returns rows per table.
    """
    from income.features.offline_store import publish_pandas_tables

    frame = make_features(users * rows_per_user, seed=seed)
    frame[ENTITY_KEY] = np.repeat(np.arange(1, users + 1, dtype=np.int64), rows_per_user)
    rng = np.random.default_rng(seed + 1)
    span = int((end - start).total_seconds())
    frame[TIMESTAMP] = (start + pd.to_timedelta(rng.integers(0, span, len(frame)), unit="s")).astype(
        "datetime64[us, UTC]"
    )
    views = {**VIEW_ATTRIBUTES, "history": HISTORY_FEATURES}
    tables = {view: frame[[ENTITY_KEY, TIMESTAMP, *columns]] for view, columns in views.items()}
    publish_pandas_tables(root, tables)
    return {view: len(table) for view, table in tables.items()}
