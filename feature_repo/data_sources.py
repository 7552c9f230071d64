"""Offline sources: the tables of the published feature set (income.features.offline_store).

Each source points at its table inside the version that `_current.json` publishes under
INCOME_OFFLINE_STORE (a local folder by default, object storage at scale), and carries
that version as the tag `feature_set_version`, so a reader can tell which version the
registry serves. `feast apply` after each publication moves every source at once.
INCOME_OFFLINE_ENGINE names Feast's offline store (see income.features.feature_store): its Spark
store reads only SparkSource definitions, its file and DuckDB stores only FileSource
ones; both kinds point at the same tables.
"""

import os

from feast import FileSource
from feast.data_format import ParquetFormat
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

from income.data.schema import TIMESTAMP
from income.features.offline_store import FEATURE_SET_TAG, current_or_none, table_uri
from income.platform.settings import DEFAULT_OFFLINE_ENGINE, offline_store_uri

OFFLINE_STORE = offline_store_uri()
OFFLINE_ENGINE = os.environ.get("INCOME_OFFLINE_ENGINE", DEFAULT_OFFLINE_ENGINE)
PUBLISHED = current_or_none(OFFLINE_STORE)
# Before the first publication the sources point at a folder no run writes, so that
# the definitions still load (`feast feature-views list` on a fresh checkout).
VERSION = PUBLISHED.version if PUBLISHED else "unpublished"


def _table_source(table: str) -> FileSource | SparkSource:
    common = dict(
        name=f"{table}_source",
        timestamp_field=TIMESTAMP,
        description=f"The `{table}` feature table written by the feature pipeline.",
        tags={FEATURE_SET_TAG: VERSION},
    )
    path = PUBLISHED.uri(table) if PUBLISHED else table_uri(OFFLINE_STORE, f"unpublished/{table}")
    if OFFLINE_ENGINE == "spark":
        return SparkSource(path=path, file_format="parquet", **common)
    return FileSource(path=path, file_format=ParquetFormat(), **common)


demographic_source = _table_source("demographic")
relationship_source = _table_source("relationship")
occupation_source = _table_source("occupation")
history_source = _table_source("history")
