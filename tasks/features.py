"""The Spark step: validated records -> feature and label tables, written as one sealed version."""

from __future__ import annotations

from dataclasses import dataclass

import pyspark.sql
from flytekit import StructuredDataset, current_context, task
from flytekitplugins.spark import Spark

from income.features.offline_store import new_version, seal, write_table
from income.platform.settings import offline_store_uri
from spark_jobs import build_feature_tables
from tasks.decks import show
from tasks.resources import LARGE, LONG, MEDIUM, SPARK_CONF


@dataclass(frozen=True)
class FeatureTables:
    offline_store: str
    version: str  # sealed, not yet published: tasks.publish.publish_features makes it visible
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
    return (
        f"<p>Version <code>{tables.version}</code> (sealed)</p>"
        f"<table><tr><th>table</th><th>rows</th><th>location</th></tr>{rows}</table>"
    )


@task(
    task_config=Spark(spark_conf=SPARK_CONF),
    requests=MEDIUM,
    limits=LARGE,
    timeout=LONG,
    retries=2,
    enable_deck=True,
)
def build_features(valid: StructuredDataset) -> FeatureTables:
    """Compute the feature and label tables on Spark (spark_jobs/) into a new version of the offline store.

    Every attempt writes its own version folder, so a retry never meets a half-written
    table; readers see none of it until publish_features publishes the sealed version.
    """
    spark = current_context().spark_session
    records = spark.read.parquet(valid.uri) if valid.uri else valid.open(pyspark.sql.DataFrame).all()
    root = offline_store_uri()
    version = new_version()
    written = [
        write_table(table, root, version, name) for name, table in build_feature_tables(records).items()
    ]
    sealed = seal(root, version, written)
    tables = FeatureTables(
        offline_store=root,
        version=sealed.version,
        uris={t.name: t.uri for t in written},
        rows={t.name: t.rows for t in written},
    )
    show("Feature tables", _tables_html(tables))
    return tables
