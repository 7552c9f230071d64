"""The users' features of a feature service (income_v1, income_v2), read from Valkey as Feast stores them.

Feast's materialization writes one Valkey hash per user: a field per feature (murmur3 of
"view:feature") holding a Feast ValueProto, and per view a field "_ts:view" holding the
event time. Two readers give the same answer (FeatureRows):

- `direct` (the default): one HMGET per user of exactly the service's fields, the key and
  the field names computed by Feast's own helpers, the values decoded as Feast decodes them.
  It costs a fraction of the CPU of Feast's SDK read, which builds a protobuf response for
  every request and is most of the service's CPU (benchmarks/serving.py, README).
- `feast`: FeatureStore.get_online_features_async, the read `feast serve` makes.

The direct reader leans on Feast's private names (`_redis_key`, `_mmh3`,
`_versioned_fv_name`): a Feast upgrade may change them, or the layout behind them. So at
startup it is checked against Feast's SDK on users found in Valkey, for every feature
service; on any difference (or any error) the service reads through Feast's SDK, says why in
the log, and /health reports the reader in use. INCOME_SERVE_FEATURE_READER=feast forces it.

Both must answer 503 at once when Valkey is down, not hold each request for seconds of
backoff. The direct reader's own client has socket timeouts and one immediate retry. For
Feast's client: socket timeouts go into the connection string (Feast passes every
`key=value` of it on to redis-py's client), and the retry policy is set on the client Feast
builds lazily, reachable only through Feast's private
`_get_provider().online_store._get_client_async(...)`. tests/serving/test_app.py times the
503 of a stopped Valkey.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import valkey.asyncio
from feast.infra.key_encoding_utils import deserialize_entity_key
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.infra.online_stores.redis import _versioned_fv_name
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.timestamp_pb2 import Timestamp

# redis-py only where Feast's client requires it: Feast's Valkey client is redis-py, so its
# errors and its Retry are redis-py's. The project's own access to Valkey uses `valkey`.
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import NoBackoff as RedisNoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from valkey.asyncio.retry import Retry
from valkey.backoff import NoBackoff
from valkey.exceptions import ConnectionError as ValkeyConnectionError
from valkey.exceptions import TimeoutError as ValkeyTimeoutError

from income.data.schema import ENTITY_KEY, FEATURE_SERVICES, service_features
from income.features.feature_store import FEATURE_SERVICE, get_store
from income.platform.settings import ValkeySettings
from serving.errors import ServiceUnavailable

log = logging.getLogger("serving")

DIRECT, FEAST = "direct", "feast"
READERS = (DIRECT, FEAST)
CHECK_USERS = 200  # users found in Valkey on which the direct reader is checked at startup

_UNREACHABLE = (
    OSError,
    TimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    ValkeyConnectionError,
    ValkeyTimeoutError,
)


@dataclass(frozen=True)
class FeatureRows:
    """What the online store holds for some users, in their order."""

    columns: dict[str, list]  # feature -> one value per user, as Feast's to_dict() gives it
    timestamps: dict[str, list[datetime | None]]  # view -> one event time per user; None: no row


@dataclass(frozen=True)
class ServiceViews:
    """A feature service as the registry lists it, and where its values lie in a user's hash."""

    service: object  # Feast's FeatureService
    views: dict[str, list[str]]  # view -> its features in the service
    fields: list[bytes]  # the hash fields to read: every feature, then each view's "_ts:view"

    @classmethod
    def of(cls, service, store) -> ServiceViews:
        views, fields, stamps = {}, [], []
        for projection in service.feature_view_projections:
            view = store.get_feature_view(projection.name)
            stored_as = _versioned_fv_name(view, store.config)  # the name Feast writes it under
            views[projection.name] = [f.name for f in projection.features]
            fields += [_mmh3(f"{stored_as}:{f.name}") for f in projection.features]
            stamps.append(f"_ts:{stored_as}".encode())
        return cls(service, views, fields + stamps)

    def decode(self, hashes: list[list[bytes | None]]) -> FeatureRows:
        """FeatureRows from one HMGET answer (values in `fields` order) per user."""
        columns: dict[str, list] = {}
        timestamps: dict[str, list[datetime | None]] = {}
        i = 0
        for features in self.views.values():
            for feature in features:
                columns[feature] = [_value(h[i]) for h in hashes]
                i += 1
        for view in self.views:
            timestamps[view] = [_stored_time(h[i]) for h in hashes]
            i += 1
        return FeatureRows(columns, timestamps)


