"""The Feast feature store of this project: configuration, definitions, apply.

feature_repo/feature_store.yaml reads its locations from the environment; this module
makes sure they are set (from .runtime/env, or explicitly for tests) before Feast
reads it, and applies the definitions the way `feast apply` does.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from income.settings import PROJECT_ROOT, ValkeySettings, load_runtime_env, runtime_dir

FEATURE_REPO = PROJECT_ROOT / "feature_repo"
FEATURE_SERVICE = "income_v1"


def configure_environment(valkey: ValkeySettings | None = None) -> None:
    """Set the variables feature_store.yaml and data_sources.py read, when unset."""
    load_runtime_env()
    valkey = valkey or ValkeySettings.from_env()
    os.environ["FEAST_VALKEY_CONNECTION"] = valkey.feast_connection_string
    os.environ.setdefault("FEAST_REGISTRY_PATH", str(runtime_dir() / "feast" / "registry.db"))
    os.environ.setdefault("INCOME_OFFLINE_STORE", str(runtime_dir() / "offline_store"))
    Path(os.environ["FEAST_REGISTRY_PATH"]).parent.mkdir(parents=True, exist_ok=True)


def get_store(valkey: ValkeySettings | None = None):
    """A FeatureStore on feature_repo/ with the environment's locations."""
    from feast import FeatureStore

    configure_environment(valkey)
    return FeatureStore(repo_path=str(FEATURE_REPO))


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
    found: dict[int, object] = {}
    for path in sorted(FEATURE_REPO.glob("*.py")):
        module = importlib.import_module(path.stem)
        for obj in vars(module).values():
            if isinstance(obj, (Entity, DataSource, FeatureView, FeatureService)):
                found[id(obj)] = obj
    return list(found.values())


def apply_definitions(store) -> str:
    """Register entity, sources, views and service (as `feast apply` does); return the version."""
    store.apply(definitions())
    return definitions_version()
