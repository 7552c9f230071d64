"""Load the latest feature values into the online store (Valkey), fast and in bounded memory.

Same result as `feast materialize START END` for the feature service's views: for each
user, the latest row of each view with START <= event_timestamp <= END, written in Feast's
Redis layout (so `FeatureStore.get_online_features` and `feast serve` read it). Instead of
loading whole tables into pandas and converting row by row, DuckDB picks the latest rows
and joins the views per user, Arrow batches stream out of it, values are encoded once per
distinct value, and each user is one pipelined HSET covering every view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp

from income.data.schema import ENTITY_KEY, TIMESTAMP
from income.features.offline_store import parquet_glob


@dataclass(frozen=True)
class MaterializationReport:
    users: int
    views: list[str]
    start: str
    end: str
    seconds: float


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


def _plans(store, service_name: str) -> list[_ViewPlan]:
    service = store.get_feature_service(service_name)
    plans = []
    for projection in service.feature_view_projections:
        view = store.get_feature_view(projection.name)
        plans.append(
            _ViewPlan(
                name=view.name,
                source_uri=view.batch_source.path,
                features=[(f.name, str(f.dtype)) for f in projection.features],
                ttl=view.ttl or timedelta(0),
            )
        )
    return plans


def latest_event_time(store, service_name: str) -> datetime:
    """The newest event time in the service's offline tables (the default END)."""
    plans = _plans(store, service_name)
    with duckdb.connect() as con:
        union = " UNION ALL ".join(
            f"SELECT max({TIMESTAMP}) AS t FROM read_parquet('{parquet_glob(p.source_uri)}')" for p in plans
        )
        (latest,) = con.execute(f"SELECT max(t) FROM ({union})").fetchone()
    return latest.astimezone(UTC)


def _latest_rows_sql(plans: list[_ViewPlan], end: datetime) -> str:
    selects = []
    for p in plans:
        start = end - p.ttl if p.ttl else datetime(1970, 1, 1, tzinfo=UTC)
        cols = ", ".join(f'"{f}" AS "{p.column(f)}"' for f, _ in p.features)
        selects.append(
            f'{p.name} AS (SELECT {ENTITY_KEY}, {TIMESTAMP} AS "{p.ts_column}", {cols} '
            f"FROM read_parquet('{parquet_glob(p.source_uri)}') "
            f"WHERE {TIMESTAMP} >= TIMESTAMPTZ '{start.isoformat()}' "
            f"AND {TIMESTAMP} <= TIMESTAMPTZ '{end.isoformat()}' "
            f"QUALIFY row_number() OVER (PARTITION BY {ENTITY_KEY} ORDER BY {TIMESTAMP} DESC) = 1)"
        )
    joined = plans[0].name + "".join(f" FULL JOIN {p.name} USING ({ENTITY_KEY})" for p in plans[1:])
    return f"WITH {', '.join(selects)} SELECT * FROM {joined}"


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


