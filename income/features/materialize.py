"""Keep the online store (Valkey) true as of a time: scoreable users in, everyone else out.

The rule (design of issue 10, shared with batch scoring): a user's Valkey key exists iff the
user is **scoreable** at `as_of`, i.e. every view of the feature service has a row with
as_of - TTL <= event_timestamp <= as_of (both boundaries in, as in Feast's materialization
and the training-set join). The key holds, per view, the latest such row, in Feast's Redis
layout (so `FeatureStore.get_online_features` and `feast serve` read it), and expires when
the first of its views leaves the TTL: EXPIRE seconds = min over views of
(latest row time + view TTL) - as_of, floored, at least 1 (Valkey counts them from the write).

Two modes, one result:
- **full** (`users=None`): every user of the tables is written or deleted, and every key of
  the Feast project whose user is not scoreable is deleted (a SCAN over the project's keys:
  users deleted from the tables, or from an older service, leave nothing behind).
- **incremental** (`users=[...]`, the feature set's changed users): only the users that can
  differ from the previous materialization are read and written: the given users, users with
  a row in (previous as_of, as_of], and users with a row that leaves its view's TTL in
  (previous as_of, as_of] (a row with previous as_of - TTL <= ts < as_of - TTL). Each is
  written when scoreable, deleted otherwise. DuckDB reads only those users' rows.

After a successful write, every view's interval is recorded in Feast's registry as
`feast materialize` records it (so `feast materialize-incremental` starts where this ended),
then a marker key notes the feature set version and as_of (`materialized_state`). A caller
materializes incrementally only when the marker names the feature set its changed users are
relative to (`plan_materialization`); otherwise it runs a full materialization. An incremental
request is run in full when the service's views, features or TTLs changed since the marker.

Fast and in bounded memory: DuckDB picks the latest rows and joins the views per user,
Arrow batches stream out of it, values are encoded once per distinct value, and each user is
one pipelined HSET covering every view plus its EXPIRE.

Feast's own writers (`feast materialize`, push) know nothing of this rule: they write a
view's rows whether or not the user's other views are within the TTL, and set the fixed
`key_ttl_seconds` of feature_store.yaml on what they write.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp

from income.data.schema import ENTITY_KEY, TIMESTAMP
from income.features.feature_store import registry_feature_set_version
from income.platform.parquet_tables import register_parquet

FULL = "full"
INCREMENTAL = "incremental"
MARKER_PREFIX = "income:materialized"
_EXPIRES = "_expire_seconds"
_MICROS = timedelta(microseconds=1)
_DELETE_BATCH = 10_000  # keys per DEL command


@dataclass(frozen=True)
class MaterializationReport:
    users: int  # users written (scoreable among those considered)
    deleted: int  # keys removed: users considered or found in Valkey that are not scoreable
    views: list[str]
    start: str  # the interval recorded in Feast's registry
    end: str  # = as_of
    seconds: float
    mode: str  # FULL or INCREMENTAL


@dataclass(frozen=True)
class _ViewPlan:
    name: str
    source_uri: str
    features: list[tuple[str, str]]  # (feature name, Feast type name)
    ttl: timedelta

    def column(self, feature: str) -> str:
        return f"{self.name}__{feature}"

    @property
    def ts_column(self) -> str:
        return f"{self.name}__{TIMESTAMP}"

    @property
    def table(self) -> str:
        """The view's offline table as a relation of the DuckDB connection (see _register_tables)."""
        return f"{self.name}__table"


def _plans(store, service_name: str) -> list[_ViewPlan]:
    """What to write per view the service reads: every feature of the view, as `feast materialize`
    does, so that the other services over the same views (income_v2 beside income_v1) read them too."""
    service = store.get_feature_service(service_name)
    plans = []
    for projection in service.feature_view_projections:
        view = store.get_feature_view(projection.name)
        plans.append(
            _ViewPlan(
                name=view.name,
                source_uri=view.batch_source.path,
                features=[(f.name, str(f.dtype)) for f in view.features],
                ttl=view.ttl or timedelta(0),
            )
        )
    return plans


