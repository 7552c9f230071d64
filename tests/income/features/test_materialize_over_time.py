"""The online store stays true over a sequence of feature sets: full at t1, incremental at t2.

Valkey after (full at T1, incremental at T2 of the changed users) equals a fresh full
materialization at T2; it serves what the point-in-time join returns at T2 for every
scoreable user and nothing for anyone else; the registry records the intervals so that
Feast's own `materialize_incremental` continues from T2 and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from income.data.schema import ENTITY_KEY, TIMESTAMP

T1 = datetime(2026, 11, 1, tzinfo=UTC)
T2 = T1 + timedelta(days=10)
TTL = timedelta(days=730)  # every view's (income.data.schema)
DAY = timedelta(days=1)
VIEWS = ["demographic", "relationship", "occupation", "history"]
# (user, views, event time, the versions holding the row)
ROWS = [
    (1, VIEWS, T1 - 100 * DAY, {1, 2}),  # unchanged and scoreable throughout: not rewritten at T2
    (2, VIEWS, T1 - 50 * DAY, {1, 2}),
    (2, VIEWS, T2 - DAY, {2}),  # a new record
    (3, VIEWS, T1 - TTL + 5 * DAY, {1, 2}),  # leaves the TTL at T1 + 5 days, unchanged
    (4, ["demographic"], T1 - 10 * DAY, {1, 2}),  # one view only: not scoreable at T1
    (4, VIEWS, T2 - 3 * DAY, {2}),  # every view at T2
    (5, VIEWS[:3], T1 - 30 * DAY, {1, 2}),
    (5, ["history"], T1 - TTL + 3 * DAY, {1, 2}),  # one view leaves the TTL at T1 + 3 days
    (6, VIEWS, T2 - 2 * DAY, {2}),  # a new user
    (7, VIEWS, T1 - TTL - DAY, {1, 2}),  # never within the TTL
    (8, VIEWS, T1 - 20 * DAY, {1}),  # forgotten by version 2
]
CHANGED = [2, 4, 6, 8]  # the users whose rows differ between versions 1 and 2
STALE = 99  # a key of the project nobody's tables hold
SCOREABLE = {T1: {1, 2, 3, 5, 8}, T2: {1, 2, 4, 6}}
OURS, FRESH = 7, 8  # Valkey databases of this module


def feature_tables(store, version: int) -> dict[str, pd.DataFrame]:
    """The service's views as of `version`: each row's values depend only on (user, time)."""
    tables = {}
    for projection in store.get_feature_service("income_v1").feature_view_projections:
        rows = []
        for user, views, at, versions in ROWS:
            if projection.name not in views or version not in versions:
                continue
            rng = np.random.default_rng([user, int(at.timestamp()), len(projection.name)])
            row = {ENTITY_KEY: user, TIMESTAMP: at}
            for feature in store.get_feature_view(projection.name).features:  # the whole view
                kind = str(feature.dtype)
                if kind == "String":
                    row[feature.name] = rng.choice(["a", "b", None])
                elif kind.startswith("Float"):
                    row[feature.name] = float(rng.random() * 50)
                else:
                    row[feature.name] = int(rng.integers(0, 90))
            rows.append(row)
        table = pd.DataFrame(rows)
        table[ENTITY_KEY] = table[ENTITY_KEY].astype("int64")
        table[TIMESTAMP] = pd.to_datetime(table[TIMESTAMP]).astype("datetime64[us, UTC]")
        tables[projection.name] = table
    return tables


def feast_key(user: int, project: str = "income") -> bytes:
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    entity = EntityKey(join_keys=[ENTITY_KEY], entity_values=[Value(int64_val=user)])
    return _redis_key(project, entity, entity_key_serialization_version=3)


def hashes(client, project: str = "income") -> dict[bytes, dict[bytes, bytes]]:
    """The project's Feast keys (hashes ending in the project's name) and their fields."""
    return {
        key: client.hgetall(key) for key in client.scan_iter(_type="hash") if key.endswith(project.encode())
    }


def expected_expiry(user: int, as_of: datetime) -> float:
    """Seconds from `as_of` until the user's first view leaves the TTL (ROWS of version 2)."""
    latest = {
        view: max(at for u, views, at, _ in ROWS if u == user and view in views and at <= as_of)
        for view in VIEWS
    }
    return (min(latest.values()) + TTL - as_of).total_seconds()


