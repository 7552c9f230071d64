"""Probabilities that mean what they say, and the decision threshold, both chosen on validation rows.

Calibration: no change, Platt scaling (a logistic fit on the score's logit) or isotonic
regression. Each is judged by its Brier score on the validation rows out of fold (5 folds:
fitted on four fifths, scored on the fifth), so the comparison is honest; a method is used
only when it lowers the Brier score by at least MIN_BRIER_GAIN, and is then fitted on all
validation rows. The threshold is chosen on the calibrated validation scores (out of fold)
by a stated criterion: maximum accuracy (a false positive costs what a false negative
costs), maximum F1, or the lowest threshold reaching a precision (`precision>=0.8`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold

METHODS = ("none", "platt", "isotonic")
MIN_BRIER_GAIN = 0.0002
CRITERIA = ("accuracy", "f1", "precision>=P")
_EPS = 1e-6


class PlattCalibrator:
    """sigmoid(a * logit(score) + b)."""

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> PlattCalibrator:
        model = LogisticRegression(C=1e6).fit(_logit(scores).reshape(-1, 1), labels)
        self.a, self.b = float(model.coef_[0, 0]), float(model.intercept_[0])
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * _logit(scores) + self.b)))


class IsotonicCalibrator:
    """A non-decreasing step function of the score (clipped outside the fitted range)."""

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> IsotonicCalibrator:
        self.model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        return self.model.predict(np.asarray(scores, dtype=float))


def _logit(scores: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(scores, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _make(method: str):
    return {"platt": PlattCalibrator, "isotonic": IsotonicCalibrator}[method]()


@dataclass
class Calibration:
    method: str  # one of METHODS
    calibrator: object | None  # fitted on every validation row; None for "none"
    brier: dict[str, float]  # out-of-fold Brier score on the validation rows, per method
    out_of_fold: np.ndarray  # the validation scores as the chosen method maps them, out of fold


def _out_of_fold(method: str, scores: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    if method == "none":
        return scores
    mapped = np.empty_like(scores, dtype=float)
    for fit_rows, score_rows in StratifiedKFold(5, shuffle=True, random_state=seed).split(scores, labels):
        mapped[score_rows] = (
            _make(method).fit(scores[fit_rows], labels[fit_rows]).transform(scores[score_rows])
        )
    return mapped


def choose_calibration(scores: np.ndarray, labels: np.ndarray, seed: int = 0) -> Calibration:
    """The method with the lowest out-of-fold Brier score, if it beats no calibration by MIN_BRIER_GAIN."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    mapped = {m: _out_of_fold(m, scores, labels, seed) for m in METHODS}
    brier = {m: float(brier_score_loss(labels, s)) for m, s in mapped.items()}
    best = min(METHODS, key=lambda m: brier[m])
    if brier["none"] - brier[best] < MIN_BRIER_GAIN:
        best = "none"
    calibrator = None if best == "none" else _make(best).fit(scores, labels)
    return Calibration(best, calibrator, brier, mapped[best])


def choose_threshold(labels: np.ndarray, scores: np.ndarray, criterion: str = "accuracy") -> float:
    """The threshold t (predict >50K when score >= t) that is best on these rows by `criterion`."""
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], labels[order]
    # Cut after each distinct score: predicting the top k rows positive, k = 1..n.
    last_of_value = np.r_[ranked[1:] != ranked[:-1], True]
    k = np.flatnonzero(last_of_value) + 1
    tp = np.cumsum(hits)[k - 1]
    positives, n = hits.sum(), len(hits)
    fp = k - tp
    if criterion == "accuracy":
        value = (tp + (n - positives - fp)) / n
    elif criterion == "f1":
        value = 2 * tp / (k + positives)
    elif criterion.startswith("precision>="):
        target = float(criterion.removeprefix("precision>="))
        reaching = np.flatnonzero(tp / k >= target)
        if not len(reaching):
            raise ValueError(f"no threshold reaches {criterion} on these rows")
        return float(ranked[k[reaching.max()] - 1])  # the most positives at that precision
    else:
        raise ValueError(f"unknown threshold criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    return float(ranked[k[int(np.argmax(value))] - 1])
