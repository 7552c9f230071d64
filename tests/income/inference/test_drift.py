"""PSI and KS on tiny inline samples: exact values, the thresholds, unseen categories, missing values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from income.inference.drift import (
    FeatureDrift,
    categorical_psi,
    compare,
    decile_edges,
    drift_report,
    ks_test,
    numeric_bin_counts,
    numeric_psi,
    psi_status,
)

REFERENCE = list(range(1, 101))  # 1..100: deciles cut at 10.9, 20.8, ..., 90.1


def test_identical_samples_have_zero_psi():
    assert numeric_psi(REFERENCE, REFERENCE) == 0.0
    assert categorical_psi(["a", "b", "b", None], ["a", "b", "b", None]) == 0.0
    assert numeric_psi([1.0, None, 3.0], [3.0, 1.0, None]) == 0.0  # order does not matter


def test_deciles_of_the_reference_make_ten_equal_bins_plus_missing():
    edges = decile_edges(REFERENCE)
    assert edges.tolist() == pytest.approx([10.9, 20.8, 30.7, 40.6, 50.5, 60.4, 70.3, 80.2, 90.1])
    assert numeric_bin_counts(REFERENCE, edges).tolist() == [10.0] * 10 + [0.0]
    assert numeric_bin_counts([None, np.nan, 5, 1000], edges).tolist() == [1.0] + [0.0] * 8 + [1.0, 2.0]


def test_ties_merge_bins():
    edges = decile_edges([0] * 90 + list(range(1, 11)))
    assert edges.tolist() == pytest.approx([0.0, 0.1])  # eight deciles are 0: one bin


def test_psi_of_a_known_shift_by_hand():
    # reference: half "a", half "b"; batch: 90% "a", 10% "b"
    expected = (0.9 - 0.5) * math.log(0.9 / 0.5) + (0.1 - 0.5) * math.log(0.1 / 0.5)
    assert categorical_psi(["a"] * 5 + ["b"] * 5, ["a"] * 9 + ["b"]) == pytest.approx(expected)
    assert expected == pytest.approx(0.8789, abs=1e-4)


def test_a_shifted_distribution_is_flagged_as_drift():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
    shifted = pd.DataFrame({"x": rng.normal(1.0, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
    same = pd.DataFrame({"x": rng.normal(0, 1, 2000), "c": rng.choice(["a", "b"], 2000)})
    moved = {d.feature: d for d in compare(reference, shifted, ["x"], ["c"])}
    assert moved["x"].psi > 0.25 and moved["x"].status == "drift" and moved["x"].drifted
    assert moved["x"].ks_drift and moved["x"].ks_p_value < 1e-10
    assert moved["c"].psi < 0.1 and not moved["c"].drifted
    steady = {d.feature: d for d in compare(reference, same, ["x"], ["c"])}
    assert steady["x"].psi < 0.1 and not steady["x"].drifted and not steady["x"].ks_drift


def test_unseen_categories_count_as_drift_instead_of_failing():
    psi = categorical_psi(["a"] * 10, ["a"] * 5 + ["zzz"] * 5)
    # "zzz" has reference share 0, floored at 1e-4
    expected = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert psi == pytest.approx(expected)
    assert psi_status(psi) == "drift"


def test_missing_values_are_a_bin_of_their_own():
    # numeric: the same values, but half of the batch missing
    edges_psi = numeric_psi([1, 2, 3, 4] * 25, [1, 2, 3, 4] * 5 + [None] * 20)
    assert edges_psi > 0.25
    # categorical: None and NaN are both "missing"
    assert categorical_psi(["a", None, "b", np.nan], ["a", np.nan, "b", None]) == 0.0
    assert categorical_psi(["a", "a"], ["a", None]) > 0.25
    # a numeric feature with nothing to compare: KS skipped, not an error
    assert ks_test([None, None], [1.0, 2.0]) == (None, None)


def test_nullable_integer_columns_are_read_as_numbers():
    reference = pd.Series([1, 2, None, 4], dtype="Int64")
    assert numeric_psi(reference, reference.astype("float64")) == 0.0


def test_thresholds():
    assert [psi_status(p) for p in (0.0, 0.099, 0.1, 0.25, 0.2501)] == [
        "stable",
        "stable",
        "moderate",
        "moderate",
        "drift",
    ]
    # KS needs both: p < 0.01 and statistic > 0.1
    assert not FeatureDrift("x", "numeric", 0.0, ks_statistic=0.05, ks_p_value=1e-9).drifted
    assert not FeatureDrift("x", "numeric", 0.0, ks_statistic=0.5, ks_p_value=0.02).drifted
    assert FeatureDrift("x", "numeric", 0.0, ks_statistic=0.5, ks_p_value=0.001).drifted


def test_report_flags_features_and_predictions_and_embeds_histograms():
    reference = pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50})
    current = pd.DataFrame({"x": np.arange(100.0) + 60, "c": ["a", "b"] * 50})
    result = drift_report(
        reference, current, np.linspace(0, 1, 100), np.linspace(0, 1, 100), ["x"], ["c"], top=1
    )
    assert result.drifted_features == ["x"] and result.drifted
    assert result.prediction.psi == 0.0
    assert [d.feature for d in result.features] == ["x", "c"]  # most drifted first
    assert result.html.count("data:image/png;base64,") == 2  # predictions + the top feature
    assert "<td>x</td>" in result.html and "drift" in result.html
