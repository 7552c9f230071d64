"""FastAPI service: P(income > 50K) for users, from their Feast online features and the champion.

    POST /predict  {"user_id": 42} or {"user_ids": [1, 2, 3]}
    GET  /health   model loaded and Valkey answering: 200, otherwise 503 with the details

The feature store and the model are loaded once, at startup. A request reads the users'
features of the feature service `income_v1` from Valkey through Feast (the async read,
as `feast serve` does) and scores them with income.inference.lookup_scorer (the pyfunc's exact output).
A background task asks the registry every INCOME_SERVE_RELOAD_SECONDS which version
holds the alias and loads a new champion beside the old one, then swaps; a response
names the version that scored it. A version is used only if its feature contract holds
(income.inference.contract, the check batch scoring makes too). A version that cannot be used
(artifact store down, contract refused) is tried again after INCOME_SERVE_RETRY_SECONDS,
the wait doubling per failure up to INCOME_SERVE_RETRY_MAX_SECONDS, for as long as the
alias points at it; meanwhile the previous version, if any, keeps serving and /health
names the version, the error and the time of the next try.

Configuration comes from the environment only (`.runtime/env` via load_runtime_env):

| variable | default | meaning |
| --- | --- | --- |
| INCOME_SERVE_HOST / INCOME_SERVE_PORT | 127.0.0.1 / 8000 | where uvicorn listens |
| INCOME_SERVE_MODEL | income-classifier | registered model to serve |
| INCOME_SERVE_ALIAS | champion | its alias to follow |
| INCOME_SERVE_RELOAD_SECONDS | 10 | how often the alias is checked |
| INCOME_SERVE_RETRY_SECONDS | 2 | first wait before a version that failed is tried again |
| INCOME_SERVE_RETRY_MAX_SECONDS | 60 | the longest wait between two tries (doubling up to it) |
| INCOME_SERVE_VALKEY_TIMEOUT | 0.5 | seconds before Valkey counts as unreachable |
| INCOME_SERVE_ACCESS_LOG | 0 | 1: uvicorn logs every request |
| VALKEY_* / MLFLOW_TRACKING_URI / FEAST_REGISTRY_PATH | see README | the services |
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from income.data.schema import ENTITY_KEY, HIGH_INCOME, LOW_INCOME
from income.features.feature_store import FEATURE_SERVICE, get_store
from income.inference.contract import check_contract
from income.inference.lookup_scorer import LookupScorer
from income.platform.settings import ValkeySettings, load_runtime_env
from income.training.model import FEATURES
from income.training.registry import CHAMPION
from income.training.tracking import MODEL_NAME, configure

log = logging.getLogger("serving")

MAX_USERS = 1000
INLINE_ROWS = 64  # larger batches are scored on a worker thread, off the event loop
INT64_MAX = 2**63 - 1  # Feast's user_id is an int64


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    model_name: str = MODEL_NAME
    alias: str = CHAMPION
    reload_seconds: float = 10.0
    retry_seconds: float = 2.0
    retry_max_seconds: float = 60.0
    valkey_timeout_seconds: float = 0.5
    access_log: bool = False
    valkey: ValkeySettings | None = None  # None: ValkeySettings.from_env() at startup

    @classmethod
    def from_env(cls) -> ServeSettings:
        load_runtime_env()
        env = os.environ
        return cls(
            host=env.get("INCOME_SERVE_HOST", cls.host),
            port=int(env.get("INCOME_SERVE_PORT", cls.port)),
            model_name=env.get("INCOME_SERVE_MODEL", cls.model_name),
            alias=env.get("INCOME_SERVE_ALIAS", cls.alias),
            reload_seconds=float(env.get("INCOME_SERVE_RELOAD_SECONDS", cls.reload_seconds)),
            retry_seconds=float(env.get("INCOME_SERVE_RETRY_SECONDS", cls.retry_seconds)),
            retry_max_seconds=float(env.get("INCOME_SERVE_RETRY_MAX_SECONDS", cls.retry_max_seconds)),
            valkey_timeout_seconds=float(env.get("INCOME_SERVE_VALKEY_TIMEOUT", cls.valkey_timeout_seconds)),
            access_log=env.get("INCOME_SERVE_ACCESS_LOG", "0") not in ("", "0", "false", "no"),
        )


# --- API models ---------------------------------------------------------------------------

UserId = Annotated[int, Field(strict=True, gt=0, le=INT64_MAX, description="A user's id (int64 > 0).")]


class PredictRequest(BaseModel):
    """One user (`user_id`) or up to 1000 (`user_ids`); exactly one of the two."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": 42}, {"user_ids": [1, 2, 3]}]},
    )
    user_id: UserId | None = None
    user_ids: Annotated[list[UserId], Field(min_length=1, max_length=MAX_USERS)] | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> PredictRequest:
        if (self.user_id is None) == (self.user_ids is None):
            raise ValueError("give exactly one of `user_id` and `user_ids`")
        return self

    @property
    def ids(self) -> list[int]:
        return [self.user_id] if self.user_id is not None else list(self.user_ids or [])


