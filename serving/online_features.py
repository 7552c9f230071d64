"""The users' features of a feature service (income_v1, income_v2), read from Valkey through Feast.

The read is the one `feast serve` makes (FeatureStore.get_online_features_async), taken
apart from its protobuf response without Feast's to_dict(): values per feature, and per
feature view the event time of the values (None: the view has no row for the user).

Feast's Redis online store offers no setting for how long to wait or how often to retry,
and the service must answer 503 at once when Valkey is down, not hold each request for
seconds of backoff, so opening the store adjusts Feast's own client in two ways:

- socket timeouts go into the connection string: Feast passes every `key=value` of it
  on to redis-py's client, so this is configuration, not a reach into Feast;
- redis-py retries a failed command 3 times with up to 10 s of backoff by default, and
  Feast builds its async client itself, lazily, with that default. The only way to the
  client is Feast's private `_get_provider().online_store._get_client_async(...)`: calling
  it at startup builds the client, and one immediate retry is set on it (a pooled
  connection may be stale after a Valkey restart). Being private, these names may change
  with a Feast upgrade: startup then fails on them, and a changed client behind them shows
  in tests/serving/test_app.py, which times the 503 of a stopped Valkey.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

# redis-py only where Feast's client requires it: Feast's Valkey client is redis-py, so its
# errors and its Retry are redis-py's. The project's own access to Valkey uses `valkey`.
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from income.data.schema import ENTITY_KEY, FEATURE_SERVICES, service_features
from income.features.feature_store import FEATURE_SERVICE, get_store
from income.platform.settings import ValkeySettings
from serving.errors import ServiceUnavailable

_UNREACHABLE = (OSError, TimeoutError, RedisConnectionError, RedisTimeoutError)


@dataclass(frozen=True)
class FeatureRows:
    """What the online store holds for some users, in their order."""

    columns: dict[str, list]  # feature -> one value per user, as Feast's to_dict() gives it
    timestamps: dict[str, list[datetime | None]]  # view -> one event time per user; None: no row


@dataclass(frozen=True)
class ServiceViews:
    service: object  # Feast's FeatureService
    views: dict[str, list[str]]  # view -> its features in the service


@dataclass(frozen=True)
class OnlineFeatures:
    """The Feast store opened for the service: each feature service's views, timeouts, fast failure."""

    store: object
    services: dict[str, ServiceViews]  # every feature service of the registry, by name
    valkey: ValkeySettings
    timeout: float  # seconds before Valkey counts as unreachable

    @classmethod
    async def open(cls, valkey: ValkeySettings, timeout: float) -> OnlineFeatures:
        """The store with Valkey timeouts and fail-fast retries (see the module docstring)."""
        store, services = await asyncio.to_thread(_open_store, valkey, timeout)
        # Private Feast names: the only way to the async client it builds (module docstring).
        online_store = store._get_provider().online_store
        client = await online_store._get_client_async(store.config.online_store)
        client.set_retry(Retry(NoBackoff(), retries=1))
        return cls(store, services, valkey, timeout)

    async def read(self, user_ids: list[int], service_name: str = FEATURE_SERVICE) -> FeatureRows:
        """The users' features of the service, or ServiceUnavailable when Valkey does not answer in time."""
        served = self.services[service_name]
        try:
            response = await asyncio.wait_for(
                self.store.get_online_features_async(
                    features=served.service, entity_rows=[{ENTITY_KEY: u} for u in user_ids]
                ),
                timeout=4 * self.timeout,
            )
        except _UNREACHABLE as exc:
            raise ServiceUnavailable(
                f"online store (Valkey at {self.valkey.host}:{self.valkey.port}) unreachable: "
                f"{type(exc).__name__}: {exc or 'timed out'}"
            ) from exc
        proto = response.proto
        # Every feature of a view carries the view's event times: read them off its first one.
        stamp_of = {features[0]: view for view, features in served.views.items()}
        columns: dict[str, list] = {}
        timestamps: dict[str, list[datetime | None]] = {}
        for name, vector in zip(proto.metadata.feature_names.val, proto.results, strict=True):
            columns[name] = [_python_value(v) for v in vector.values]
            if name in stamp_of:
                timestamps[stamp_of[name]] = [_timestamp(t) for t in vector.event_timestamps]
        return FeatureRows(columns, timestamps)


def _open_store(valkey: ValkeySettings, timeout: float):
    """The Feast store with Valkey socket timeouts, and the views of every feature service.

    The default service (income_v1) must be in the registry; the others are served when they are.
    """
    store = get_store(valkey)
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
        views = {p.name: [f.name for f in p.features] for p in service.feature_view_projections}
        if service.name in FEATURE_SERVICES:
            served = {f for features in views.values() for f in features}
            missing = set(service_features(service.name)) - served
            if missing:
                raise RuntimeError(f"feature service {service.name} lacks its features {sorted(missing)}")
        services[service.name] = ServiceViews(service, views)
    return store, services


def _python_value(value):
    """A Feast ValueProto as Feast's to_dict() gives it (None when unset)."""
    kind = value.WhichOneof("val")
    return None if kind is None or kind == "null_val" else getattr(value, kind)


def _timestamp(ts) -> datetime | None:
    if not ts.seconds and not ts.nanos:  # Feast's "no row of this view for the user"
        return None
    return ts.ToDatetime(tzinfo=UTC)
