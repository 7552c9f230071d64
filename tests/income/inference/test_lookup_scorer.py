"""The lookup scorer gives the fitted model's own probabilities, with lookups or without them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from income.data.schema import LABEL, MISSING_CATEGORY
from income.inference.lookup_scorer import LookupScorer
from income.inference.onnx_trees import MAX_ROWS, TOLERANCE
from income.training.model import (
    CATEGORICAL,
    FEATURES,
    NUMERIC,
    FittedModel,
    as_model_input,
    fit,
    make_estimator,
)

ROWS = 400


def _training_set(seed: int = 0) -> pd.DataFrame:
    """Categoricals with frequent, rare (below the encoder's min_frequency) and missing values."""
    rng = np.random.default_rng(seed)
    values = ["common", "usual", "rare", None]
    frame = {
        f: rng.choice(np.array(values, dtype=object), ROWS, p=[0.5, 0.4, 0.02, 0.08]) for f in CATEGORICAL
    }
    for f in NUMERIC:
        numbers = rng.normal(40, 12, ROWS).round(1).astype(object)
        numbers[rng.random(ROWS) < 0.05] = None
        frame[f] = numbers
    frame[LABEL] = rng.integers(0, 2, ROWS)
    return pd.DataFrame(frame)


def _awkward_columns() -> dict[str, list]:
    """Feast-shaped columns: known, rare, unseen, empty and missing categories; odd numbers."""
    categories = ["common", "usual", "rare", "never seen", "", None]
    numbers = [30, None, -1, 10**9, 0.5, float("nan")]
    columns: dict[str, list] = {f: list(categories) for f in CATEGORICAL}
    columns.update({f: list(numbers) for f in NUMERIC})
    return columns


@pytest.mark.parametrize(
    "family, params", [("logistic_regression", {"C": 0.5}), ("xgboost", {"n_estimators": 10})]
)
def test_lookups_give_the_models_exact_probabilities(family, params):
    model = fit(family, params, _training_set())
    scorer = LookupScorer(model, onnx=False)
    columns = _awkward_columns()
    assert scorer.uses_lookups
    assert np.array_equal(scorer.predict(columns), model.predict_proba(pd.DataFrame(columns)[FEATURES]))


def test_an_xgboost_booster_is_called_directly_with_the_rounds_early_stopping_kept():
    model = fit(
        "xgboost", {"n_estimators": 300, "learning_rate": 0.3}, _training_set(), valid=_training_set(1)
    )
    assert model.estimator.best_iteration + 1 < model.estimator.get_booster().num_boosted_rounds()
    scorer = LookupScorer(model, onnx=False)
    columns = _awkward_columns()
    assert scorer.calls_booster
    assert np.array_equal(scorer.predict(columns), model.predict_proba(pd.DataFrame(columns)[FEATURES]))
    # The ONNX trees are the early-stopped ones too: all 300 rounds would be far off.
    assert np.allclose(LookupScorer(model).predict(columns), scorer.predict(columns), rtol=0, atol=TOLERANCE)


def test_small_xgboost_calls_go_through_onnx_within_its_tolerance_and_large_ones_are_exact():
    model = fit("xgboost", {"n_estimators": 50}, _training_set())
    scorer = LookupScorer(model)
    assert scorer.runtime == "onnx+booster"
    small = _awkward_columns()
    large = {f: values * (MAX_ROWS // len(values) + 1) for f, values in small.items()}
    for columns in (small, large):
        expected = model.predict_proba(pd.DataFrame(columns)[FEATURES])
        got = scorer.predict(columns)
        if len(got) <= MAX_ROWS:
            np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
        else:
            assert np.array_equal(got, expected)
    assert LookupScorer(model, onnx=False).runtime == "booster"


def test_onnx_trees_that_disagree_with_the_booster_are_refused(monkeypatch):
    from income.inference import onnx_trees

    model = fit("xgboost", {"n_estimators": 50}, _training_set())
    monkeypatch.setattr(onnx_trees.OnnxTrees, "__call__", lambda self, matrix: np.full(len(matrix), 0.5))
    scorer = LookupScorer(model)
    columns = _awkward_columns()
    assert scorer.runtime == "booster"
    assert np.array_equal(scorer.predict(columns), model.predict_proba(pd.DataFrame(columns)[FEATURES]))


def test_lookups_apply_the_models_calibrator():
    from income.training.calibration import IsotonicCalibrator

    train = _training_set()
    model = fit("xgboost", {"n_estimators": 10}, train)
    raw = model.predict_proba(train[FEATURES])
    model.calibrator = IsotonicCalibrator().fit(raw, train[LABEL].to_numpy())
    columns = _awkward_columns()

    calibrated = LookupScorer(model, onnx=False).predict(columns)

    assert np.array_equal(calibrated, model.predict_proba(pd.DataFrame(columns)[FEATURES]))
    assert not np.array_equal(
        calibrated,
        model.estimator.predict_proba(
            model.preprocessor.transform(as_model_input(pd.DataFrame(columns)[FEATURES]))
        )[:, 1],
    )


def test_a_preprocessor_it_cannot_compile_is_used_as_it_is():
    # The compiled path assumes a centred scaler; without centring it must not guess.
    preprocessor = ColumnTransformer(
        [
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY, missing_values=None),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                CATEGORICAL,
            ),
            (
                "numeric",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler(with_mean=False)),
                NUMERIC,
            ),
        ]
    )
    train = _training_set()
    matrix = preprocessor.fit_transform(as_model_input(train[FEATURES]))
    estimator = make_estimator("logistic_regression", {"C": 0.5}).fit(matrix, train[LABEL])
    model = FittedModel("logistic_regression", preprocessor, estimator)
    scorer = LookupScorer(model)
    columns = _awkward_columns()
    assert not scorer.uses_lookups
    assert np.array_equal(scorer.predict(columns), model.predict_proba(pd.DataFrame(columns)[FEATURES]))
