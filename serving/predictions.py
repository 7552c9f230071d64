"""Predictions for users: their online features scored by the model version serving at that moment."""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool

from income.data.schema import HIGH_INCOME, LOW_INCOME
from income.inference.scoreable import scoreable
from serving.errors import ServiceUnavailable, UnknownUsers
from serving.online_features import OnlineFeatures
from serving.schemas import Prediction
from serving.served_model import ServedModel

INLINE_ROWS = 64  # larger batches are scored on a worker thread, off the event loop


async def predict(user_ids: list[int], features: OnlineFeatures, served: ServedModel) -> list[Prediction]:
    """One prediction per user, in their order; UnknownUsers naming every user that is not scoreable.

    Scoreable (income.inference.scoreable, the rule batch scoring applies): every view of the
    feature service has a row for the user online, i.e. an event timestamp in Feast's response.
    """
    model = served.loaded  # one version for the whole request, whatever reloads meanwhile
    if model is None:
        raise ServiceUnavailable(f"no model loaded: {served.error or 'still starting'}")
    rows = await features.read(user_ids)
    stamps = rows.timestamps
    present = {view: [s is not None for s in view_stamps] for view, view_stamps in stamps.items()}
    unknown = [u for u, ok in zip(user_ids, scoreable(present), strict=True) if not ok]
    if unknown:
        raise UnknownUsers(unknown)
    threshold = model.scorer.model.threshold  # chosen at training, stored with the model
    if len(user_ids) <= INLINE_ROWS:
        scores = model.scorer.predict(rows.columns)
    else:
        scores = await run_in_threadpool(model.scorer.predict, rows.columns)
    return [
        Prediction(
            user_id=u,
            probability=float(p),
            label=HIGH_INCOME if p >= threshold else LOW_INCOME,
            threshold=threshold,
            model_name=model.name,
            model_version=model.version,
            feature_timestamps={view: s[i] for view, s in stamps.items()},
        )
        for i, (u, p) in enumerate(zip(user_ids, scores, strict=True))
    ]
