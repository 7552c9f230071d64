"""Feature tasks: validated records -> feature and label tables (Spark), published together, Feast, Valkey."""

from __future__ import annotations

from dataclasses import dataclass

import pyspark.sql
from flytekit import StructuredDataset, current_context, task

from income.data.schema import LABEL_TABLE
from income.data.validation import ValidationSummary
from income.features.feature_store import FEATURE_SERVICE, apply_definitions, get_store
from income.features.materialize import materialize_latest
from income.features.offline_store import (
    collect_garbage,
    new_version,
    publish,
    seal,
    version_uri,
    write_table,
)
from income.platform import lineage, lineage_graph
from income.platform import report_html as h
from income.platform.settings import ValkeySettings, offline_store_uri
from spark_jobs import build_feature_tables
from tasks.config import FeaturePipelineConfig
from tasks.decks import show
from tasks.execution import execution_id
from tasks.resources import LONG, MEDIUM, SMALL, VALKEY_SECRET, spark_task


@dataclass(frozen=True)
class FeatureTables:
    offline_store: str
    version: str  # sealed, not yet published: publish_features makes it visible
    uris: dict[str, str]
    rows: dict[str, int]


def _tables_html(tables: FeatureTables) -> str:
    rows = [(name, f"{tables.rows[name]:,}", h.code(uri)) for name, uri in tables.uris.items()]
    return h.paragraph("Version ", h.code(tables.version), " (sealed)") + h.table(
        ["table", "rows", "location"], rows
    )


@spark_task
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


# Unpublished versions younger than this may still be written by a running feature task.
ABANDONED_AFTER = 3 * LONG


@dataclass(frozen=True)
class PublishedFeatures:
    feature_service: str
    definitions_version: str
    online_users: int
    window_start: str
    window_end: str
    materialize_seconds: float
    tables: FeatureTables


@task(
    requests=SMALL, limits=MEDIUM, timeout=LONG, retries=2, enable_deck=True, secret_requests=[VALKEY_SECRET]
)
def publish_features(
    tables: FeatureTables,
    raw_source: str,
    raw_sha256: str,
    validation: ValidationSummary,
    cfg: FeaturePipelineConfig,
) -> PublishedFeatures:
    """Publish the run's tables together, `feast apply` them, materialize the latest values, record lineage.

    The lineage manifest goes into the version before it is published; publishing is one
    atomic replace, after which `feast apply` moves every Feast source to the new version.
    """
    entry = lineage.record(
        "feature_pipeline",
        flyte_execution_id=execution_id(),
        raw={"source": raw_source, "sha256": raw_sha256, "rows": validation.rows},
        quarantined_rows=validation.quarantined_rows,
        offline_store=tables.offline_store,
        feature_set_version=tables.version,
        tables={name: {"uri": uri, "rows": tables.rows[name]} for name, uri in tables.uris.items()},
        feature_service=FEATURE_SERVICE,
        label_table=LABEL_TABLE,
    )
    lineage.write_manifest(version_uri(tables.offline_store, tables.version), entry)
    publish(tables.offline_store, tables.version)

    valkey = ValkeySettings.from_env()
    store = get_store(valkey)
    version = apply_definitions(store)
    report = materialize_latest(store, valkey.client(), FEATURE_SERVICE)
    removed = collect_garbage(tables.offline_store, keep=cfg.keep_versions, abandoned_after=ABANDONED_AFTER)
    show(
        "Online store",
        h.paragraph(
            "Feature set ",
            h.code(tables.version),
            " published; feature service ",
            h.bold(FEATURE_SERVICE),
            f", definitions {version}: {report.users:,} users written to Valkey {valkey.host}:{valkey.port} "
            f"in {report.seconds} s (window {report.start} → {report.end}). "
            f"Old versions removed: {len(removed)}.",
        ),
    )
    graph = lineage_graph.feature_run_graph(entry, definitions_version=version)
    show("Lineage", lineage_graph.section(f"Lineage of feature set {tables.version}", graph, entry))
    return PublishedFeatures(
        feature_service=FEATURE_SERVICE,
        definitions_version=version,
        online_users=report.users,
        window_start=report.start,
        window_end=report.end,
        materialize_seconds=report.seconds,
        tables=tables,
    )