def _timestamps(column: pa.ChunkedArray | pa.Array) -> list[bytes | None]:
    """RESP-framed serialized protobuf Timestamps (None where the view has no row)."""
    micros = pc.cast(column.cast(pa.timestamp("us", tz="UTC")), pa.int64()).to_pylist()
    return [
        None
        if m is None
        else _bulk(Timestamp(seconds=m // 1_000_000, nanos=(m % 1_000_000) * 1000).SerializeToString())
        for m in micros
    ]


def _key_encoder(project: str, version: int) -> Callable[[int], bytes]:
    """RESP-framed Feast Redis key of an int64 user_id.

    Feast's key is serialize_entity_key(user_id) + project, whose only varying part is
    the 8-byte little-endian value; the frame is derived from Feast's own function and
    checked against it, so a change in Feast's layout fails loudly instead of writing
    keys nobody reads.
    """

    def feast_key(user: int) -> bytes:
        entity = EntityKey(join_keys=[ENTITY_KEY], entity_values=[Value(int64_val=user)])
        return _redis_key(project, entity, entity_key_serialization_version=version)

    zero = feast_key(0)
    suffix = project.encode()
    prefix = zero[: -(8 + len(suffix))]
    length = b"$%d\r\n" % len(zero)
    for probe in (1, -2, 2**40 + 7):
        if prefix + probe.to_bytes(8, "little", signed=True) + suffix != feast_key(probe):
            raise RuntimeError("Feast's entity key layout changed: update income.features.materialize")
    return lambda user: b"%s%s%s%s\r\n" % (length, prefix, user.to_bytes(8, "little", signed=True), suffix)


def _hset_commands(store, plans: list[_ViewPlan], reader) -> Iterator[tuple[int, bytes]]:
    """Batches of pipelined HSET commands in RESP: (number of commands, bytes to send).

    One HSET per user sets every view's fields and `_ts:<view>`, the layout Feast's
    Redis online store reads (fields are murmur3 hashes of `<view>:<feature>`). `reader`
    streams Arrow batches of the latest rows (_latest_rows_sql).
    """
    key = _key_encoder(store.config.project, store.config.entity_key_serialization_version)
    fields = {
        p.name: [(_bulk(_mmh3(f"{p.name}:{f}")), p.column(f), _value_encoder(t)) for f, t in p.features]
        for p in plans
    }
    ts_fields = {p.name: _bulk(f"_ts:{p.name}".encode()) for p in plans}
    hset = _bulk(b"HSET")
    for batch in reader:
        users = batch.column(ENTITY_KEY).to_pylist()
        columns = {
            name: batch.column(name).to_pylist()
            for name in batch.schema.names
            if not name.endswith(TIMESTAMP) and name != ENTITY_KEY
        }
        stamps = {p.name: _timestamps(batch.column(p.ts_column)) for p in plans}
        commands = []
        for i, user in enumerate(users):
            parts = [hset, key(user)]
            for p in plans:
                stamp = stamps[p.name][i]
                if stamp is None:  # no row of this view for the user in the window
                    continue
                parts += (ts_fields[p.name], stamp)
                for field, column, encode in fields[p.name]:
                    parts += (field, encode(columns[column][i]))
            commands.append(b"*%d\r\n" % len(parts))
            commands.extend(parts)
        yield len(users), b"".join(commands)


def _send_pipelined(client, count: int, commands: bytes) -> None:
    """Send pre-encoded commands on one connection and check every reply."""
    connection = client.connection_pool.get_connection("HSET")
    try:
        connection.send_packed_command([commands])
        for _ in range(count):
            connection.read_response()  # raises on an error reply
    except BaseException:
        connection.disconnect()  # replies may be left unread: never reuse this connection
        raise
    finally:
        client.connection_pool.release(connection)


def materialize_latest(
    store,
    client,
    service_name: str = "income_v1",
    end: datetime | None = None,
    batch_size: int = 5_000,
    show_progress: bool = True,
) -> MaterializationReport:
    """Write every user's latest feature values (as of `end`) to the online store."""
    import time

    from tqdm import tqdm

    started = time.perf_counter()
    plans = _plans(store, service_name)
    end = end or latest_event_time(store, service_name)
    with duckdb.connect(config={"threads": 2, "memory_limit": "2GB"}) as con:
        # The latest rows are computed once: counted for the progress bar, then streamed.
        con.sql(f"CREATE TEMP TABLE latest AS {_latest_rows_sql(plans, end)}")
        ((users,),) = con.sql("SELECT count(*) FROM latest").fetchall()
        reader = con.sql("SELECT * FROM latest").to_arrow_reader(batch_size)
        with tqdm(total=users, unit="user", desc="materialize → valkey", disable=not show_progress) as bar:
            for count, commands in _hset_commands(store, plans, reader):
                _send_pipelined(client, count, commands)
                bar.update(count)
    max_ttl = max(p.ttl for p in plans)
    return MaterializationReport(
        users=users,
        views=[p.name for p in plans],
        start=(end - max_ttl).isoformat(),
        end=end.isoformat(),
        seconds=round(time.perf_counter() - started, 2),
    )
