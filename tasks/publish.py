"""Register the Feast definitions and load the latest values into Valkey."""

from __future__ import annotations

from dataclasses import dataclass

from flytekit import task

from income import lineage
from income.feature_store import FEATURE_SERVICE, apply_definitions, get_store
from income.materialize import materialize_latest
from income.settings import ValkeySettings
from income.validation import ValidationSummary
from tasks.decks import show
from tasks.features import FeatureTables, execution_id
from tasks.resources import LONG, MEDIUM, SMALL, VALKEY_SECRET


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
    tables: FeatureTables, raw_source: str, raw_sha256: str, validation: ValidationSummary
) -> PublishedFeatures:
    """`feast apply` the definitions, materialize every user's latest values into Valkey, record lineage."""
    valkey = ValkeySettings.from_env()
    store = get_store(valkey)
    version = apply_definitions(store)
    report = materialize_latest(store, valkey.client(), FEATURE_SERVICE)
    show(
        "Online store",
        f"<p>Feature service <b>{FEATURE_SERVICE}</b>, definitions {version}: "
        f"{report.users:,} users written to Valkey {valkey.host}:{valkey.port} in "
        f"{report.seconds} s (window {report.start} → {report.end}).</p>",
    )
    entry = lineage.record(
        "feature_pipeline",
        flyte_execution_id=execution_id(),
        raw={"source": raw_source, "sha256": raw_sha256, "rows": validation.rows},
        quarantined_rows=validation.quarantined_rows,
        offline_store=tables.offline_store,
        tables={name: {"uri": uri, "rows": tables.rows[name]} for name, uri in tables.uris.items()},
        feature_service=FEATURE_SERVICE,
        feast_definitions_version=version,
        online_users=report.users,
    )
    lineage.write_manifest(tables.offline_store, entry)
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
