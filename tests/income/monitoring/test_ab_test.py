"""The live experiment: its planned size has the power it claims, and no decision comes early."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from income.monitoring.ab_test import COLLECTING, KEEP, PROMOTE, ExperimentPlan, _two_proportion_p, analyse
from income.monitoring.outcomes import OUTCOME, join_outcomes, live_metrics

PLAN = ExperimentPlan(alpha=0.05, power=0.8, minimal_effect=0.05, baseline_accuracy=0.75)


def test_the_planned_size_has_the_stated_power_and_false_alarm_rate():
    n, rng = PLAN.users_per_arm(), np.random.default_rng(1)
    assert 1_000 < n < 1_300  # 0.75 -> 0.80 at alpha 0.05, power 0.8: about 1,090 per arm

    def rejections(p_challenger: float, runs: int = 600) -> float:
        champion = rng.binomial(n, PLAN.baseline_accuracy, runs)
        challenger = rng.binomial(n, p_challenger, runs)
        return np.mean(
            [_two_proportion_p(a, b, n) < PLAN.alpha for a, b in zip(champion, challenger, strict=True)]
        )

    assert abs(rejections(PLAN.baseline_accuracy + PLAN.minimal_effect) - PLAN.power) < 0.06
    assert rejections(PLAN.baseline_accuracy) < PLAN.alpha + 0.03


def _log(users: int, accuracy: dict[str, float], mode: str, seed: int = 0) -> pd.DataFrame:
    """A joined log: each user served once (arm by user in A/B; both models per request in shadow),
    each model right with its given accuracy, mostly on the same users; threshold 0.5."""
    rng = np.random.default_rng(seed)
    outcome = rng.integers(0, 2, users).astype(float)
    rows = []
    times = pd.Timestamp("2026-06-01", tz="UTC") + pd.to_timedelta(np.arange(users), unit="min")
    shared = rng.random(users)  # two models mostly agree on who is easy: correlated correctness
    draws = {"champion": shared, "challenger": np.where(rng.random(users) < 0.8, shared, rng.random(users))}
    for variant, version in (("champion", "1"), ("challenger", "2")):
        right = draws[variant] < accuracy[variant]
        probability = np.where(right == (outcome == 1), 0.5 + rng.random(users) / 2, rng.random(users) / 2)
        shown = "shadow" if (mode == "shadow" and variant == "challenger") else variant
        rows.append(
            pd.DataFrame(
                {
                    "request_id": [f"r{i}" for i in range(users)],
                    "time": times,
                    "user_id": np.arange(users),
                    "model_version": version,
                    "variant": shown,
                    "probability": probability,
                    "threshold": 0.5,
                    OUTCOME: outcome,
                }
            )
        )
    both = pd.concat(rows, ignore_index=True)
    if mode == "ab":  # each user sees one arm
        arm = np.where(rng.random(users) < 0.5, "champion", "challenger")
        both = both[both["variant"].to_numpy() == np.tile(arm, 2)]
    return both.reset_index(drop=True)


@pytest.mark.parametrize("mode", ["ab", "shadow"])
def test_no_decision_before_the_planned_size(mode):
    n = PLAN.users_per_arm()
    log = _log(int(n * 0.9), {"champion": 0.75, "challenger": 0.95}, mode)  # a huge gain, too few users
    result = analyse(log, mode, "1", "2", PLAN)
    assert result.decision == COLLECTING and "no decision before the planned size" in result.reason
    assert result.planned_users_per_arm == n and np.isnan(result.p_value)


@pytest.mark.parametrize("mode", ["ab", "shadow"])
def test_a_better_challenger_is_promoted_and_an_equal_one_is_not(mode):
    """One draw each (false alarms at rate alpha are the power test's business, above)."""
    users = 3 * PLAN.users_per_arm()
    better = analyse(_log(users, {"champion": 0.75, "challenger": 0.82}, mode), mode, "1", "2", PLAN)
    assert better.decision == PROMOTE and better.p_value < PLAN.alpha, better.reason
    assert better.challenger_accuracy > better.champion_accuracy
    assert min(better.champion_users, better.challenger_users) >= better.planned_users_per_arm
    low, high = better.auc_difference_ci
    assert low < high and high > 0
    equal = analyse(_log(users, {"champion": 0.78, "challenger": 0.78}, mode, seed=5), mode, "1", "2", PLAN)
    assert equal.decision == KEEP, equal.reason


def test_the_decision_reads_the_first_planned_users_only():
    """Data arriving after the planned size cannot change the answer (no optional stopping)."""
    n = PLAN.users_per_arm()
    log = _log(3 * n, {"champion": 0.75, "challenger": 0.82}, "shadow")
    head = log[log["user_id"] < n]
    at_size, later = analyse(head, "shadow", "1", "2", PLAN), analyse(log, "shadow", "1", "2", PLAN)
    assert (later.champion_users, at_size.champion_users) == (3 * n, n)
    same = ("decision", "reason", "p_value", "champion_accuracy", "challenger_accuracy", "auc_difference_ci")
    assert [getattr(at_size, f) for f in same] == [getattr(later, f) for f in same]


def test_outcomes_are_the_latest_label_at_or_before_the_prediction():
    t = pd.Timestamp("2026-03-01", tz="UTC")
    log = pd.DataFrame(
        {
            "time": [t, t + pd.Timedelta(days=40), t, t],
            "user_id": [1, 1, 2, 3],
            "model_version": "1",
            "variant": "champion",
            "probability": [0.9, 0.2, 0.6, 0.3],
            "threshold": 0.5,
        }
    )
    labels = pd.DataFrame(
        {
            "user_id": [1, 1, 2],
            "event_timestamp": [
                t - pd.Timedelta(days=10),
                t + pd.Timedelta(days=30),
                t + pd.Timedelta(days=1),
            ],
            "label": [1, 0, 1],
        }
    )
    joined = join_outcomes(log, labels)
    assert joined[OUTCOME].tolist()[:2] == [1.0, 0.0]
    assert joined[OUTCOME].iloc[2:].isna().all()  # user 2's label is for a later record; user 3 has none
    daily = live_metrics(joined)
    assert daily["predictions"].sum() == 2 and daily["waiting"].sum() == 2
