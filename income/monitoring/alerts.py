"""Checks of recent live predictions against the champion's training reference, as alerts.

Over the served predictions of the last `window_hours` (at least `min_predictions` of them):

- predictions: a two-sample KS test of the probabilities against the champion's scores on
  its own training set (alert when the statistic exceeds `ks_statistic` at p < `ks_p_value`);
- features: the mean of each numeric feature moved by more than `mean_shift_sd` reference
  standard deviations; the share of nulls in any feature above `null_rate`;
- latency: the p99 of the logged request latency above `latency_p99_ms`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass
class AlertConfig:
    window_hours: float = 24.0
    min_predictions: int = 100
    ks_statistic: float = 0.1
    ks_p_value: float = 0.01
    mean_shift_sd: float = 0.5
    null_rate: float = 0.05
    latency_p99_ms: float = 50.0


@dataclass(frozen=True)
class Alert:
    check: str  # predictions_ks | mean_shift | null_rate | latency_p99
    subject: str  # the feature, or "probability" / "latency_ms"
    value: float
    threshold: float
    message: str


def recent(log: pd.DataFrame, window_hours: float, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """The served predictions of the last `window_hours` before `now` (default: the latest entry)."""
    served = log[log["served"].astype(bool)] if len(log) else log
    if served.empty:
        return served
    end = now if now is not None else served["time"].max()
    return served[served["time"] > end - pd.Timedelta(hours=window_hours)]


def check(
    live: pd.DataFrame,
    reference: pd.DataFrame,
    reference_scores: np.ndarray | None,
    numeric: list[str],
    features: list[str],
    cfg: AlertConfig,
) -> list[Alert]:
    """Every alert the live window raises against the reference (none below `min_predictions`).

    Without reference scores (a model registered without its training set) the prediction
    and mean-shift checks are skipped.
    """
    if len(live) < cfg.min_predictions:
        return []
    alerts = []
    ks = None
    if reference_scores is not None:
        ks = stats.ks_2samp(live["probability"].to_numpy(), np.asarray(reference_scores))
    if ks is not None and ks.statistic > cfg.ks_statistic and ks.pvalue < cfg.ks_p_value:
        alerts.append(
            Alert(
                "predictions_ks",
                "probability",
                float(ks.statistic),
                cfg.ks_statistic,
                f"predicted probabilities moved: KS {ks.statistic:.3f} (p = {ks.pvalue:.2g})",
            )
        )
    for feature in (f for f in numeric if f in live.columns and f in reference.columns):
        spread = float(reference[feature].std())
        if not spread:
            continue
        shift = abs(float(pd.to_numeric(live[feature]).mean()) - float(reference[feature].mean())) / spread
        if shift > cfg.mean_shift_sd:
            alerts.append(
                Alert("mean_shift", feature, shift, cfg.mean_shift_sd, f"{feature} mean moved {shift:.2f} sd")
            )
    for feature in (f for f in features if f in live.columns):
        nulls = float(live[feature].isna().mean())
        if nulls > cfg.null_rate:
            alerts.append(Alert("null_rate", feature, nulls, cfg.null_rate, f"{feature} null in {nulls:.1%}"))
    p99 = float(np.percentile(live["latency_ms"], 99))
    if p99 > cfg.latency_p99_ms:
        alerts.append(
            Alert("latency_p99", "latency_ms", p99, cfg.latency_p99_ms, f"latency p99 {p99:.1f} ms")
        )
    return alerts
