"""The Spark step: validated records -> feature tables and label table in the offline store."""

from __future__ import annotations

from dataclasses import dataclass

import pyspark.sql
from flytekit import StructuredDataset, current_context, task
from flytekitplugins.spark import Spark

from income.offline_store import remove_stale_staging, write_table
from income.settings import offline_store_uri
from spark_jobs import build_feature_tables
from tasks.config import FeaturePipelineConfig
from tasks.decks import show
from tasks.resources import LARGE, LONG, MEDIUM, SPARK_CONF


@dataclass(frozen=True)
class FeatureTables:
    offline_store: str
    uris: dict[str, str]
    rows: dict[str, int]


def execution_id() -> str:
    """The Flyte execution id, or "local" outside a registered execution."""
    try:
        return current_context().execution_id.name or "local"
    except Exception:  # noqa: BLE001 - outside a Flyte execution
        return "local"


def _tables_html(tables: FeatureTables) -> str:
    rows = "".join(
        f"<tr><td>{name}</td><td>{tables.rows[name]:,}</td><td><code>{uri}</code></td></tr>"
        for name, uri in tables.uris.items()
    )
    return f"<table><tr><th>table</th><th>rows</th><th>location</th></tr>{rows}</table>"


@task(
    task_config=Spark(spark_conf=SPARK_CONF),
    requests=MEDIUM,
    limits=LARGE,
    timeout=LONG,
    retries=2,
    enable_deck=True,
)
def build_features(valid: StructuredDataset, cfg: FeaturePipelineConfig) -> FeatureTables:
    """Compute the feature and label tables on Spark (spark_jobs/) and publish them atomically."""
    spark = current_context().spark_session
    records = spark.read.parquet(valid.uri) if valid.uri else valid.open(pyspark.sql.DataFrame).all()
    root = cfg.offline_store or offline_store_uri()
    remove_stale_staging(records, root)
    written = [write_table(table, root, name) for name, table in build_feature_tables(records).items()]
    tables = FeatureTables(
        offline_store=root,
        uris={t.name: t.uri for t in written},
        rows={t.name: t.rows for t in written},
    )
    show("Feature tables", _tables_html(tables))
    return tables
