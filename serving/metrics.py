"""GET /metrics: the service's Prometheus metrics, one registry per app.

| metric | labels | what |
| --- | --- | --- |
| income_http_requests_total | method, route, status | requests answered |
| income_http_request_duration_seconds | method, route | time from the request to its answer |
| income_predictions_total | model_version, variant | predictions made (shadow ones included) |
| income_prediction_probability | variant | the predicted probabilities |
| income_feature_age_seconds | view | age of the feature values used (now - their event time) |
| income_valkey_errors_total | operation | Valkey failures: `read` (features), `log` (prediction log) |

`route` is the route's path template (`/predict`), or `unmatched` for paths the app does not
serve, so that label values stay few whatever clients send.

With several worker processes (INCOME_SERVE_WORKERS, serving.__main__), a scrape reaches
one worker but must count them all: prometheus-client's multiprocess mode. `python -m
serving` then makes a new empty directory, names it in prometheus-client's variables before
the workers start (each worker's values live in files there) and in WORKERS_DIR, and
/metrics adds up the files (MultiProcessCollector). Only counters and histograms are used:
they add up across workers without a per-metric mode.

WORKERS_DIR, not prometheus-client's own variable, says whether to add up: importing Feast
sets that one in every process (feast.metrics makes itself a directory), whatever the
number of workers.
"""

from __future__ import annotations

import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

WORKERS_DIR = "INCOME_SERVE_METRICS_DIR"  # set by `python -m serving` for several workers
# prometheus-client's variables: where values go (older name, which Feast reads) and are collected from
MULTIPROC_DIRS = ("PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PROBABILITY_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
DAY = 86_400.0
AGE_BUCKETS = (DAY, 7 * DAY, 30 * DAY, 90 * DAY, 180 * DAY, 365 * DAY, 730 * DAY)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "income_http_requests", "Requests answered.", ["method", "route", "status"], registry=r
        )
        self.duration = Histogram(
            "income_http_request_duration_seconds",
            "Time from a request to its answer.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "income_predictions", "Predictions made.", ["model_version", "variant"], registry=r
        )
        self.probability = Histogram(
            "income_prediction_probability",
            "Predicted P(income > 50K).",
            ["variant"],
            buckets=PROBABILITY_BUCKETS,
            registry=r,
        )
        self.feature_age = Histogram(
            "income_feature_age_seconds",
            "Age of the feature values used: now minus their event time.",
            ["view"],
            buckets=AGE_BUCKETS,
            registry=r,
        )
        self.valkey_errors = Counter(
            "income_valkey_errors", "Valkey failures by operation.", ["operation"], registry=r
        )

    def exposition(self) -> tuple[bytes, str]:
        """Every worker's values when several share WORKERS_DIR, else this process's."""
        folder = os.environ.get(WORKERS_DIR)
        if not folder:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI: no per-request task or body buffering)."""

    def __init__(self, app, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        scope.setdefault("state", {})["started"] = start  # request.state.started: latency from here
        status = 500  # what the client gets if the app fails before answering

        async def send_and_note_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.duration.labels(method, path).observe(time.perf_counter() - start)
