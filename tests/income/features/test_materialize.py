"""income.features.materialize writes what `feast materialize START END` writes, boundaries included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from income.data.schema import ENTITY_KEY, TIMESTAMP

END = datetime(2026, 6, 30, 12, tzinfo=UTC)
TTL = timedelta(days=730)
MICRO = timedelta(microseconds=1)
# user -> event times of its rows, relative to END: the window is [END - TTL, END], as in
# Feast's materialization and in the training-set join (a value exactly TTL old is still served).
HISTORY = {
    1: [-TTL - timedelta(days=30), -timedelta(days=100), timedelta(0)],  # a row exactly at END: in
    2: [-timedelta(days=100), MICRO],  # a row just after END: not yet, the older one is served
    3: [-TTL],  # exactly at the window's start: in
    4: [-TTL - MICRO],  # just outside
    5: [-timedelta(days=5)],
}


def view_tables(store) -> dict[str, pd.DataFrame]:
    """Every view of income_v1 with one row per (user, time) of HISTORY and values that differ per row."""
    rng = np.random.default_rng(0)
    users = [u for u, offsets in HISTORY.items() for _ in offsets]
    times = [END + o for offsets in HISTORY.values() for o in offsets]
    tables = {}
    for projection in store.get_feature_service("income_v1").feature_view_projections:
        data = {
            ENTITY_KEY: pd.Series(users, dtype="int64"),
            TIMESTAMP: pd.Series(times).astype("datetime64[us, UTC]"),
        }
        for feature in store.get_feature_view(projection.name).features:  # the whole view, as tables hold it
            kind = str(feature.dtype)
            if kind == "String":
                data[feature.name] = rng.choice(np.array(["a", "b", None], dtype=object), len(users))
            elif kind.startswith("Float"):
                data[feature.name] = rng.random(len(users)) * 50
            else:
                data[feature.name] = rng.integers(0, 90, len(users))
        tables[projection.name] = pd.DataFrame(data)
    return tables


def feast_key(user: int) -> bytes:
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    entity = EntityKey(join_keys=[ENTITY_KEY], entity_values=[Value(int64_val=user)])
    return _redis_key("income", entity, entity_key_serialization_version=3)


def online_hashes(client) -> dict[bytes, dict[bytes, bytes]]:
    """Every Feast key (a hash) and its fields; the materialization marker is a plain string."""
    return {key: client.hgetall(key) for key in client.scan_iter(_type="hash")}


@pytest.fixture(params=["local", "s3"])
def store_with_tables(request, valkey_server, tmp_path, monkeypatch):
    """A registry and offline store of their own, the store in a local folder or in a bucket of the
    test's S3 server (moto); Valkey databases 5 and 6 (the session's run keeps 0)."""
    from income.features.feature_store import apply_definitions, get_store
    from income.features.offline_store import publish_pandas_tables

    local = str(tmp_path / "offline_store")
    offline_store = (
        local if request.param == "local" else f"{request.getfixturevalue('s3_bucket')}/offline_store"
    )
    monkeypatch.setenv("INCOME_OFFLINE_STORE", offline_store)
    monkeypatch.setenv("FEAST_REGISTRY_PATH", str(tmp_path / "registry.db"))
    monkeypatch.setenv("INCOME_OFFLINE_ENGINE", "file")
    monkeypatch.setenv("VALKEY_HOST", valkey_server.settings.host)
    monkeypatch.setenv("VALKEY_PORT", str(valkey_server.settings.port))
    monkeypatch.setenv("VALKEY_PASSWORD", valkey_server.settings.password)
    monkeypatch.setenv("VALKEY_DB", "5")
    store = get_store()
    apply_definitions(store)  # first for the schema, then again on the published tables
    publish_pandas_tables(offline_store, view_tables(store))
    apply_definitions(store)
    return get_store()


def test_writes_what_feast_materialize_writes(store_with_tables, valkey_server, monkeypatch):
    from income.features.feature_store import get_store
    from income.features.materialize import materialize_latest
    from income.platform.settings import ValkeySettings

    ours = ValkeySettings.from_env().client()
    monkeypatch.setenv("VALKEY_DB", "6")
    theirs = ValkeySettings.from_env().client()
    theirs.flushdb()
    get_store().materialize(start_date=END - TTL, end_date=END)

    ours.flushdb()
    report = materialize_latest(store_with_tables, ours, end=END, show_progress=False)
    written = online_hashes(ours)  # at once: user 3's key lives 1 s (see below)

    assert report.users == 4  # users 1, 2, 3 and 5; user 4's only row is just older than the TTL
    assert written == online_hashes(theirs)
    assert len(written) == 4


def test_serves_each_users_latest_row_inside_the_window(store_with_tables):
    from income.features.materialize import materialize_latest
    from income.platform.settings import ValkeySettings

    client = ValkeySettings.from_env().client()
    client.flushdb()
    materialize_latest(store_with_tables, client, end=END, show_progress=False)
    # User 3's row is exactly TTL old: served as of END, and for no longer, so its key is
    # written with the shortest expiry (1 s); the others expire when their row leaves the TTL.
    assert client.ttl(feast_key(3)) == 1
    assert not client.exists(feast_key(4))
    served_row = {1: timedelta(0), 2: -timedelta(days=100), 5: -timedelta(days=5)}  # relative to END
    for user, age in served_row.items():
        seconds = (age + TTL).total_seconds()
        assert seconds - 5 <= client.ttl(feast_key(user)) <= seconds, user

    online = store_with_tables.get_online_features(
        features=["demographic:age"], entity_rows=[{ENTITY_KEY: u} for u in HISTORY if u != 3]
    ).to_dict(include_event_timestamps=True)
    # Feast answers event times in whole epoch seconds, 0 where nothing is served.
    served = dict(zip(online[ENTITY_KEY], online["age__ts"], strict=True))
    expected = {1: END, 2: END - timedelta(days=100), 4: None, 5: END - timedelta(days=5)}
    assert served == {u: int(t.timestamp()) if t else 0 for u, t in expected.items()}


def test_feasts_own_writers_expire_keys_after_the_longest_view_ttl(store_with_tables):
    from income.data.schema import FEATURE_VIEWS

    longest = max(view.ttl for view in FEATURE_VIEWS.values())
    assert store_with_tables.config.online_store.key_ttl_seconds == longest.total_seconds()
