"""Offline sources: the parquet tables the feature pipeline writes (spark_jobs/).

The offline store root comes from INCOME_OFFLINE_STORE (a local folder by default,
object storage at scale), so the same definitions serve every environment.
INCOME_OFFLINE_ENGINE names Feast's offline store (see income.feature_store): its
Spark store reads only SparkSource definitions, its file and DuckDB stores only
FileSource ones; both kinds point at the same tables.
"""

import os

from feast import FileSource
from feast.data_format import ParquetFormat
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

OFFLINE_STORE = os.environ.get("INCOME_OFFLINE_STORE", ".runtime/offline_store")
OFFLINE_ENGINE = os.environ.get("INCOME_OFFLINE_ENGINE", "file")


def _table_source(table: str) -> FileSource | SparkSource:
    common = dict(
        name=f"{table}_source",
        timestamp_field="event_timestamp",
        description=f"The `{table}` feature table written by the feature pipeline.",
    )
    path = f"{OFFLINE_STORE.rstrip('/')}/{table}"
    if OFFLINE_ENGINE == "spark":
        return SparkSource(path=path, file_format="parquet", **common)
    return FileSource(path=path, file_format=ParquetFormat(), **common)


demographic_source = _table_source("demographic")
relationship_source = _table_source("relationship")
occupation_source = _table_source("occupation")
history_source = _table_source("history")
