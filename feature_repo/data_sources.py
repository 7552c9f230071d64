"""Offline sources: the parquet tables the feature pipeline writes (spark_jobs/).

The offline store root comes from INCOME_OFFLINE_STORE (a local folder by default,
object storage at scale), so the same definitions serve every environment.
"""

import os

from feast import FileSource
from feast.data_format import ParquetFormat

OFFLINE_STORE = os.environ.get("INCOME_OFFLINE_STORE", ".runtime/offline_store")


def _table_source(table: str) -> FileSource:
    return FileSource(
        name=f"{table}_source",
        path=f"{OFFLINE_STORE.rstrip('/')}/{table}",
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
        description=f"The `{table}` feature table written by the feature pipeline.",
    )


demographic_source = _table_source("demographic")
relationship_source = _table_source("relationship")
occupation_source = _table_source("occupation")
history_source = _table_source("history")
