"""Calibration is chosen by out-of-fold Brier score; thresholds by their criterion, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from income.training.calibration import PlattCalibrator, choose_calibration, choose_threshold


def _scores(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated scores: each label drawn with the score's probability."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 3, n)
    return p, (rng.random(n) < p).astype(int)


def test_calibrated_scores_are_left_alone():
    p, y = _scores()

    chosen = choose_calibration(p, y)

    assert chosen.method == "none" and chosen.calibrator is None
    assert np.array_equal(chosen.out_of_fold, p)


def test_overconfident_scores_are_calibrated_and_the_brier_score_falls():
    p, y = _scores()
    overconfident = 1 / (1 + np.exp(-3 * np.log(p / (1 - p))))  # the logit tripled

    chosen = choose_calibration(overconfident, y)

    assert chosen.method in ("platt", "isotonic")
    assert chosen.brier[chosen.method] < chosen.brier["none"] - 0.005
    mapped = chosen.calibrator.transform(overconfident)
    assert abs(mapped.mean() - y.mean()) < 0.01  # probabilities mean what they say again


def test_platt_scaling_undoes_a_tripled_logit():
    p, y = _scores(20000)
    overconfident = 1 / (1 + np.exp(-3 * np.log(p / (1 - p))))

    platt = PlattCalibrator().fit(overconfident, y)

    assert platt.a == pytest.approx(1 / 3, abs=0.03) and platt.b == pytest.approx(0, abs=0.05)


def test_thresholds_by_criterion():
    labels = np.array([1, 1, 0, 1, 0, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.1])
    # Top 2: 6 of 8 right; top 4: 6 of 8 as well; the first best (fewest positives) wins.
    assert choose_threshold(labels, scores, "accuracy") == 0.8
    # F1: top 4 gives 2*3/(4+4) = 0.75; top 7 gives 2*4/(7+4) = 0.727.
    assert choose_threshold(labels, scores, "f1") == 0.6
    # Precision >= 0.75 with the most positives: top 4 (3 of 4).
    assert choose_threshold(labels, scores, "precision>=0.75") == 0.6
    assert choose_threshold(labels, scores, "precision>=1") == 0.8
    with pytest.raises(ValueError, match="unknown threshold criterion"):
        choose_threshold(labels, scores, "recall")


def test_tied_scores_are_cut_between_distinct_values_only():
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.5, 0.5, 0.5, 0.2])

    threshold = choose_threshold(labels, scores, "accuracy")

    assert threshold in (0.5, 0.2)
    assert ((scores >= threshold) == labels).mean() == 0.75