@pytest.fixture(scope="module")
def sequence(valkey_server, tmp_path_factory):
    """Full at T1 on version 1, incremental at T2 on version 2 (db OURS), fresh full at T2 (db FRESH)."""
    from income.features.feature_store import apply_definitions, get_store
    from income.features.materialize import materialize, materialized_state, plan_materialization
    from income.features.offline_store import publish_pandas_tables
    from income.platform.settings import ValkeySettings

    folder = tmp_path_factory.mktemp("materialize_over_time")
    root = str(folder / "offline_store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INCOME_OFFLINE_STORE", root)
        mp.setenv("FEAST_REGISTRY_PATH", str(folder / "registry.db"))
        mp.setenv("INCOME_OFFLINE_ENGINE", "file")
        mp.setenv("VALKEY_HOST", valkey_server.settings.host)
        mp.setenv("VALKEY_PORT", str(valkey_server.settings.port))
        mp.setenv("VALKEY_PASSWORD", valkey_server.settings.password)
        mp.setenv("VALKEY_DB", str(OURS))
        store = get_store()
        apply_definitions(store)  # for the schema; again on each published version
        settings = ValkeySettings.from_env()
        ours = settings.client()
        ours.flushdb()
        # Left from earlier times: a user nobody holds, a user never within the TTL, and
        # keys that are not this project's.
        ours.hset(feast_key(STALE), "_ts:demographic", b"old")
        ours.hset(feast_key(7), "_ts:demographic", b"old")
        ours.hset(feast_key(1, project="other"), "_ts:demographic", b"other project")
        ours.set("unrelated", b"kept")

        out = {"plan_before": plan_materialization(ours, "income", "income_v1", None)}
        v1 = publish_pandas_tables(root, feature_tables(store, 1))
        apply_definitions(store)
        out["t1"] = materialize(get_store(), ours, "income_v1", as_of=T1, feature_set_version=v1.version)
        out["after_t1"] = hashes(ours)
        out["state_t1"] = materialized_state(ours, "income", "income_v1")

        v2 = publish_pandas_tables(root, feature_tables(store, 2))
        apply_definitions(store)
        store = get_store()
        out["plan"] = plan_materialization(ours, "income", "income_v1", v1.version)
        out["plan_other"] = plan_materialization(ours, "income", "income_v1", "another-version")
        out["t2"] = materialize(
            store, ours, "income_v1", as_of=T2, users=CHANGED, feature_set_version=v2.version
        )
        out["ttl"] = {key: ours.pttl(key) / 1000 for key in ours.scan_iter(_type="hash")}
        out["after_t2"] = hashes(ours)
        out["state_t2"] = materialized_state(ours, "income", "income_v1")
        out["intervals"] = {v: get_store().get_feature_view(v).materialization_intervals for v in VIEWS}

        fresh = ValkeySettings(settings.host, settings.port, settings.password, db=FRESH).client()
        fresh.flushdb()
        materialize(store, fresh, "income_v1", as_of=T2, feature_set_version=v2.version)
        out["fresh_t2"] = hashes(fresh)
        out["versions"] = (v1.version, v2.version)
        yield store, ours, out


def test_incremental_equals_a_fresh_full_materialization(sequence):
    _, _, out = sequence
    assert out["after_t2"] == out["fresh_t2"]
    assert set(out["after_t2"]) == {feast_key(u) for u in SCOREABLE[T2]}


def test_full_materialization_keeps_exactly_the_scoreable_users(sequence):
    _, client, out = sequence
    assert set(out["after_t1"]) == {feast_key(u) for u in SCOREABLE[T1]}
    assert out["t1"].mode == "full" and out["t1"].users == len(SCOREABLE[T1])
    assert out["t1"].deleted == 2  # the stale user and user 7's old key
    assert client.get("unrelated") == b"kept"  # keys that are not the project's are not ours to judge
    assert hashes(client, project="other") == {feast_key(1, "other"): {b"_ts:demographic": b"other project"}}


