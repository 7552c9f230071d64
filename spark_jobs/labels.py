"""The label table from raw census records and labels-only batches."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from income.data.schema import (
    ARRIVED_AT,
    ENTITY_KEY,
    HIGH_INCOME,
    LABEL,
    LABEL_SOURCE,
    LOW_INCOME,
    TIMESTAMP,
)


def _arrival(frame: DataFrame):
    # Records built in tests or by hand may not say when they arrived.
    return F.col(ARRIVED_AT) if ARRIVED_AT in frame.columns else F.lit(None).cast("timestamp")


def label_table(records: DataFrame, label_rows: DataFrame | None = None) -> DataFrame:
    """Per labelled (user_id, event_timestamp): 1 when the income observed was >50K, else 0.

    Labels come inline with a record or later in a labels-only batch (`label_rows`:
    user_id, event_timestamp, income, arrived_at); `arrived_at` says when each reached us,
    so training as of a time uses only the labels known then. Validation keeps one label
    per key (a conflicting later one is quarantined), so the union holds no repeated key.
    """
    sources = [records] if label_rows is None else [records, label_rows]
    labelled = [
        frame.where(F.col(LABEL_SOURCE).isNotNull()).select(
            ENTITY_KEY, TIMESTAMP, F.col(LABEL_SOURCE), _arrival(frame).alias(ARRIVED_AT)
        )
        for frame in sources
    ]
    union = labelled[0] if len(labelled) == 1 else labelled[0].unionByName(labelled[1])
    income = F.col(LABEL_SOURCE)
    # A missing income means no label was observed, not a low income: such records are
    # for prediction only, so they are left out rather than mapped to 0.
    return union.select(
        ENTITY_KEY,
        TIMESTAMP,
        F.when(income == HIGH_INCOME, 1).when(income == LOW_INCOME, 0).cast("long").alias(LABEL),
        F.col(ARRIVED_AT),
    )
