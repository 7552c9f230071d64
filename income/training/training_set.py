"""The training set: labels joined point-in-time to a feature service's features, saved with its fingerprint.

Each label row (user_id, event_timestamp, label) gets the features as they were at its own
time, through income.features.point_in_time (its engines, their measurements and the
default are described there); no label row is dropped.
"""

from __future__ import annotations

import pandas as pd

from income.features.feature_store import FEATURE_SERVICE
from income.features.offline_store import write_parquet_atomically
from income.features.point_in_time import point_in_time_features
from income.training.fingerprint import fingerprint
from income.training.labels import canonical_labels, read_labels


def join_training_set(
    store, labels: pd.DataFrame, engine: str | None = None, spark=None, service_name: str = FEATURE_SERVICE
) -> pd.DataFrame:
    """Labels joined point-in-time to every feature of the service (default income_v1), one row per label.

    `engine` and `spark` as in income.features.point_in_time.point_in_time_features.
    """
    return point_in_time_features(
        store, canonical_labels(labels), engine=engine, spark=spark, service_name=service_name
    )


def rebuild_training_set(store, offline_root: str, version: str, known_by: pd.Timestamp | None = None):
    """The training set a run built from feature set `version`, rebuilt while that version is retained.

    Labels and features both come from that version's tables (engine "asof"); with the
    same `known_by` the result equals the original row for row (same fingerprint).
    """
    from income.features.offline_store import sealed

    feature_set = sealed(offline_root, version)
    labels = read_labels(offline_root, known_by=known_by, feature_set=feature_set)
    return point_in_time_features(store, canonical_labels(labels), engine="asof", feature_set=feature_set)


def save_training_set(df: pd.DataFrame, uri: str) -> dict:
    """Write the training set as one parquet object (microsecond timestamps, atomically)."""
    write_parquet_atomically(df, uri)
    return {"uri": uri, **fingerprint(df)}
