"""Spark jobs: pure DataFrame -> DataFrame functions from valid raw census records.

- demographic.demographic_features: age, sex, race, native country per record.
- relationship.relationship_features: marital status and relationship per record.
- occupation.occupation_features: work, education, hours and capital per record.
- history.history_features: net capital and rolling 365-day activity per record.
- labels.label_table: the income label (1 when >50K) per labelled record.

build_feature_tables runs them all; the feature tables feed Feast, the labels training.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from income.data.schema import FEATURE_TABLES, LABEL_TABLE
from spark_jobs.demographic import demographic_features
from spark_jobs.history import history_features
from spark_jobs.labels import label_table
from spark_jobs.occupation import occupation_features
from spark_jobs.relationship import relationship_features

__all__ = [
    "build_feature_tables",
    "demographic_features",
    "history_features",
    "label_table",
    "occupation_features",
    "relationship_features",
]


def build_feature_tables(records: DataFrame) -> dict[str, DataFrame]:
    """The four feature tables and the label table, keyed by their names in income.data.schema."""
    jobs = {
        "demographic": demographic_features,
        "relationship": relationship_features,
        "occupation": occupation_features,
        "history": history_features,
    }
    # Keyed by the schema's list, so a table added there without a job here fails (KeyError).
    tables = {name: jobs[name](records) for name in FEATURE_TABLES}
    return {**tables, LABEL_TABLE: label_table(records)}