def test_incremental_touches_only_users_that_can_have_changed(sequence):
    _, _, out = sequence
    report = out["t2"]
    assert report.mode == "incremental"
    assert report.users == 3  # users 2, 4 and 6; user 1 is not rewritten
    assert report.deleted == 3  # users 3 and 5 left the TTL, user 8 was forgotten
    assert (report.start, report.end) == (T1.isoformat(), T2.isoformat())


def test_keys_expire_when_their_first_view_leaves_the_ttl(sequence):
    _, _, out = sequence
    # Valkey counts a key's seconds from its write: user 1 was last written as of T1.
    written_as_of = {1: T1, 2: T2, 4: T2, 6: T2}
    for user, as_of in written_as_of.items():
        seconds = out["ttl"][feast_key(user)]
        assert 0 < seconds <= expected_expiry(user, as_of)
        assert seconds > expected_expiry(user, as_of) - 60


def test_the_marker_and_the_plan_follow_the_materialized_version(sequence):
    _, _, out = sequence
    v1, v2 = out["versions"]
    assert out["plan_before"] == "full"
    views = out["state_t1"]["views"]  # a fingerprint of the views, features and TTLs
    assert out["state_t1"] == {"feature_set_version": v1, "as_of": T1.isoformat(), "views": views}
    assert out["plan"] == "incremental" and out["plan_other"] == "full"
    assert out["state_t2"] == {"feature_set_version": v2, "as_of": T2.isoformat(), "views": views}


def test_online_values_are_the_point_in_time_values_of_scoreable_users(sequence):
    from income.features.point_in_time import point_in_time_features

    store, _, _ = sequence
    users = sorted({u for u, *_ in ROWS} | {STALE})
    entity_rows = pd.DataFrame({ENTITY_KEY: users, TIMESTAMP: [T2] * len(users)})
    offline = point_in_time_features(store, entity_rows, engine="asof").set_index(ENTITY_KEY)
    online = store.get_online_features(
        features=store.get_feature_service("income_v1"), entity_rows=[{ENTITY_KEY: u} for u in users]
    ).to_dict()
    features = [c for c in offline.columns if c != TIMESTAMP]
    for i, user in enumerate(users):
        served = {f: online[f][i] for f in features}
        if user in SCOREABLE[T2]:
            expected = {f: None if pd.isna(v) else v for f, v in offline.loc[user, features].items()}
            assert served == expected, user
        else:
            assert all(v is None for v in served.values()), user


def test_the_registry_records_the_intervals_and_feast_continues_from_there(sequence):
    from income.features.feature_store import get_store

    store, client, out = sequence
    _, v2 = out["versions"]
    for view, intervals in out["intervals"].items():
        # The first interval survived `feast apply` of version 2, which moved the view's source.
        assert intervals == [(T1 - TTL, T1), (T1, T2)], view
        assert f"/{v2}/" in store.get_feature_view(view).batch_source.path
    before = hashes(client)
    get_store().materialize_incremental(end_date=T2 + timedelta(hours=1))
    assert hashes(client) == before
    assert get_store().get_feature_view("demographic").most_recent_end_time == T2 + timedelta(hours=1)


def test_incremental_needs_a_marker_of_the_same_views(sequence, valkey_server):
    import json

    from income.features.materialize import marker_key, materialize
    from income.platform.settings import ValkeySettings

    store, _, out = sequence
    settings = valkey_server.settings
    other = ValkeySettings(settings.host, settings.port, settings.password, db=9).client()
    other.flushdb()
    with pytest.raises(ValueError, match="run a full one"):
        materialize(store, other, "income_v1", as_of=T2, users=[1])

    # Written under other definitions (say, a view's TTL changed): every key may differ.
    other.set(marker_key("income", "income_v1"), json.dumps({**out["state_t1"], "views": "other"}))
    report = materialize(store, other, "income_v1", as_of=T2, users=[1])
    assert report.mode == "full" and report.users == len(SCOREABLE[T2])
