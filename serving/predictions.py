"""Predictions for users: their online features scored by the model version serving at that moment."""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool

from income.data.schema import HIGH_INCOME, LOW_INCOME
from serving.errors import ServiceUnavailable, UnknownUsers
from serving.online_features import OnlineFeatures
from serving.schemas import Prediction
from serving.served_model import ServedModel

INLINE_ROWS = 64  # larger batches are scored on a worker thread, off the event loop


async def predict(user_ids: list[int], features: OnlineFeatures, served: ServedModel) -> list[Prediction]:
    """One prediction per user, in their order; UnknownUsers when a user has no row in any view."""
    model = served.loaded  # one version for the whole request, whatever reloads meanwhile
    if model is None:
        raise ServiceUnavailable(f"no model loaded: {served.error or 'still starting'}")
    rows = await features.read(user_ids)
    stamps = rows.timestamps
    unknown = [u for i, u in enumerate(user_ids) if all(s[i] is None for s in stamps.values())]
    if unknown:
        raise UnknownUsers(unknown)
    if len(user_ids) <= INLINE_ROWS:
        scores = model.scorer.predict(rows.columns)
    else:
        scores = await run_in_threadpool(model.scorer.predict, rows.columns)
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