def latest_event_time(store, service_name: str) -> datetime:
    """The newest event time in the service's offline tables (the default as_of)."""
    plans = _plans(store, service_name)
    with duckdb.connect() as con:
        _register_tables(con, plans)
        union = " UNION ALL ".join(f"SELECT max({TIMESTAMP}) AS t FROM {p.table}" for p in plans)
        (latest,) = con.execute(f"SELECT max(t) FROM ({union})").fetchone()
    return latest.astimezone(UTC)


def _register_tables(con, plans: list[_ViewPlan]) -> None:
    for p in plans:
        register_parquet(con, p.table, p.source_uri)


def _ts(t: datetime) -> str:
    return f"TIMESTAMPTZ '{t.isoformat()}'"


def _scoreable_sql(plans: list[_ViewPlan], as_of: datetime, among: str | None) -> str:
    """Per scoreable user: each view's latest row in [as_of - TTL, as_of] and the key's expiry.

    `among`: a table with a user_id column restricting the users read (None: everyone).
    The inner joins keep exactly the users with a row in every view.
    """
    selects = []
    for p in plans:
        start = as_of - p.ttl if p.ttl else datetime(1970, 1, 1, tzinfo=UTC)
        cols = ", ".join(f'"{f}" AS "{p.column(f)}"' for f, _ in p.features)
        only = f"AND {ENTITY_KEY} IN (SELECT {ENTITY_KEY} FROM {among}) " if among else ""
        selects.append(
            f'{p.name} AS (SELECT {ENTITY_KEY}, {TIMESTAMP} AS "{p.ts_column}", {cols} '
            f"FROM {p.table} "
            f"WHERE {TIMESTAMP} >= {_ts(start)} AND {TIMESTAMP} <= {_ts(as_of)} {only}"
            f"QUALIFY row_number() OVER (PARTITION BY {ENTITY_KEY} ORDER BY {TIMESTAMP} DESC) = 1)"
        )
    joined = plans[0].name + "".join(f" JOIN {p.name} USING ({ENTITY_KEY})" for p in plans[1:])
    ends = [f'epoch_us("{p.ts_column}") + {p.ttl // _MICROS}' for p in plans if p.ttl]
    # A view without TTL never expires a key; with no TTL at all, keys persist (NULL).
    expires = (
        f"greatest(1, (least({', '.join(ends)}) - epoch_us({_ts(as_of)})) // 1000000)" if ends else "NULL"
    )
    return f"WITH {', '.join(selects)} SELECT *, {expires} AS {_EXPIRES} FROM {joined}"


def _moved_in_time_sql(plans: list[_ViewPlan], previous: datetime, as_of: datetime) -> str:
    """Users whose state can change between `previous` and `as_of` without being in the changed set.

    A row in (previous, as_of] became visible; a row with previous - TTL <= ts < as_of - TTL
    was inside its view's TTL at `previous` and is not at `as_of`.
    """
    parts = []
    for p in plans:
        moved = f"({TIMESTAMP} > {_ts(previous)} AND {TIMESTAMP} <= {_ts(as_of)})"
        if p.ttl:
            moved += f" OR ({TIMESTAMP} >= {_ts(previous - p.ttl)} AND {TIMESTAMP} < {_ts(as_of - p.ttl)})"
        parts.append(f"SELECT {ENTITY_KEY} FROM {p.table} WHERE {moved}")
    return " UNION ".join(parts)


