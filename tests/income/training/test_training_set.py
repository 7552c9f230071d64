"""The training set: one row per label with its point-in-time features, saved with its fingerprint.

The lookup itself is checked row for row against Feast and a pandas oracle in
tests/income/features/test_point_in_time.py.
"""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from income.data.schema import ENTITY_KEY, LABEL, TIMESTAMP
from income.training.fingerprint import fingerprint
from income.training.training_set import join_training_set, save_training_set


@pytest.mark.integration
def test_every_label_row_gets_the_services_features(feature_run, pipeline_env):
    from income.features.feature_store import get_store
    from income.inference.contract import service_refs
    from income.training.labels import read_labels

    store = get_store()
    labels = read_labels(str(pipeline_env))
    features = [ref.split(":", 1)[1] for ref in service_refs(store)]

    got = join_training_set(store, labels)

    assert list(got.columns) == [ENTITY_KEY, TIMESTAMP, LABEL, *features]
    pd.testing.assert_frame_equal(got[[ENTITY_KEY, TIMESTAMP, LABEL]], labels)
    assert got["age"].notna().mean() > 0.5  # labels fall on survey records: most have fresh features
    with pytest.raises(ValueError, match="6787"):
        join_training_set(store, pd.concat([labels, labels.head(1)]))


def test_save_training_set_writes_microseconds_and_reports_the_hash(tmp_path):
    df = pd.DataFrame(
        {
            ENTITY_KEY: [2, 1],
            TIMESTAMP: pd.to_datetime(["2024-01-02", "2024-01-01"], utc=True),  # nanoseconds in pandas
            LABEL: [0, 1],
            "sex": ["Male", None],
        }
    )
    report = save_training_set(df, str(tmp_path / "sets" / "training.parquet"))
    assert report == {"uri": str(tmp_path / "sets" / "training.parquet"), **fingerprint(df)}
    schema = pq.read_schema(report["uri"])
    assert str(schema.field(TIMESTAMP).type) == "timestamp[us, tz=UTC]"
    back = pd.read_parquet(report["uri"])
    assert fingerprint(back) == fingerprint(df)
