"""The labels: one outcome per (user_id, event_timestamp), read from the published feature set."""

from __future__ import annotations

import pandas as pd

from income.data.schema import ARRIVED_AT, ENTITY_KEY, LABEL, LABEL_TABLE, TIMESTAMP
from income.features.offline_store import current
from income.features.point_in_time import in_time_order

LABEL_COLUMNS = [ENTITY_KEY, TIMESTAMP, LABEL]


def read_labels(offline_root: str, known_by: pd.Timestamp | None = None, feature_set=None) -> pd.DataFrame:
    """The label table of the published feature set under `offline_root`, sorted by time and user.

    `known_by`: only the labels that had arrived by then (arrived_at <= known_by) for
    records of that time or earlier, as a training run scheduled then would have seen them.
    `feature_set`: a retained older version to read instead of the published one.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    source = feature_set or current(offline_root)
    dataset = ds.dataset(source.uri(LABEL_TABLE), format="parquet", partitioning="hive")
    matured = None
    if known_by is not None and ARRIVED_AT in dataset.schema.names:
        when = (
            pd.Timestamp(known_by).tz_convert("UTC")
            if pd.Timestamp(known_by).tzinfo
            else pd.Timestamp(known_by, tz="UTC")
        )
        matured = (pc.field(ARRIVED_AT) <= when.to_pydatetime()) & (
            pc.field(TIMESTAMP) <= when.to_pydatetime()
        )
    labels = dataset.to_table(columns=LABEL_COLUMNS, filter=matured).to_pandas()
    return canonical_labels(labels)


def canonical_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """Only the label columns, int64 labels, in (time, user) order; a repeated (user, time) is refused."""
    missing = set(LABEL_COLUMNS) - set(labels.columns)
    if missing:
        raise ValueError(f"the labels lack the columns {sorted(missing)}")
    out = labels[LABEL_COLUMNS]
    return in_time_order(out.assign(**{LABEL: out[LABEL].astype("int64", copy=False)}))