def _bulk(data: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _value_encoder(feast_type: str) -> Callable[[object], bytes]:
    """RESP-framed serialized ValueProto for a Python value, cached per distinct value."""
    field = {
        "Int64": "int64_val",
        "Int32": "int32_val",
        "String": "string_val",
        "Float64": "double_val",
        "Float32": "float_val",
        "Bool": "bool_val",
    }[feast_type]
    cache: dict[object, bytes] = {None: _bulk(Value().SerializeToString())}

    def encode(value: object) -> bytes:
        encoded = cache.get(value)
        if encoded is None:
            encoded = _bulk(Value(**{field: value}).SerializeToString())
            if len(cache) < 100_000:
                cache[value] = encoded
        return encoded

    return encode


def _timestamps(column: pa.ChunkedArray | pa.Array) -> list[bytes]:
    """RESP-framed serialized protobuf Timestamps."""
    micros = pc.cast(column.cast(pa.timestamp("us", tz="UTC")), pa.int64()).to_pylist()
    return [
        _bulk(Timestamp(seconds=m // 1_000_000, nanos=(m % 1_000_000) * 1000).SerializeToString())
        for m in micros
    ]


@dataclass(frozen=True)
class _KeyLayout:
    """Feast's Redis key of an int64 user_id: prefix + 8-byte little-endian user_id + project."""

    prefix: bytes
    suffix: bytes

    def key(self, user: int) -> bytes:
        return self.prefix + user.to_bytes(8, "little", signed=True) + self.suffix

    @property
    def length(self) -> int:
        return len(self.prefix) + 8 + len(self.suffix)

    @property
    def scan_pattern(self) -> bytes:
        """A SCAN MATCH glob for exactly the keys of this layout."""
        escape = b"".join(b"\\" + bytes([c]) if c in b"*?[]\\" else bytes([c]) for c in self.prefix)
        suffix = b"".join(b"\\" + bytes([c]) if c in b"*?[]\\" else bytes([c]) for c in self.suffix)
        return escape + b"?" * 8 + suffix

    def users(self, keys: list[bytes]) -> np.ndarray:
        """The user ids of the keys that have this layout (others are skipped)."""
        start, end = len(self.prefix), len(self.prefix) + 8
        mine = [
            k[start:end]
            for k in keys
            if len(k) == self.length and k.startswith(self.prefix) and k.endswith(self.suffix)
        ]
        return np.frombuffer(b"".join(mine), dtype="<i8").astype(np.int64)


def _key_layout(project: str, version: int) -> _KeyLayout:
    """The layout, derived from Feast's own key function and checked against it.

    A change in Feast's layout fails loudly instead of writing keys nobody reads.
    """

    def feast_key(user: int) -> bytes:
        entity = EntityKey(join_keys=[ENTITY_KEY], entity_values=[Value(int64_val=user)])
        return _redis_key(project, entity, entity_key_serialization_version=version)

    suffix = project.encode()
    layout = _KeyLayout(prefix=feast_key(0)[: -(8 + len(suffix))], suffix=suffix)
    for probe in (1, -2, 2**40 + 7):
        if layout.key(probe) != feast_key(probe):
            raise RuntimeError("Feast's entity key layout changed: update income.features.materialize")
    return layout


def key_layout(store) -> _KeyLayout:
    """The layout of the store's online keys (its project and entity key serialization)."""
    return _key_layout(store.config.project, store.config.entity_key_serialization_version)


def _write_commands(layout: _KeyLayout, plans: list[_ViewPlan], reader) -> Iterator[tuple[int, int, bytes]]:
    """Batches of pipelined commands in RESP: (users, number of commands, bytes to send).

    Per user one HSET setting every view's fields and `_ts:<view>`, the layout Feast's
    Redis online store reads (fields are murmur3 hashes of `<view>:<feature>`), then its
    EXPIRE. `reader` streams Arrow batches of _scoreable_sql.
    """
    fields = {
        p.name: [(_bulk(_mmh3(f"{p.name}:{f}")), p.column(f), _value_encoder(t)) for f, t in p.features]
        for p in plans
    }
    ts_fields = {p.name: _bulk(f"_ts:{p.name}".encode()) for p in plans}
    hset = b"*%d\r\n%s" % (2 + 2 * sum(1 + len(p.features) for p in plans), _bulk(b"HSET"))
    expire, persist = b"*3\r\n" + _bulk(b"EXPIRE"), b"*2\r\n" + _bulk(b"PERSIST")
    for batch in reader:
        users = batch.column(ENTITY_KEY).to_pylist()
        columns = {p.column(f): batch.column(p.column(f)).to_pylist() for p in plans for f, _ in p.features}
        stamps = {p.name: _timestamps(batch.column(p.ts_column)) for p in plans}
        expiries = batch.column(_EXPIRES).to_pylist()
        commands = []
        for i, user in enumerate(users):
            key = _bulk(layout.key(user))
            commands += (hset, key)
            for p in plans:
                commands += (ts_fields[p.name], stamps[p.name][i])
                for field, column, encode in fields[p.name]:
                    commands += (field, encode(columns[column][i]))
            seconds = expiries[i]
            commands += (persist, key) if seconds is None else (expire, key, _bulk(b"%d" % seconds))
        yield len(users), 2 * len(users), b"".join(commands)


def _send_pipelined(client, count: int, commands: bytes) -> list:
    """Send pre-encoded commands on one connection; check and return every reply."""
    connection = client.connection_pool.get_connection("HSET")
    try:
        connection.send_packed_command([commands])
        return [connection.read_response() for _ in range(count)]  # raises on an error reply
    except BaseException:
        connection.disconnect()  # replies may be left unread: never reuse this connection
        raise
    finally:
        client.connection_pool.release(connection)


def _delete(client, layout: _KeyLayout, users: np.ndarray) -> int:
    """DEL the users' keys, _DELETE_BATCH a command; the number of keys that existed."""
    deleted = 0
    for start in range(0, len(users), _DELETE_BATCH):
        keys = [_bulk(layout.key(int(u))) for u in users[start : start + _DELETE_BATCH]]
        command = b"*%d\r\n%s%s" % (len(keys) + 1, _bulk(b"DEL"), b"".join(keys))
        (count,) = _send_pipelined(client, 1, command)
        deleted += count
    return deleted


def _project_users(client, layout: _KeyLayout) -> np.ndarray:
    """Every user with a key of this Feast project in Valkey (one SCAN over the keyspace)."""
    found, cursor = [], 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=layout.scan_pattern, count=10_000)
        found.append(layout.users(keys))
        if cursor == 0:
            return np.concatenate(found)


def _views_fingerprint(plans: list[_ViewPlan]) -> str:
    """What the keys' layout and expiries depend on besides the rows: views, features, TTLs."""
    described = [(p.name, p.features, p.ttl // _MICROS) for p in plans]
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()[:16]


def marker_key(project: str, service_name: str) -> str:
    return f"{MARKER_PREFIX}:{project}:{service_name}"


def materialized_state(client, project: str, service_name: str) -> dict | None:
    """What the online store holds: {feature_set_version, as_of (ISO UTC), views}, None when unknown.

    `views`: a fingerprint of the service's views, features and TTLs when it was written.
    """
    text = client.get(marker_key(project, service_name))
    return None if text is None else json.loads(text)


def plan_materialization(
    client, project: str, service_name: str, previous_version: str | None
) -> Literal["incremental", "full"]:
    """INCREMENTAL when Valkey holds `previous_version` (the one the changed users are relative to)."""
    state = materialized_state(client, project, service_name)
    if (
        previous_version is not None
        and state is not None
        and state["feature_set_version"] == previous_version
    ):
        return INCREMENTAL
    return FULL


def _record_intervals(store, plans: list[_ViewPlan], start: datetime, end: datetime) -> None:
    """Append (start, end) to every view's materialization intervals, as `feast materialize` does.

    One commit per view, as Feast does: uncommitted changes do not survive the registry
    reloading its cache (which it does when the file changed on disk).
    """
    for p in plans:
        view = store.get_feature_view(p.name)
        store.registry.apply_materialization(view, store.project, start, end, commit=True)


def materialize(
    store,
    client,
    service_name: str,
    as_of: datetime,
    users: Sequence[int] | None = None,
    feature_set_version: str | None = None,
    batch_size: int = 5_000,
    show_progress: bool = False,
) -> MaterializationReport:
    """Make the online store true as of `as_of`: full when `users` is None, else incremental.

    `users`: the users whose rows changed since the materialization the marker names (the
    feature set's changed users); see plan_materialization. When the service's views,
    features or TTLs differ from the marker's, every key may differ: the run is full (the
    report says so). `feature_set_version` (default: the one the registry serves) goes into
    the marker.
    """
    from tqdm import tqdm

    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    started = time.perf_counter()
    as_of = as_of.astimezone(UTC)
    plans = _plans(store, service_name)
    project = store.config.project
    layout = key_layout(store)
    version = (
        feature_set_version
        if feature_set_version is not None
        else registry_feature_set_version(store, service_name)
    )
    max_ttl = max(p.ttl for p in plans)
    fingerprint = _views_fingerprint(plans)
    state = materialized_state(client, project, service_name)
    if users is not None and state is not None and state.get("views") != fingerprint:
        users = None
    if users is None:
        mode, start, among = FULL, as_of - max_ttl, None
    else:
        if state is None:
            raise ValueError(
                f"no materialization of {service_name} in this Valkey: run a full one (users=None)"
            )
        mode, start, among = INCREMENTAL, datetime.fromisoformat(state["as_of"]), "considered"
        if as_of < start:
            raise ValueError(f"as_of {as_of.isoformat()} is before the materialized {start.isoformat()}")

    with duckdb.connect(config={"threads": 2, "memory_limit": "2GB"}) as con:
        _register_tables(con, plans)
        if among:
            con.register("changed", pa.table({ENTITY_KEY: pa.array(list(users), pa.int64())}))
            con.sql(
                f"CREATE TEMP TABLE considered AS SELECT {ENTITY_KEY} FROM changed "
                f"UNION {_moved_in_time_sql(plans, start, as_of)}"
            )
        # The rows are computed once: counted for the progress bar, then streamed.
        con.sql(f"CREATE TEMP TABLE scoreable AS {_scoreable_sql(plans, as_of, among)}")
        ((written,),) = con.sql("SELECT count(*) FROM scoreable").fetchall()
        reader = con.sql("SELECT * FROM scoreable").to_arrow_reader(batch_size)
        with tqdm(total=written, unit="user", desc="materialize → valkey", disable=not show_progress) as bar:
            for count, commands, payload in _write_commands(layout, plans, reader):
                _send_pipelined(client, commands, payload)
                bar.update(count)
        if among:
            gone = con.sql(
                f"SELECT {ENTITY_KEY} FROM considered ANTI JOIN scoreable USING ({ENTITY_KEY})"
            ).fetchnumpy()[ENTITY_KEY]
        else:
            kept = con.sql(f"SELECT {ENTITY_KEY} FROM scoreable").fetchnumpy()[ENTITY_KEY]
            found = _project_users(client, layout)
            gone = found[~np.isin(found, kept)]
    deleted = _delete(client, layout, np.asarray(gone, dtype=np.int64))

    _record_intervals(store, plans, start, as_of)
    client.set(
        marker_key(project, service_name),
        json.dumps({"feature_set_version": version, "as_of": as_of.isoformat(), "views": fingerprint}),
    )
    return MaterializationReport(
        users=written,
        deleted=deleted,
        views=[p.name for p in plans],
        start=start.isoformat(),
        end=as_of.isoformat(),
        seconds=round(time.perf_counter() - started, 2),
        mode=mode,
    )


def materialize_latest(
    store,
    client,
    service_name: str = "income_v1",
    end: datetime | None = None,
    batch_size: int = 5_000,
    show_progress: bool = True,
) -> MaterializationReport:
    """A full materialization as of `end` (default: the newest event time in the tables)."""
    return materialize(
        store,
        client,
        service_name,
        as_of=end or latest_event_time(store, service_name),
        batch_size=batch_size,
        show_progress=show_progress,
    )


def forget_online(store, client, user_ids) -> int:
    """Delete the users' keys (one per user holds every view of the project); the number that existed."""
    layout = key_layout(store)
    return _delete(client, layout, np.asarray(sorted(set(int(u) for u in user_ids)), dtype="int64"))
