"""The FastAPI app: P(income > 50K) for users, from their Feast online features and the champion.

    POST /predict  {"user_id": 42} or {"user_ids": [1, 2, 3]}
    GET  /health   model loaded and Valkey answering: 200, otherwise 503 with the details
    GET  /metrics  Prometheus metrics (serving.metrics)

The online store (serving.online_features), the champion and, in shadow or A/B mode, the
challenger (serving.served_model, serving.traffic) and the prediction log
(serving.prediction_log) are opened once, at startup (serving.service); the models are then
watched for alias moves in the background. A request's features are scored by
serving.predictions; a response names the version and the variant that scored it, and its
request id in the prediction log. Errors are answers: users that are not scoreable 404, malformed bodies
422, Valkey down or no model 503, never a 500 for bad input. Settings: serving.settings.

Who is scored (income.inference.scoreable; batch scoring applies the same rule): a user
is scored only when EVERY view of the feature service (as the Feast registry lists them)
has a row for the user within its TTL. Online, that is a row of every view in Valkey:
materialization writes only the views' rows within their TTL and keys expire with them, so
a view that Feast's response leaves without an event timestamp means no row within the
TTL. A request with any such user answers 404 naming every one of them, never a
prediction on imputed values; batch scoring writes no prediction for those users either
and counts them (`unscored_users`).
"""

from __future__ import annotations

import gc
import logging
import math
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving import predictions
from serving.errors import ServiceUnavailable, UnknownUsers
from serving.health import health_report
from serving.metrics import MetricsMiddleware, ServiceMetrics
from serving.schemas import ErrorResponse, HealthResponse, PredictRequest, PredictResponse
from serving.service import Service
from serving.settings import ServeSettings

log = logging.getLogger("serving")


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings.from_env()
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.service = await Service.open(settings, metrics)
        _freeze_startup_objects()
        try:
            yield
        finally:
            await app.state.service.close()

    app = FastAPI(
        title="income-classifier",
        version="1",
        summary="P(income > 50K) for users, from Feast online features and the MLflow champion.",
        lifespan=lifespan,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.exception_handler(UnknownUsers)
    async def unknown_users(request: Request, exc: UnknownUsers) -> JSONResponse:
        shown = ", ".join(map(str, exc.user_ids[:20])) + (" ..." if len(exc.user_ids) > 20 else "")
        detail = (
            f"user(s) {shown} not scoreable: some view of the feature service has no online row "
            "for them within its TTL (expired, not materialized, or unknown)"
        )
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
            404: {
                "model": ErrorResponse,
                "description": (
                    "A user is not scoreable: some view of the feature service has no online row for "
                    "them within its TTL (expired, not materialized, or unknown); `user_ids` names them. "
                    "Batch scoring leaves the same users unscored."
                ),
            },
            422: {"description": "Malformed or mistyped body."},
            503: {"model": ErrorResponse, "description": "Valkey unreachable or no model loaded."},
        },
        summary="Score one user or up to 1000",
    )
    async def predict(body: PredictRequest, request: Request) -> Response:
        started = getattr(request.state, "started", None) or time.perf_counter()
        request_id, answers = await predictions.predict(body.ids, request.app.state.service, started)
        # Serialized once here by pydantic-core (FastAPI would validate the answer again before
        # serializing it); `response_model` above still documents it.
        content = PredictResponse(predictions=answers, request_id=request_id).model_dump_json()
        return Response(content, media_type="application/json", headers={"X-Request-ID": request_id})

    @app.get(
        "/health",
        response_model=HealthResponse,
        responses={503: {"model": HealthResponse, "description": "No model, or Valkey not answering."}},
        summary="Model loaded and Valkey answering",
    )
    async def health(request: Request) -> JSONResponse:
        body = await health_report(request.app.state.service)
        status_code = 200 if body.status == "ok" else 503
        return JSONResponse(status_code=status_code, content=body.model_dump(mode="json"))

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(content=body, media_type=content_type)

    return app


def _freeze_startup_objects() -> None:
    """Keep the garbage collector's full passes off the startup's objects.

    Imports (Feast, MLflow, pandas) and the loaded models leave a few million objects that
    every full collection traverses again: 150-250 ms each in a worker's first seconds (timed
    with gc.callbacks), and one that falls under traffic holds up hundreds of requests.
    Frozen, they are never traversed again; what requests allocate is still collected.
    """
    gc.collect()
    gc.freeze()
    log.info("%d startup objects frozen out of the garbage collector's passes", gc.get_freeze_count())


def _json_safe(value):
    """JSON has no NaN or infinity: name them instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
