"""The label table from raw census records."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from income.data.schema import (
    ENTITY_KEY,
    HIGH_INCOME,
    LABEL,
    LABEL_SOURCE,
    LOW_INCOME,
    TIMESTAMP,
)


def label_table(records: DataFrame) -> DataFrame:
    """Per labelled (user_id, event_timestamp): 1 when the income observed was >50K, else 0."""
    income = F.col(LABEL_SOURCE)
    # A missing income means no label was observed, not a low income: such records are
    # for prediction only, so they are left out rather than mapped to 0.
    return records.where(income.isNotNull()).select(
        ENTITY_KEY,
        TIMESTAMP,
        F.when(income == HIGH_INCOME, 1).when(income == LOW_INCOME, 0).cast("long").alias(LABEL),
    )