@dataclass
class OnlineFeatures:
    """The online store opened for the service: each feature service's fields, timeouts, fast failure."""

    store: object  # Feast's FeatureStore: the registry, and the `feast` reader
    services: dict[str, ServiceViews]  # every feature service of the registry, by name
    valkey: ValkeySettings
    timeout: float  # seconds before Valkey counts as unreachable
    client: valkey.asyncio.Valkey  # the direct reader's
    reader: str = DIRECT  # the one in use: DIRECT or FEAST
    reader_note: str | None = None  # why FEAST, when DIRECT was wanted

    @classmethod
    async def open(
        cls, valkey_settings: ValkeySettings, timeout: float, reader: str = DIRECT
    ) -> OnlineFeatures:
        """The store, both readers ready, the direct one checked against Feast's (module docstring)."""
        if reader not in READERS:
            raise ValueError(f"INCOME_SERVE_FEATURE_READER={reader!r}: expected one of {', '.join(READERS)}")
        store, services = await asyncio.to_thread(_open_store, valkey_settings, timeout)
        # Private Feast names: the only way to the async client it builds (module docstring).
        online_store = store._get_provider().online_store
        feast_client = await online_store._get_client_async(store.config.online_store)
        feast_client.set_retry(RedisRetry(RedisNoBackoff(), retries=1))
        # One immediate retry: a pooled connection may be stale after a Valkey restart.
        client = valkey_settings.async_client(timeout, retry=Retry(NoBackoff(), retries=1))
        features = cls(store, services, valkey_settings, timeout, client, reader=reader)
        if reader == DIRECT:
            await features._check_direct_reader()
        return features

    async def read(self, user_ids: list[int], service_name: str = FEATURE_SERVICE) -> FeatureRows:
        """The users' features of the service, or ServiceUnavailable when Valkey does not answer in time."""
        served = self.services[service_name]
        read = self._read_direct if self.reader == DIRECT else self._read_feast
        try:
            return await asyncio.wait_for(read(user_ids, served), timeout=4 * self.timeout)
        except _UNREACHABLE as exc:
            raise ServiceUnavailable(
                f"online store (Valkey at {self.valkey.host}:{self.valkey.port}) unreachable: "
                f"{type(exc).__name__}: {exc or 'timed out'}"
            ) from exc

    async def close(self) -> None:
        await self.client.aclose()

    async def _read_direct(self, user_ids: list[int], served: ServiceViews) -> FeatureRows:
        project, version = self.store.config.project, self.store.config.entity_key_serialization_version
        keys = [
            _redis_key(project, _entity_key(u), entity_key_serialization_version=version) for u in user_ids
        ]
        if len(keys) == 1:
            hashes = [await self.client.hmget(keys[0], served.fields)]
        else:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, served.fields)
            hashes = await pipe.execute()
        return served.decode(hashes)

    async def _read_feast(self, user_ids: list[int], served: ServiceViews) -> FeatureRows:
        response = await self.store.get_online_features_async(
            features=served.service, entity_rows=[{ENTITY_KEY: u} for u in user_ids]
        )
        proto = response.proto
        # Every feature of a view carries the view's event times: read them off its first one.
        stamp_of = {features[0]: view for view, features in served.views.items()}
        columns: dict[str, list] = {}
        timestamps: dict[str, list[datetime | None]] = {}
        for name, vector in zip(proto.metadata.feature_names.val, proto.results, strict=True):
            if name == ENTITY_KEY:  # Feast answers the request's keys too
                continue
            columns[name] = [_python_value(v) for v in vector.values]
            if name in stamp_of:
                timestamps[stamp_of[name]] = [_timestamp(t) for t in vector.event_timestamps]
        return FeatureRows(columns, timestamps)

    async def _check_direct_reader(self) -> None:
        """Read users found in Valkey both ways, for every service; any difference: read through Feast."""
        try:
            users = await self._users_in_valkey(CHECK_USERS)
            for name, served in self.services.items():
                direct, feast = await self._read_direct(users, served), await self._read_feast(users, served)
                if direct != feast:
                    differ = [
                        f
                        for f in {*direct.columns, *feast.columns}
                        if direct.columns.get(f) != feast.columns.get(f)
                    ]
                    differ += [
                        v for v in direct.timestamps if direct.timestamps[v] != feast.timestamps.get(v)
                    ]
                    raise ValueError(f"service {name}: the readers differ on {sorted(differ)}")
        except _UNREACHABLE as exc:  # Valkey down at startup: not the reader's fault
            log.warning("feature reader not checked, Valkey unreachable (%s): reading directly", exc)
            return
        except Exception as exc:  # noqa: BLE001 - any surprise: the slow, certain reader
            self.reader, self.reader_note = FEAST, f"direct read failed its check: {exc}"
            log.warning("%s; reading through Feast's SDK", self.reader_note)
            return
        log.info("direct feature reader checked against Feast's SDK on %d users", len(users))

    async def _users_in_valkey(self, count: int) -> list[int]:
        """Up to `count` user ids that have a hash in Valkey (plus one that has none)."""
        project = self.store.config.project.encode()
        version = self.store.config.entity_key_serialization_version
        users: list[int] = []
        async for key in self.client.scan_iter(match=b"*" + project, count=1000):
            entity = deserialize_entity_key(key[: -len(project)], entity_key_serialization_version=version)
            if list(entity.join_keys) == [ENTITY_KEY]:
                users.append(entity.entity_values[0].int64_val)
            if len(users) >= count:
                break
        return [*users, -1]  # -1: nobody, so "no row" is compared too


