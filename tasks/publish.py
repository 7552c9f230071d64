"""Publish a sealed feature set: make it the offline store's current version, `feast apply`, fill Valkey."""

from __future__ import annotations

from dataclasses import dataclass

from flytekit import task

from income.data.validation import ValidationSummary
from income.features.feature_store import FEATURE_SERVICE, apply_definitions, get_store
from income.features.materialize import materialize_latest
from income.features.offline_store import collect_garbage, publish, version_uri
from income.platform import lineage
from income.platform.settings import ValkeySettings
from tasks.config import FeaturePipelineConfig
from tasks.decks import show
from tasks.features import FeatureTables, execution_id
from tasks.resources import LONG, MEDIUM, SMALL, VALKEY_SECRET

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
        f"<p>Feature set <code>{tables.version}</code> published; feature service <b>{FEATURE_SERVICE}</b>, "
        f"definitions {version}: {report.users:,} users written to Valkey {valkey.host}:{valkey.port} in "
        f"{report.seconds} s (window {report.start} → {report.end}). "
        f"Old versions removed: {len(removed)}.</p>",
    )
    show("Lineage", lineage.html([(k, str(v)) for k, v in entry.items()]))
    return PublishedFeatures(
        feature_service=FEATURE_SERVICE,
        definitions_version=version,
        online_users=report.users,
        window_start=report.start,
        window_end=report.end,
        materialize_seconds=report.seconds,
        tables=tables,
    )