class Prediction(BaseModel):
    user_id: int
    probability: float = Field(description="P(income > 50K) from the model version named here.")
    label: Literal[">50K", "<=50K"] = Field(description='">50K" when probability >= 0.5.')
    model_name: str
    model_version: str
    feature_timestamps: dict[str, datetime | None] = Field(
        description="Per feature view, the event time of the values used; null: the view has none."
    )


class PredictResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "predictions": [
                        {
                            "user_id": 42,
                            "probability": 0.7312,
                            "label": ">50K",
                            "model_name": "income-classifier",
                            "model_version": "3",
                            "feature_timestamps": {
                                "demographic": "2025-03-01T10:00:00Z",
                                "relationship": "2025-03-01T10:00:00Z",
                                "occupation": "2025-03-01T10:00:00Z",
                                "history": "2025-03-01T10:00:00Z",
                            },
                        }
                    ]
                }
            ]
        }
    )
    predictions: list[Prediction]


class ErrorResponse(BaseModel):
    detail: str
    user_ids: list[int] | None = Field(None, description="For 404: the users without online features.")


class ModelStatus(BaseModel):
    name: str
    alias: str
    version: str | None = None
    loaded_at: datetime | None = None
    fast_path: bool | None = Field(None, description="Compiled preprocessing (same output) in use.")
    error: str | None = Field(None, description="Why the alias's version is not served, if it is not.")
    failed_version: str | None = Field(None, description="The alias's version that could not be used.")
    failed_attempts: int = Field(0, description="How many times in a row it failed.")
    next_retry_at: datetime | None = Field(None, description="When it is tried again.")


class ValkeyStatus(BaseModel):
    ok: bool
    address: str
    latency_ms: float | None = None
    error: str | None = None


class HealthResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "model": {
                        "name": "income-classifier",
                        "alias": "champion",
                        "version": "3",
                        "loaded_at": "2025-03-01T10:00:00Z",
                        "fast_path": True,
                        "error": None,
                        "failed_version": None,
                        "failed_attempts": 0,
                        "next_retry_at": None,
                    },
                    "valkey": {"ok": True, "address": "127.0.0.1:6390", "latency_ms": 0.2, "error": None},
                }
            ]
        }
    )
    status: Literal["ok", "unavailable"]
    model: ModelStatus
    valkey: ValkeyStatus


# --- state -------------------------------------------------------------------------------


class ServiceUnavailable(Exception):
    pass


class UnknownUsers(Exception):
    def __init__(self, user_ids: list[int]) -> None:
        self.user_ids = user_ids


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    scorer: LookupScorer
    loaded_at: datetime


@dataclass(frozen=True)
class LoadFailure:
    """The alias's version could not be used `attempts` times in a row; next try at `retry_at`."""

    version: str
    error: str
    attempts: int
    retry_at: float  # time.monotonic(): immune to wall-clock jumps
    next_retry_at: datetime  # the same moment on the wall clock, for /health