def _open_store(valkey_settings: ValkeySettings, timeout: float):
    """The Feast store with Valkey socket timeouts, and every feature service of its registry.

    The default service (income_v1) must be in the registry; the others are served when they are.
    """
    store = get_store(valkey_settings)
    online = store.config.online_store
    online.connection_string += f",socket_timeout={timeout},socket_connect_timeout={timeout}"
    try:
        store.get_feature_service(FEATURE_SERVICE)
    except Exception as exc:
        raise RuntimeError(
            f"feature service {FEATURE_SERVICE!r} not in the Feast registry: "
            f"run the feature pipeline first ({exc})"
        ) from exc
    services = {}
    for service in store.list_feature_services():
        served = ServiceViews.of(service, store)
        if service.name in FEATURE_SERVICES:
            missing = set(service_features(service.name)) - {f for fs in served.views.values() for f in fs}
            if missing:
                raise RuntimeError(f"feature service {service.name} lacks its features {sorted(missing)}")
        services[service.name] = served
    return store, services


def _entity_key(user_id: int) -> EntityKey:
    return EntityKey(join_keys=[ENTITY_KEY], entity_values=[Value(int64_val=user_id)])


def _value(stored: bytes | None):
    """A stored Feast ValueProto as Feast's to_dict() gives it (None when absent or unset)."""
    if stored is None:
        return None
    value = Value()
    value.ParseFromString(stored)
    return _python_value(value)


def _stored_time(stored: bytes | None) -> datetime | None:
    if stored is None:
        return None
    ts = Timestamp()
    ts.ParseFromString(stored)
    return _timestamp(ts)


def _python_value(value):
    """A Feast ValueProto as Feast's to_dict() gives it (None when unset)."""
    kind = value.WhichOneof("val")
    return None if kind is None or kind == "null_val" else getattr(value, kind)


def _timestamp(ts) -> datetime | None:
    if not ts.seconds and not ts.nanos:  # Feast's "no row of this view for the user"
        return None
    return ts.ToDatetime(tzinfo=UTC)
