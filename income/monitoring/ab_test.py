"""Is the challenger better on live traffic? An experiment planned before it is read.

The unit is the user (a user asks many times; their answers are not independent): each
user's first prediction with an outcome, per arm. The metric is accuracy, the share of
correct decisions at each model's own threshold, a proportion; the ROC AUC difference gets
a bootstrap interval beside it.

- Plan: the users per arm needed to detect an accuracy gain of `minimal_effect` over the
  champion's `baseline_accuracy` with a two-sided test at `alpha` and `power`
  (`users_per_arm`, the normal approximation for two proportions).
- No peeking: until both arms have that many users with outcomes the answer is
  `collecting`, whatever the data say; then the test reads exactly the first planned users
  of each arm (in the order they were first served), so looking early changes nothing.
- A/B (sticky split, two groups of users): a two-proportion z-test, on the champion's
  answers from the challenger's first answer on (earlier ones predate the split).
  Shadow (both models on the same users): McNemar's exact test on the users where one
  model is right and the other wrong.
- Decision: `promote` when the challenger is better at p < alpha; otherwise `keep champion`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score

from income.data.schema import ENTITY_KEY
from income.monitoring.outcomes import OUTCOME
from income.platform.files import read_text, write_text_atomically

COLLECTING, PROMOTE, KEEP = "collecting", "promote", "keep champion"
ANALYSIS_FILE = "monitoring/experiment.json"  # under the offline store root: the latest analysis
BOOTSTRAP = 500


@dataclass(frozen=True)
class ExperimentPlan:
    alpha: float = 0.05
    power: float = 0.8
    minimal_effect: float = 0.03  # the accuracy gain worth detecting (absolute)
    baseline_accuracy: float = 0.80  # the champion's expected accuracy

    def users_per_arm(self) -> int:
        p1 = self.baseline_accuracy
        p2 = min(p1 + self.minimal_effect, 0.999)
        mean = (p1 + p2) / 2
        z_alpha, z_power = stats.norm.ppf(1 - self.alpha / 2), stats.norm.ppf(self.power)
        spread = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_power * math.sqrt(
            p1 * (1 - p1) + p2 * (1 - p2)
        )
        return math.ceil((spread / (p2 - p1)) ** 2)


@dataclass(frozen=True)
class ABAnalysis:
    mode: str  # ab | shadow
    champion_version: str
    challenger_version: str
    planned_users_per_arm: int
    champion_users: int  # users with outcomes so far
    challenger_users: int
    decision: str  # collecting | promote | keep champion
    reason: str
    test: str = ""
    p_value: float = float("nan")
    champion_accuracy: float = float("nan")
    challenger_accuracy: float = float("nan")
    champion_roc_auc: float = float("nan")
    challenger_roc_auc: float = float("nan")
    auc_difference_ci: tuple[float, float] = (float("nan"), float("nan"))  # challenger - champion, 95%
    alpha: float = 0.05
    minimal_effect: float = 0.03

    def to_dict(self) -> dict:
        return asdict(self)


def _first_per_user(frame: pd.DataFrame) -> pd.DataFrame:
    """Each user's first prediction with an outcome, in the order users were first served."""
    known = frame[frame[OUTCOME].notna()].sort_values("time", kind="stable")
    known = known.drop_duplicates(ENTITY_KEY, keep="first").reset_index(drop=True)
    return known.assign(correct=((known["probability"] >= known["threshold"]) == (known[OUTCOME] == 1)))


