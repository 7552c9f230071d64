"""Spark jobs: pure DataFrame -> DataFrame functions from valid raw census records.

- demographic.demographic_features: age, sex, race, native country per record.
- relationship.relationship_features: marital status and relationship per record.
- occupation.occupation_features: work, education, hours and capital per record.
- history.history_features: net capital and rolling 365-day activity per change point.
- labels.label_table: the income label (1 when >50K) per labelled record.

build_feature_tables runs them all over the whole history (a full build);
update_feature_tables computes what one more batch changes (spark_jobs.updates).
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame

from income.data.schema import LABEL_TABLE
from spark_jobs.demographic import demographic_features
from spark_jobs.history import history_features
from spark_jobs.labels import label_table
from spark_jobs.occupation import occupation_features
from spark_jobs.relationship import relationship_features
from spark_jobs.updates import FeatureUpdate, census_tables, update_feature_tables

__all__ = [
    "FeatureUpdate",
    "build_feature_tables",
    "demographic_features",
    "history_features",
    "label_table",
    "occupation_features",
    "relationship_features",
    "update_feature_tables",
]


def build_feature_tables(
    records: DataFrame, as_of: datetime | None = None, label_rows: DataFrame | None = None
) -> dict[str, DataFrame]:
    """The four feature tables and the label table, keyed by their names in income.data.schema.

    `as_of`: the time the tables are true up to (window features are restated up to it);
    `label_rows`: labels that arrived in labels-only batches.
    """
    return {
        **census_tables(records),
        "history": history_features(records, as_of),
        LABEL_TABLE: label_table(records, label_rows),
    }