@dataclass
class Service:
    """Everything a request needs, built once at startup (see create_app's lifespan)."""

    settings: ServeSettings
    valkey: ValkeySettings
    store: object
    feature_service: object
    views: dict[str, list[str]]  # view -> its features in the service
    model: LoadedModel | None = None
    model_error: str | None = None
    failure: LoadFailure | None = None
    _client: object = None
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # -- model ----------------------------------------------------------------------------

    def _registry(self):
        from mlflow import MlflowClient

        if self._client is None:  # one client: its store (engine, connection pool) is reused
            self._client = MlflowClient()
        return self._client

    def _alias_version(self) -> str:
        version = self._registry().get_model_version_by_alias(self.settings.model_name, self.settings.alias)
        return str(version.version)

    def _load(self, version: str) -> LoadedModel:
        """Load one registered version, refusing one without the feature contract of what is served."""
        import mlflow

        name = self.settings.model_name
        tags = self._registry().get_model_version(name, version).tags
        check_contract(name, version, tags, self.store, FEATURE_SERVICE)
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        scorer = LookupScorer(pyfunc.unwrap_python_model().model)
        scorer.predict({f: [None] for f in FEATURES})  # warm up: first calls allocate
        return LoadedModel(name, version, scorer, datetime.now(UTC))

    def _failed(self, version: str, exc: Exception) -> LoadFailure:
        """The failure of `version` with `exc`, counted, and when to try again (doubling wait, capped)."""
        attempts = self.failure.attempts + 1 if self.failure and self.failure.version == version else 1
        doublings = min(attempts - 1, 32)  # after days of failures 2**n would overflow a float
        wait = min(self.settings.retry_seconds * 2**doublings, self.settings.retry_max_seconds)
        error = f"cannot use {self.settings.model_name} v{version}: {exc}"
        return LoadFailure(
            version, error, attempts, time.monotonic() + wait, datetime.now(UTC) + timedelta(seconds=wait)
        )

    async def refresh_model(self) -> None:
        """Load the version the alias points at, unless it is loaded or its next try is not due."""
        async with self._reload_lock:
            try:
                version = await asyncio.to_thread(self._alias_version)
            except Exception as exc:  # noqa: BLE001 - registry down or no alias yet: keep serving
                self.model_error = f"cannot resolve {self.settings.model_name}@{self.settings.alias}: {exc}"
                log.warning(self.model_error)
                return
            if self.model and self.model.version == version:
                # Nothing to load; a failure of another version (the alias moved back) is moot.
                self.model_error, self.failure = None, None
                return
            failure = self.failure
            if failure and failure.version == version and time.monotonic() < failure.retry_at:
                self.model_error = failure.error  # a registry hiccup meanwhile is over
                return
            try:
                loaded = await asyncio.to_thread(self._load, version)
            except Exception as exc:  # noqa: BLE001 - a bad version must not take the service down
                self.failure = self._failed(version, exc)
                self.model_error = self.failure.error
                log.error(
                    "%s (attempt %d; next at %s)",
                    self.failure.error,
                    self.failure.attempts,
                    self.failure.next_retry_at.isoformat(timespec="seconds"),
                )
                return
            previous = self.model.version if self.model else None
            self.model, self.model_error, self.failure = loaded, None, None
            log.info("serving %s v%s (was %s)", loaded.name, loaded.version, previous)

    def _next_check_seconds(self) -> float:
        """Until the next alias check, or sooner when a failed version's retry falls due first."""
        if self.failure is None:
            return self.settings.reload_seconds
        return max(0.0, min(self.settings.reload_seconds, self.failure.retry_at - time.monotonic()))

    async def watch_alias(self) -> None:
        while True:
            await asyncio.sleep(self._next_check_seconds())
            await self.refresh_model()

    # -- features and predictions ---------------------------------------------------------

    async def _read(self, user_ids: list[int]):
        try:
            response = await asyncio.wait_for(
                self.store.get_online_features_async(
                    features=self.feature_service, entity_rows=[{ENTITY_KEY: u} for u in user_ids]
                ),
                timeout=4 * self.settings.valkey_timeout_seconds,
            )
        except (OSError, TimeoutError, *_redis_errors()) as exc:
            raise ServiceUnavailable(
                f"online store (Valkey at {self.valkey.host}:{self.valkey.port}) unreachable: "
                f"{type(exc).__name__}: {exc or 'timed out'}"
            ) from exc
        return response.proto

    async def predict(self, user_ids: list[int]) -> list[Prediction]:
        model = self.model  # one version for the whole request, whatever reloads meanwhile
        if model is None:
            raise ServiceUnavailable(f"no model loaded: {self.model_error or 'still starting'}")
        proto = await self._read(user_ids)
        stamp_of = {features[0]: view for view, features in self.views.items()}
        columns: dict[str, list] = {}
        stamps: dict[str, list[datetime | None]] = {}
        for name, vector in zip(proto.metadata.feature_names.val, proto.results, strict=True):
            columns[name] = [_python_value(v) for v in vector.values]
            if name in stamp_of:
                stamps[stamp_of[name]] = [_timestamp(t) for t in vector.event_timestamps]
        unknown = [u for i, u in enumerate(user_ids) if all(s[i] is None for s in stamps.values())]
        if unknown:
            raise UnknownUsers(unknown)
        if len(user_ids) <= INLINE_ROWS:
            scores = model.scorer.predict(columns)
        else:
            scores = await run_in_threadpool(model.scorer.predict, columns)
        return [
            Prediction(
                user_id=u,
                probability=float(p),
                label=HIGH_INCOME if p >= 0.5 else LOW_INCOME,
                model_name=model.name,
                model_version=model.version,
                feature_timestamps={view: s[i] for view, s in stamps.items()},
            )
            for i, (u, p) in enumerate(zip(user_ids, scores, strict=True))
        ]

    async def ping_valkey(self) -> ValkeyStatus:
        import valkey.asyncio

        address = f"{self.valkey.host}:{self.valkey.port}"
        timeout = self.settings.valkey_timeout_seconds
        client = valkey.asyncio.Valkey(
            host=self.valkey.host,
            port=self.valkey.port,
            password=self.valkey.password or None,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        started = asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(client.ping(), timeout)
            latency = (asyncio.get_running_loop().time() - started) * 1000
            return ValkeyStatus(ok=True, address=address, latency_ms=round(latency, 3))
        except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
            return ValkeyStatus(
                ok=False, address=address, error=f"{type(exc).__name__}: {exc or 'timed out'}"
            )
        finally:
            await client.aclose()


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ConnectionError, TimeoutError  # Feast's Valkey client is redis-py

    return (ConnectionError, TimeoutError)


def _python_value(value):
    """A Feast ValueProto as Feast's to_dict() gives it (None when unset)."""
    kind = value.WhichOneof("val")
    return None if kind is None or kind == "null_val" else getattr(value, kind)


def _json_safe(value):
    """JSON has no NaN or infinity: name them instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _timestamp(ts) -> datetime | None:
    if not ts.seconds and not ts.nanos:  # Feast's "no row of this view for the user"
        return None
    return ts.ToDatetime(tzinfo=UTC)


def _open_store(valkey: ValkeySettings, timeout: float):
    """The Feast store with Valkey timeouts and fail-fast retries, plus the feature service."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    store = get_store(valkey)
    online = store.config.online_store
    online.connection_string += f",socket_timeout={timeout},socket_connect_timeout={timeout}"
    try:
        service = store.get_feature_service(FEATURE_SERVICE)
    except Exception as exc:
        raise RuntimeError(
            f"feature service {FEATURE_SERVICE!r} not in the Feast registry: "
            f"run the feature pipeline first ({exc})"
        ) from exc
    views = {p.name: [f.name for f in p.features] for p in service.feature_view_projections}
    missing = set(FEATURES) - {f for features in views.values() for f in features}
    if missing:
        raise RuntimeError(f"feature service {FEATURE_SERVICE} lacks the model's features {sorted(missing)}")
    return store, service, views, Retry(NoBackoff(), retries=1)


async def _fail_fast(store, retry) -> None:
    """redis-py retries a failed command 3 times with up to 10 s of backoff by default: a
    down Valkey would hold each request for seconds. One immediate retry (a pooled
    connection may be stale after a Valkey restart) is enough."""
    online_store = store._get_provider().online_store
    client = await online_store._get_client_async(store.config.online_store)
    client.set_retry(retry)


# --- the app -----------------------------------------------------------------------------


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        valkey = settings.valkey or ValkeySettings.from_env()
        configure()
        store, service, views, retry = await asyncio.to_thread(
            _open_store, valkey, settings.valkey_timeout_seconds
        )
        await _fail_fast(store, retry)
        state = Service(settings, valkey, store, service, views)
        await state.refresh_model()
        try:  # warm the read path (registry cache, connection); Valkey may be down: fine
            await state._read([1])
        except ServiceUnavailable as exc:
            log.warning("%s", exc)
        app.state.service = state
        watcher = asyncio.create_task(state.watch_alias())
        try:
            yield
        finally:
            watcher.cancel()

    app = FastAPI(
        title="income-classifier",
        version="1",
        summary="P(income > 50K) for users, from Feast online features and the MLflow champion.",
        lifespan=lifespan,
    )

    @app.exception_handler(UnknownUsers)
    async def unknown_users(request: Request, exc: UnknownUsers) -> JSONResponse:
        shown = ", ".join(map(str, exc.user_ids[:20])) + (" ..." if len(exc.user_ids) > 20 else "")
        detail = f"no online features for user(s) {shown} (not materialized, or unknown)"
        return JSONResponse(status_code=404, content={"detail": detail, "user_ids": exc.user_ids})

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, exc: ServiceUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)}, headers={"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input and fails (500) on e.g. 1e400 -> inf.
        return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(exc.errors()))})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI answers 400 for a body it cannot decode at all (e.g. invalid UTF-8); to
        # clients that is just another malformed body: 422, like every other one.
        status = 422 if exc.status_code == 400 else exc.status_code
        return JSONResponse(status_code=status, content={"detail": exc.detail}, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": f"internal error: {type(exc).__name__}"})

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses={
            404: {"model": ErrorResponse, "description": "A user has no features online."},
            422: {"description": "Malformed or mistyped body."},
            503: {"model": ErrorResponse, "description": "Valkey unreachable or no model loaded."},
        },
        summary="Score one user or up to 1000",
    )
    async def predict(body: PredictRequest, request: Request) -> PredictResponse:
        return PredictResponse(predictions=await request.app.state.service.predict(body.ids))

    @app.get(
        "/health",
        response_model=HealthResponse,
        responses={503: {"model": HealthResponse, "description": "No model, or Valkey not answering."}},
        summary="Model loaded and Valkey answering",
    )
    async def health(request: Request) -> JSONResponse:
        state: Service = request.app.state.service
        model, failure = state.model, state.failure
        body = HealthResponse(
            status="ok",
            model=ModelStatus(
                name=settings.model_name,
                alias=settings.alias,
                version=model.version if model else None,
                loaded_at=model.loaded_at if model else None,
                fast_path=model.scorer.uses_lookups if model else None,
                error=state.model_error,
                failed_version=failure.version if failure else None,
                failed_attempts=failure.attempts if failure else 0,
                next_retry_at=failure.next_retry_at if failure else None,
            ),
            valkey=await state.ping_valkey(),
        )
        ok = model is not None and body.valkey.ok
        body.status = "ok" if ok else "unavailable"
        return JSONResponse(status_code=200 if ok else 503, content=body.model_dump(mode="json"))

    return app