def _auc_ci(pairs: list[tuple[np.ndarray, np.ndarray]], paired: bool, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of AUC(challenger) - AUC(champion); `pairs`: (outcomes, scores) per arm."""
    rng = np.random.default_rng(seed)
    (y1, s1), (y2, s2) = pairs
    differences = []
    for _ in range(BOOTSTRAP):
        i1 = rng.integers(0, len(y1), len(y1))
        i2 = i1 if paired else rng.integers(0, len(y2), len(y2))
        if len(np.unique(y1[i1])) < 2 or len(np.unique(y2[i2])) < 2:
            continue
        differences.append(roc_auc_score(y2[i2], s2[i2]) - roc_auc_score(y1[i1], s1[i1]))
    if not differences:
        return float("nan"), float("nan")
    low, high = np.percentile(differences, [2.5, 97.5])
    return float(low), float(high)


def _auc(frame: pd.DataFrame) -> float:
    y = frame[OUTCOME].to_numpy()
    return float(roc_auc_score(y, frame["probability"])) if len(np.unique(y)) == 2 else float("nan")


def analyse(
    joined: pd.DataFrame, mode: str, champion: str, challenger: str, plan: ExperimentPlan
) -> ABAnalysis:
    """The experiment between two versions, from the prediction log joined to outcomes.

    `mode` "ab": arms are the served `champion` and `challenger` variants; "shadow": the served
    champion and the `shadow` scores of the same requests.
    """
    if mode not in ("ab", "shadow"):
        raise ValueError(f"mode {mode!r}: expected 'ab' or 'shadow'")
    version = joined["model_version"].astype(str)
    first_arm = joined[(version == champion) & (joined["variant"] == "champion")]
    second_variant = "challenger" if mode == "ab" else "shadow"
    second_arm = joined[(version == challenger) & (joined["variant"] == second_variant)]
    if mode == "shadow":  # the same requests in both arms
        second_arm = second_arm[second_arm["request_id"].isin(first_arm["request_id"])]
    elif len(second_arm):  # the A/B experiment starts with the challenger's first answer
        first_arm = first_arm[first_arm["time"] >= second_arm["time"].min()]
    a, b = _first_per_user(first_arm), _first_per_user(second_arm)
    if mode == "shadow":  # the same users, each at the same request
        a = a[a[ENTITY_KEY].isin(b[ENTITY_KEY])]
        b = b.set_index(ENTITY_KEY).loc[a[ENTITY_KEY]].reset_index()
    planned = plan.users_per_arm()
    base = dict(
        mode=mode,
        champion_version=champion,
        challenger_version=challenger,
        planned_users_per_arm=planned,
        champion_users=len(a),
        challenger_users=len(b),
        alpha=plan.alpha,
        minimal_effect=plan.minimal_effect,
    )
    if min(len(a), len(b)) < planned:
        have = min(len(a), len(b))
        reason = f"{have:,} of {planned:,} users with outcomes per arm: no decision before the planned size"
        return ABAnalysis(**base, decision=COLLECTING, reason=reason)
    a, b = a.iloc[:planned], b.iloc[:planned]
    if mode == "ab":
        test = "two-proportion z-test on accuracy"
        p_value = _two_proportion_p(int(a["correct"].sum()), int(b["correct"].sum()), planned)
    else:
        test = "McNemar's exact test on paired correctness"
        only_champion = int((a["correct"].to_numpy() & ~b["correct"].to_numpy()).sum())
        only_challenger = int((~a["correct"].to_numpy() & b["correct"].to_numpy()).sum())
        discordant = only_champion + only_challenger
        p_value = float(stats.binomtest(only_challenger, discordant, 0.5).pvalue) if discordant else 1.0
    accuracy_a, accuracy_b = float(a["correct"].mean()), float(b["correct"].mean())
    ci = _auc_ci(
        [
            (a[OUTCOME].to_numpy(), a["probability"].to_numpy()),
            (b[OUTCOME].to_numpy(), b["probability"].to_numpy()),
        ],
        paired=mode == "shadow",
    )
    better = accuracy_b > accuracy_a and p_value < plan.alpha
    decision = PROMOTE if better else KEEP
    verdict = (
        "better"
        if better
        else ("worse" if accuracy_b < accuracy_a and p_value < plan.alpha else "not shown better")
    )
    reason = (
        f"challenger v{challenger} {verdict}: accuracy {accuracy_b:.4f} vs {accuracy_a:.4f} "
        f"on {planned:,} users per arm, p = {p_value:.4g} ({test}, alpha {plan.alpha})"
    )
    return ABAnalysis(
        **base,
        decision=decision,
        reason=reason,
        test=test,
        p_value=p_value,
        champion_accuracy=accuracy_a,
        challenger_accuracy=accuracy_b,
        champion_roc_auc=_auc(a),
        challenger_roc_auc=_auc(b),
        auc_difference_ci=ci,
    )


def _two_proportion_p(successes_a: int, successes_b: int, n: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test, n trials per arm."""
    pooled = (successes_a + successes_b) / (2 * n)
    if pooled in (0.0, 1.0):
        return 1.0
    z = (successes_b - successes_a) / n / math.sqrt(pooled * (1 - pooled) * 2 / n)
    return float(2 * stats.norm.sf(abs(z)))


def analysis_uri(offline_root: str) -> str:
    return f"{offline_root.rstrip('/')}/{ANALYSIS_FILE}"


def write_analysis(offline_root: str, analysis: ABAnalysis) -> str:
    uri = analysis_uri(offline_root)
    write_text_atomically(uri, json.dumps(analysis.to_dict(), indent=2))
    return uri


def read_analysis(offline_root: str) -> ABAnalysis | None:
    """The latest recorded analysis (what the green button acts on), or None."""
    text = read_text(analysis_uri(offline_root))
    if text is None:
        return None
    fields = json.loads(text)
    fields["auc_difference_ci"] = tuple(fields["auc_difference_ci"])
    return ABAnalysis(**fields)
