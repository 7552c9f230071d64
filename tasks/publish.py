"""Register the Feast definitions and load the latest values into Valkey."""

from __future__ import annotations

from dataclasses import dataclass

from flytekit import task

from income.feature_store import FEATURE_SERVICE, apply_definitions, get_store
from income.materialize import materialize_latest
from income.settings import ValkeySettings
from tasks.decks import show
from tasks.features import FeatureTables
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
def publish_features(tables: FeatureTables) -> PublishedFeatures:
    """`feast apply` the definitions, then materialize every user's latest values into Valkey."""
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
    return PublishedFeatures(
        feature_service=FEATURE_SERVICE,
        definitions_version=version,
        online_users=report.users,
        window_start=report.start,
        window_end=report.end,
        materialize_seconds=report.seconds,
        tables=tables,
    )
