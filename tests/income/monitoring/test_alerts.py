"""Monitoring alerts: a shifted live window raises them, one like the reference does not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from income.monitoring.alerts import AlertConfig, check, recent

RNG = np.random.default_rng(0)
REFERENCE = pd.DataFrame({"age": RNG.normal(40, 10, 5000), "sex": RNG.choice(["F", "M"], 5000)})
REFERENCE_SCORES = RNG.beta(2, 5, 5000)


def _live(n: int, age_mean: float = 40, score_a: float = 2, latency: float = 3.0, null_share: float = 0.0):
    sex = np.where(RNG.random(n) < null_share, None, RNG.choice(["F", "M"], n))
    return pd.DataFrame(
        {
            "age": RNG.normal(age_mean, 10, n),
            "sex": sex,
            "probability": RNG.beta(score_a, 5, n),
            "latency_ms": RNG.exponential(latency, n),
        }
    )


def _checks(live: pd.DataFrame, cfg: AlertConfig = AlertConfig()) -> set[tuple[str, str]]:
    return {
        (a.check, a.subject) for a in check(live, REFERENCE, REFERENCE_SCORES, ["age"], ["age", "sex"], cfg)
    }


def test_a_window_like_the_reference_raises_nothing():
    assert _checks(_live(2000)) == set()


def test_each_kind_of_change_raises_its_alert():
    assert _checks(_live(2000, score_a=4)) == {("predictions_ks", "probability")}
    assert _checks(_live(2000, age_mean=48)) == {("mean_shift", "age")}
    assert _checks(_live(2000, null_share=0.2)) == {("null_rate", "sex")}
    assert _checks(_live(2000, latency=30)) == {("latency_p99", "latency_ms")}


def test_too_few_predictions_or_no_reference_scores_check_less():
    assert _checks(_live(50, age_mean=80)) == set()  # below min_predictions
    live = _live(2000, score_a=4, latency=30)
    alerts = check(live, pd.DataFrame(), None, ["age"], ["age", "sex"], AlertConfig())
    assert {a.check for a in alerts} == {"latency_p99"}


def test_the_window_is_the_last_hours_of_served_predictions():
    t = pd.Timestamp("2026-06-01T12:00", tz="UTC")
    log = pd.DataFrame(
        {
            "time": [t - pd.Timedelta(hours=30), t - pd.Timedelta(hours=2), t, t],
            "served": [True, True, True, False],
        }
    )
    assert recent(log, 24).index.tolist() == [1, 2]
