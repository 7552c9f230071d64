"""Predictions for users: their online features scored by the model(s) serving at that moment.

One request: read the users' features once; refuse the users that are not scoreable;
route each user to the champion or the challenger (serving.traffic); score; log every
score, shadow ones included, and only then answer (serving.prediction_log); count it all
(serving.metrics).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from fastapi.concurrency import run_in_threadpool

from income.data.schema import HIGH_INCOME, LOW_INCOME
from income.inference.scoreable import scoreable
from serving.errors import ServiceUnavailable, UnknownUsers
from serving.online_features import FeatureRows
from serving.schemas import Prediction
from serving.served_model import LoadedModel
from serving.service import Service
from serving.traffic import CHALLENGER_VARIANT, CHAMPION_VARIANT, SHADOW_VARIANT, route

INLINE_ROWS = 64  # larger batches are scored on a worker thread, off the event loop


async def _scores(model: LoadedModel, columns: dict[str, list], rows: list[int]) -> list[float]:
    """The model's probabilities for the users at positions `rows` of `columns`."""
    if len(rows) == len(next(iter(columns.values()))):
        subset = columns
    else:
        subset = {name: [values[i] for i in rows] for name, values in columns.items()}
    if len(rows) <= INLINE_ROWS:
        return [float(p) for p in model.scorer.predict(subset)]
    return [float(p) for p in await run_in_threadpool(model.scorer.predict, subset)]


async def _read(service: Service, user_ids: list[int], feature_service: str) -> FeatureRows:
    try:
        return await service.features.read(user_ids, feature_service)
    except ServiceUnavailable:
        service.metrics.valkey_errors.labels("read").inc()
        raise


def _refuse_unscoreable(user_ids: list[int], rows: FeatureRows) -> None:
    """UnknownUsers naming every user some view of the service has no row for (scoreable rule)."""
    present = {view: [s is not None for s in stamps] for view, stamps in rows.timestamps.items()}
    unknown = [u for u, ok in zip(user_ids, scoreable(present), strict=True) if not ok]
    if unknown:
        raise UnknownUsers(unknown)


@dataclass(frozen=True)
class Score:
    """One model's score for the user at `index` of the request; `served`: returned (not shadow)."""

    index: int
    model: LoadedModel
    variant: str
    probability: float
    served: bool

    @property
    def label(self) -> str:
        # The threshold was chosen at training and is stored with the model version.
        return HIGH_INCOME if self.probability >= self.model.scorer.model.threshold else LOW_INCOME


async def _score_routed(
    service: Service, user_ids: list[int], rows: dict[str, FeatureRows], champion: LoadedModel
) -> list[Score]:
    """Every score of the request: the served one per user (champion or challenger), then shadows.

    `rows`: the users' features per feature service; read here for a challenger whose service
    is not the champion's (a v2 challenger beside a v1 champion).
    """
    challenger = service.challenger_model()
    settings = service.settings
    version = challenger.version if challenger else None
    plan = route(user_ids, settings.challenger_mode, settings.ab_share, version)
    needed = challenger is not None and (plan.shadow or CHALLENGER_VARIANT in plan.variants)
    if needed and challenger.feature_service not in rows:
        rows[challenger.feature_service] = await _read(service, user_ids, challenger.feature_service)
    served: list[Score | None] = [None] * len(user_ids)
    for variant, model in ((CHAMPION_VARIANT, champion), (CHALLENGER_VARIANT, challenger)):
        positions = [i for i, v in enumerate(plan.variants) if v == variant]
        if positions:
            columns = rows[model.feature_service].columns
            for i, p in zip(positions, await _scores(model, columns, positions), strict=True):
                served[i] = Score(i, model, variant, p, served=True)
    shadows = []
    if plan.shadow:
        everyone = list(range(len(user_ids)))
        probabilities = await _scores(challenger, rows[challenger.feature_service].columns, everyone)
        shadows = [Score(i, challenger, SHADOW_VARIANT, p, served=False) for i, p in enumerate(probabilities)]
    return [*served, *shadows]


def _log_entry(request_id: str, now: float, user_id: int, score: Score, rows: FeatureRows, latency_ms: float):
    i = score.index
    return {
        "request_id": request_id,
        "time": now,
        "user_id": user_id,
        "model_name": score.model.name,
        "model_version": score.model.version,
        "variant": score.variant,
        "served": score.served,
        "feature_service": score.model.feature_service,
        "probability": score.probability,
        "label": score.label,
        "threshold": score.model.scorer.model.threshold,
        "latency_ms": latency_ms,
        "features": {name: values[i] for name, values in rows.columns.items()},
        "feature_times": {
            view: stamps[i].timestamp() for view, stamps in rows.timestamps.items() if stamps[i] is not None
        },
    }


def _count(service: Service, scores: list[Score], rows: FeatureRows, now: float) -> None:
    metrics = service.metrics
    for score in scores:
        metrics.predictions.labels(score.model.version, score.variant).inc()
        metrics.probability.labels(score.variant).observe(score.probability)
    for view, stamps in rows.timestamps.items():
        age = metrics.feature_age.labels(view)
        for stamp in stamps:
            age.observe(now - stamp.timestamp())


async def predict(user_ids: list[int], service: Service, started: float) -> tuple[str, list[Prediction]]:
    """(request id, one prediction per user in their order); `started`: the request's perf_counter().

    Every score, shadow ones included, is in the prediction log before this returns.
    """
    champion = service.champion.loaded  # one version per seat for the whole request
    if champion is None:
        raise ServiceUnavailable(f"no model loaded: {service.champion.error or 'still starting'}")
    rows = await _read(service, user_ids, champion.feature_service)
    _refuse_unscoreable(user_ids, rows)  # by the champion's service: the views of every service agree
    by_service = {champion.feature_service: rows}
    scores = await _score_routed(service, user_ids, by_service, champion)
    latency_ms = (time.perf_counter() - started) * 1000
    request_id, now = uuid.uuid4().hex, time.time()
    if service.log is not None:
        entries = [
            _log_entry(request_id, now, user_ids[s.index], s, by_service[s.model.feature_service], latency_ms)
            for s in scores
        ]
        try:
            await service.log.append(entries)
        except ServiceUnavailable:
            service.metrics.valkey_errors.labels("log").inc()
            raise
    _count(service, scores, rows, now)
    answers = [
        Prediction(
            user_id=user_ids[s.index],
            probability=s.probability,
            label=s.label,
            threshold=s.model.scorer.model.threshold,
            model_name=s.model.name,
            model_version=s.model.version,
            feature_service=s.model.feature_service,
            variant=s.variant,
            feature_timestamps={view: stamps[s.index] for view, stamps in rows.timestamps.items()},
        )
        for s in scores
        if s.served
    ]
    return request_id, answers
