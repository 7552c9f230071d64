"""Labels are read from the published feature set in (time, user) order, one per (user, time)."""

from __future__ import annotations

import pandas as pd
import pytest

from income.data.schema import ENTITY_KEY, LABEL, LABEL_TABLE, TIMESTAMP
from income.features.offline_store import publish_pandas_tables
from income.training.labels import canonical_labels, read_labels


def labels_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            ENTITY_KEY: pd.Series([3, 1, 2, 1], dtype="int32"),
            TIMESTAMP: pd.to_datetime(["2024-01-02", "2024-01-02", "2024-01-01", "2024-01-01"], utc=True),
            LABEL: pd.Series([1, 0, 1, 1], dtype="int32"),
            "note": "not a label column",
        }
    )


def test_read_labels_gives_the_label_columns_sorted(tmp_path):
    publish_pandas_tables(str(tmp_path), {LABEL_TABLE: labels_frame().drop(columns=["note"])})

    labels = read_labels(str(tmp_path))

    assert list(labels.columns) == [ENTITY_KEY, TIMESTAMP, LABEL]
    assert str(labels[TIMESTAMP].dtype) == "datetime64[us, UTC]"
    assert labels[ENTITY_KEY].dtype == "int64" and labels[LABEL].dtype == "int64"
    assert labels[[ENTITY_KEY, LABEL]].values.tolist() == [[1, 1], [2, 1], [1, 0], [3, 1]]
    assert labels[TIMESTAMP].is_monotonic_increasing


def test_canonical_labels_keeps_only_the_label_columns():
    labels = canonical_labels(labels_frame())
    assert list(labels.columns) == [ENTITY_KEY, TIMESTAMP, LABEL]
    assert labels[ENTITY_KEY].tolist() == [1, 2, 1, 3]


def test_duplicate_label_rows_are_refused():
    labels = labels_frame()
    with pytest.raises(ValueError, match="6787"):
        canonical_labels(pd.concat([labels, labels.head(1)]))


def test_labels_without_a_label_column_are_refused():
    with pytest.raises(ValueError, match=r"lack the columns \['label'\]"):
        canonical_labels(labels_frame().drop(columns=[LABEL]))


def test_known_by_keeps_only_the_labels_that_had_arrived(tmp_path):
    labels = pd.DataFrame(
        {
            ENTITY_KEY: pd.Series([1, 2, 3], dtype="int64"),
            TIMESTAMP: pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01"], utc=True),
            LABEL: pd.Series([1, 0, 1], dtype="int64"),
            "arrived_at": pd.to_datetime(["2024-01-05", "2024-03-01", "2024-02-02"], utc=True),
        }
    )
    root = str(tmp_path)
    publish_pandas_tables(root, {LABEL_TABLE: labels})

    assert read_labels(root, known_by=pd.Timestamp("2024-02-15", tz="UTC"))[ENTITY_KEY].tolist() == [1, 3]
    assert read_labels(root, known_by=pd.Timestamp("2024-01-31"))[ENTITY_KEY].tolist() == [1]
    assert len(read_labels(root)) == 3
