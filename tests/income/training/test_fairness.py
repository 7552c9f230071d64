"""Fairness slices and gaps: computed as defined, small groups shown but not compared."""

from __future__ import annotations

import numpy as np
import pandas as pd

from income.training.fairness import MIN_GROUP, gaps, slices, worst_equalized_odds


def test_slices_and_gaps_by_hand():
    groups = pd.DataFrame({"sex": ["F"] * 100 + ["M"] * 100 + ["X"] * 5, "race": ["A"] * 205})
    labels = np.array([1, 0] * 50 + [1, 0] * 50 + [1] * 5)
    # F: every positive found, no false positive; M: half the positives found, 20% false positives.
    scores = np.concatenate(
        [
            np.where(labels[:100] == 1, 0.9, 0.1),
            np.where(
                labels[100:200] == 1,
                np.tile([0.9, 0.1, 0.1, 0.1], 25),
                np.tile([0.9, 0.1, 0.1, 0.1, 0.1], 20),
            ),
            np.full(5, 0.9),
        ]
    )
    sliced = slices(groups, labels, scores, threshold=0.5).set_index(["attribute", "group"])
    assert sliced.loc[("sex", "F"), ["tpr", "fpr", "positive_rate"]].tolist() == [1.0, 0.0, 0.5]
    male = sliced.loc[("sex", "M")]
    assert (male.tpr, male.rows) == (0.5, 100)
    assert sliced.loc[("sex", "X"), "rows"] == 5 < MIN_GROUP  # shown, not compared
    found = gaps(sliced.reset_index())
    assert found["sex_equalized_odds_gap"] == max(1.0 - 0.5, abs(0.0 - male.fpr))
    assert found["sex_parity_gap"] == abs(0.5 - male.positive_rate)
    assert "race_parity_gap" not in found  # one race: nothing to compare
    assert worst_equalized_odds(found) == ("sex", 0.5)
    assert worst_equalized_odds({}) == ("", 0.0)
