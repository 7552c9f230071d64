"""Outcomes joined to logged predictions, and live metrics per model version and variant.

A prediction's outcome is the label of the census record its features described: the
user's latest label with an event time at or before the prediction's time. Labels arrive
weeks after their records (labels-only batches), so a prediction has no outcome at first
and gains one when its label is published; metrics count only predictions with one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

from income.data.schema import ENTITY_KEY, LABEL, TIMESTAMP

OUTCOME = "outcome"
GROUP = ["model_version", "variant"]


def join_outcomes(log: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The log with an `outcome` column (1: > 50K, 0: not, NaN: no label yet), in the log's order."""
    if log.empty:
        return log.assign(**{OUTCOME: pd.Series(dtype="float64")})
    left = log.assign(_row=np.arange(len(log)), _t=log["time"].astype("datetime64[us, UTC]"))
    left = left.sort_values("_t", kind="stable")
    right = labels[[ENTITY_KEY, TIMESTAMP, LABEL]].rename(columns={TIMESTAMP: "_t", LABEL: OUTCOME})
    right = right.assign(
        _t=right["_t"].astype("datetime64[us, UTC]"), **{OUTCOME: right[OUTCOME].astype("float64")}
    )
    joined = pd.merge_asof(
        left, right.sort_values("_t", kind="stable"), on="_t", by=ENTITY_KEY, direction="backward"
    )
    return joined.sort_values("_row").drop(columns=["_row", "_t"]).reset_index(drop=True)


def _metrics(frame: pd.DataFrame) -> dict[str, float]:
    """AUC, accuracy, Brier, predicted and observed positive rates of predictions with outcomes."""
    y, p = frame[OUTCOME].to_numpy(), frame["probability"].to_numpy()
    predicted = (p >= frame["threshold"].to_numpy()).astype(float)
    two_classes = len(np.unique(y)) == 2
    return {
        "predictions": float(len(frame)),
        "roc_auc": float(roc_auc_score(y, p)) if two_classes else float("nan"),
        "accuracy": float(np.mean(predicted == y)) if len(y) else float("nan"),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "positive_rate": float(predicted.mean()) if len(y) else float("nan"),
        "outcome_rate": float(y.mean()) if len(y) else float("nan"),
        "mean_probability": float(p.mean()) if len(y) else float("nan"),
    }


def period_for(joined: pd.DataFrame) -> str:
    """Hours for a log spanning less than three days (a fresh experiment), else days."""
    if joined.empty:
        return "D"
    return "h" if joined["time"].max() - joined["time"].min() < pd.Timedelta(days=3) else "D"


def live_metrics(joined: pd.DataFrame, freq: str = "D") -> pd.DataFrame:
    """Per model version, variant and period (`freq`, pandas offset alias): the metrics of the
    predictions with outcomes, and how many predictions are still waiting for theirs."""
    rows = []
    period = joined["time"].dt.tz_convert("UTC").dt.floor(freq)
    for (version, variant, start), frame in joined.groupby([*(joined[g] for g in GROUP), period], sort=True):
        known = frame[frame[OUTCOME].notna()]
        rows.append(
            {
                "model_version": version,
                "variant": variant,
                "period": start,
                "waiting": int(frame[OUTCOME].isna().sum()),
                **_metrics(known),
            }
        )
    return pd.DataFrame(rows)


def overall_metrics(joined: pd.DataFrame) -> pd.DataFrame:
    """The same metrics over all time, per model version and variant."""
    known = joined[joined[OUTCOME].notna()]
    rows = [
        {"model_version": v, "variant": a, **_metrics(f)} for (v, a), f in known.groupby(GROUP, sort=True)
    ]
    return pd.DataFrame(rows)
