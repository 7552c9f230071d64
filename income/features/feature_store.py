"""The Feast feature store of this project: configuration, definitions, apply.

feature_repo/feature_store.yaml reads its locations from the environment; this module
makes sure they are set (from .runtime/env, or explicitly for tests) before Feast
reads it, and applies the definitions the way `feast apply` does.

Feast's offline store (the engine of point-in-time joins, see income.features.point_in_time) is
configuration: INCOME_OFFLINE_ENGINE or `get_store(offline_engine=...)`. Its Spark store
needs SparkSource definitions in the registry, so apply the definitions under the
engine that will read them.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from income.features.offline_store import FEATURE_SET_TAG, FeatureSet, current
from income.platform.settings import (
    DEFAULT_OFFLINE_ENGINE,
    OFFLINE_ENGINES,
    PROJECT_ROOT,
    ValkeySettings,
    feast_registry_location,
    load_runtime_env,
    offline_store_uri,
    registry_config,
)

FEATURE_REPO = PROJECT_ROOT / "feature_repo"
FEATURE_SERVICE = "income_v1"


class RegistryOutOfDateError(RuntimeError):
    """The Feast registry serves another feature set version than the offline store publishes."""


def configure_environment(valkey: ValkeySettings | None = None) -> None:
    """Set the variables feature_store.yaml and data_sources.py read, when unset."""
    load_runtime_env()
    valkey = valkey or ValkeySettings.from_env()
    os.environ["FEAST_VALKEY_CONNECTION"] = valkey.feast_connection_string
    os.environ.setdefault("FEAST_REGISTRY_PATH", feast_registry_location())
    os.environ.setdefault("INCOME_OFFLINE_STORE", offline_store_uri())
    os.environ.setdefault("INCOME_OFFLINE_ENGINE", DEFAULT_OFFLINE_ENGINE)
    location = os.environ["FEAST_REGISTRY_PATH"]
    os.environ["FEAST_REGISTRY_TYPE"], os.environ["FEAST_REGISTRY_URL"] = registry_config(location)
    if "://" not in location:
        Path(location).parent.mkdir(parents=True, exist_ok=True)


def get_store(valkey: ValkeySettings | None = None, offline_engine: str | None = None):
    """A FeatureStore on feature_repo/ with the environment's locations.

    `offline_engine` (one of OFFLINE_ENGINES) overrides INCOME_OFFLINE_ENGINE for this
    process, so that definitions() made afterwards match it.
    """
    from feast import FeatureStore

    if offline_engine is not None:
        if offline_engine not in OFFLINE_ENGINES:
            raise ValueError(f"offline_engine must be one of {OFFLINE_ENGINES}, not {offline_engine!r}")
        os.environ["INCOME_OFFLINE_ENGINE"] = offline_engine
    configure_environment(valkey)
    store = FeatureStore(repo_path=str(FEATURE_REPO))
    try:
        store.registry  # noqa: B018 - opening the SQL registry creates its tables when missing
    except Exception as error:  # noqa: BLE001 - SQLAlchemy's error types vary by database
        if "already exists" not in str(error):
            raise
        # Two processes opened a new SQL registry at once and both created its tables; the
        # other one won, and its tables are there now.
        store = FeatureStore(repo_path=str(FEATURE_REPO))
    return store


def definitions_version() -> str:
    """A short hash of the Feast definitions (every file of feature_repo/)."""
    digest = hashlib.sha256()
    for path in sorted(FEATURE_REPO.iterdir()):
        if path.is_file() and path.suffix in {".py", ".yaml"}:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def definitions() -> list:
    """Every Feast object defined in feature_repo/ (what `feast apply` would register)."""
    import importlib

    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource

    if str(FEATURE_REPO) not in sys.path:
        sys.path.insert(0, str(FEATURE_REPO))
    # The definitions read the environment when imported (offline store root, engine):
    # import them afresh, as `feast apply` does in its own process.
    for path in FEATURE_REPO.glob("*.py"):
        module = sys.modules.get(path.stem)
        if module is not None and Path(getattr(module, "__file__", "") or "").parent == FEATURE_REPO:
            del sys.modules[path.stem]
    found: dict[int, object] = {}
    for path in sorted(FEATURE_REPO.glob("*.py")):
        module = importlib.import_module(path.stem)
        for obj in vars(module).values():
            if isinstance(obj, (Entity, DataSource, FeatureView, FeatureService)):
                found[id(obj)] = obj
    return list(found.values())


# What a SQL registry answers when another process wrote the same row first (sqlite, PostgreSQL).
_WRITE_RACES = ("UNIQUE constraint failed", "duplicate key value", "already exists")
APPLY_ATTEMPTS = 4


def apply_definitions(store) -> str:
    """Register entity, sources, views and services (as `feast apply` does); return the version.

    Two workflows may apply at once: Feast's SQL registry then lets one of them fail on a row
    the other inserted first (e.g. a view's version history). Applying is idempotent, so
    the loser reads the registry again and applies once more.
    """
    for _ in range(APPLY_ATTEMPTS - 1):
        try:
            store.apply(definitions())
            return definitions_version()
        except Exception as error:  # noqa: BLE001 - SQLAlchemy's error types vary by database
            if not any(race in str(error) for race in _WRITE_RACES):
                raise
            store.refresh_registry()
    store.apply(definitions())  # the last attempt: its error, if any, is the caller's
    return definitions_version()


def registry_feature_set_version(store, service_name: str = FEATURE_SERVICE) -> str:
    """The offline-store version the registry's sources of `service_name` read (one for all views)."""
    service = store.get_feature_service(service_name)
    found = {
        store.get_feature_view(p.name).batch_source.tags.get(FEATURE_SET_TAG, "")
        for p in service.feature_view_projections
    }
    if len(found) != 1:
        raise RegistryOutOfDateError(
            f"the views of {service_name} read different feature sets: {sorted(found)}"
        )
    return found.pop()


def published_feature_set(store, service_name: str = FEATURE_SERVICE) -> FeatureSet:
    """The offline store's published feature set, which must be the one the registry serves.

    Labels and populations are read from the offline store, features through the
    registry: both must come from one version, or a training set would mix two runs.
    """
    published = current(offline_store_uri())
    served = registry_feature_set_version(store, service_name)
    if served != published.version:
        raise RegistryOutOfDateError(
            f"the Feast registry serves feature set {served!r} but the offline store publishes "
            f"{published.version!r}: run `feast apply` in feature_repo/ (or the feature pipeline's "
            "publish step) so that both name the same version"
        )
    return published
