"""Fairness slices: how a model's decisions differ across `sex` and `race` groups.

Per group: size, positive rate (share predicted > 50K), true and false positive rates,
accuracy and ROC AUC, the way fairlearn's MetricFrame slices them. Per attribute, two gaps
over the groups with at least MIN_GROUP rows (smaller ones are shown, not compared):

- parity gap: the largest difference in positive rate (demographic parity difference);
- equalized-odds gap: the larger of the largest TPR difference and the largest FPR difference.

Every registered model has them on its test rows (income.training.final); live metrics slice
the logged predictions the same way. TrainingConfig.max_fairness_gap, when set, refuses
promotion to a model whose equalized-odds gap exceeds it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

PROTECTED = ("sex", "race")
MIN_GROUP = 30


def _rates(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = scores >= threshold
    positives, negatives = labels == 1, labels == 0
    return {
        "rows": float(len(labels)),
        "positive_rate": float(predicted.mean()),
        "tpr": float(predicted[positives].mean()) if positives.any() else float("nan"),
        "fpr": float(predicted[negatives].mean()) if negatives.any() else float("nan"),
        "accuracy": float((predicted == positives).mean()),
        "roc_auc": float(roc_auc_score(labels, scores))
        if positives.any() and negatives.any()
        else float("nan"),
    }


def slices(
    groups: pd.DataFrame, labels: np.ndarray, scores: np.ndarray, threshold: float, attributes=PROTECTED
) -> pd.DataFrame:
    """One row per (attribute, group): the rates above; `groups` holds the attribute columns."""
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    rows = []
    for attribute in attributes:
        values = groups[attribute].fillna("(missing)").astype(str).to_numpy()
        for group in sorted(set(values)):
            mask = values == group
            rows.append(
                {"attribute": attribute, "group": group, **_rates(labels[mask], scores[mask], threshold)}
            )
    return pd.DataFrame(rows)


def gaps(sliced: pd.DataFrame) -> dict[str, float]:
    """Per attribute, the parity and equalized-odds gaps over groups of MIN_GROUP rows or more
    (attributes with fewer than two such groups have none)."""
    found = {}
    for attribute, frame in sliced[sliced["rows"] >= MIN_GROUP].groupby("attribute", sort=True):
        if len(frame) < 2:  # one group large enough: nothing to compare
            continue
        spread = frame[["positive_rate", "tpr", "fpr"]].max() - frame[["positive_rate", "tpr", "fpr"]].min()
        found[f"{attribute}_parity_gap"] = float(spread["positive_rate"])
        found[f"{attribute}_equalized_odds_gap"] = float(np.nanmax([spread["tpr"], spread["fpr"]]))
    return found


def worst_equalized_odds(found: dict[str, float]) -> tuple[str, float]:
    """The attribute with the largest equalized-odds gap, and the gap ("", 0.0 when none)."""
    odds = {
        k.removesuffix("_equalized_odds_gap"): v
        for k, v in found.items()
        if k.endswith("_equalized_odds_gap")
    }
    if not odds:
        return "", 0.0
    attribute = max(odds, key=odds.get)
    return attribute, odds[attribute]
