"""Score Feast-shaped feature columns one request at a time, fast and with the pyfunc's exact output.

The registered pyfunc (income.training.model.IncomeClassifier) runs a scikit-learn ColumnTransformer
on a pandas frame; for one user that costs milliseconds of pandas and validation overhead,
far more than the online read. `LookupScorer` compiles the fitted transformer into lookups:
per categorical feature a value -> one-hot column map, per numeric feature its imputation
median and scaling, and feeds the estimator the same float64 matrix (an XGBoost model's
booster directly, without the scikit-learn wrapper's per-call checks). It then checks itself
against the transformer and the estimator on probe rows (every known category, None, unseen
values, missing and extreme numbers) and falls back to them when anything differs or the
preprocessor is not of the expected shape, so the output never depends on the shortcut.

One exception to "exact": an XGBoost model's calls of up to onnx_trees.MAX_ROWS rows go
through the same trees in ONNX Runtime (income.inference.onnx_trees), ~14 µs against ~200
for one row, whose float32 sums may differ from the booster's in the last bits (at most
onnx_trees.TOLERANCE on the probe rows, or it is not used). Larger calls, and every call
when ONNX is off or refused, are the booster's exact scores.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from income.inference.onnx_trees import MAX_ROWS, OnnxTrees
from income.training.model import FittedModel, as_model_input

log = logging.getLogger(__name__)

_UNSEEN = "\x00unseen category\x00"


class _Compiled:
    """The fitted ColumnTransformer as arrays and dicts (see the module docstring)."""

    def __init__(self, preprocessor) -> None:
        transformers = {name: (pipe, cols) for name, pipe, cols in preprocessor.transformers_}
        if set(transformers) != {"categorical", "numeric"} or preprocessor.remainder != "drop":
            raise ValueError(f"unexpected transformers {sorted(transformers)}")
        cat_pipe, self.categorical = transformers["categorical"]
        num_pipe, self.numeric = transformers["numeric"]
        imputer, encoder = cat_pipe.steps[0][1], cat_pipe.steps[-1][1]
        num_imputer, scaler = num_pipe.steps[0][1], num_pipe.steps[-1][1]
        if len(cat_pipe.steps) != 2 or len(num_pipe.steps) != 2:
            raise ValueError("unexpected pipeline steps")
        if encoder.drop_idx_ is not None or not (scaler.with_mean and scaler.with_std):
            raise ValueError("unsupported encoder/scaler options")
        self.width = preprocessor.output_indices_["numeric"].stop
        self.cat_slice = preprocessor.output_indices_["categorical"]
        self.num_slice = preprocessor.output_indices_["numeric"]
        self.fill = imputer.fill_value
        self.median = np.asarray(num_imputer.statistics_, dtype=np.float64)
        self.mean = np.asarray(scaler.mean_, dtype=np.float64)
        self.scale = np.asarray(scaler.scale_, dtype=np.float64)

        # For each categorical feature: value -> output column (or -1: all zeros), read off
        # the encoder itself by encoding each known category and one unseen value.
        offsets = np.cumsum([0, *encoder._n_features_outs])
        self.lookup: list[dict[object, int]] = []
        self.unseen: list[int] = []
        for i in range(len(self.categorical)):
            values = [*encoder.categories_[i], _UNSEEN]
            # The encoder sees the imputer's output: an object array without column names.
            probe = np.array([[cats[0] for cats in encoder.categories_]] * len(values), dtype=object)
            probe[:, i] = values
            block = encoder.transform(probe)[:, offsets[i] : offsets[i + 1]]
            start = self.cat_slice.start + offsets[i]
            columns = [start + int(np.flatnonzero(row)[0]) if row.any() else -1 for row in block]
            self.lookup.append(dict(zip(values[:-1], columns[:-1], strict=True)))
            self.unseen.append(columns[-1])

    def transform(self, columns: Mapping[str, Sequence]) -> np.ndarray:
        rows = len(columns[self.numeric[0]])
        matrix = np.zeros((rows, self.width), dtype=np.float64)
        for i, feature in enumerate(self.categorical):
            lookup, unseen, fill = self.lookup[i], self.unseen[i], self.fill
            for r, value in enumerate(columns[feature]):
                col = lookup.get(fill if value is None else value, unseen)
                if col >= 0:
                    matrix[r, col] = 1.0
        numbers = np.array(
            [[np.nan if v is None else v for v in columns[f]] for f in self.numeric], dtype=np.float64
        ).T
        numbers = np.where(np.isnan(numbers), self.median, numbers)
        numbers -= self.mean  # the scaler's own two in-place steps, in its order
        numbers /= self.scale
        matrix[:, self.num_slice] = numbers
        return matrix


class LookupScorer:
    """P(income > 50K) for columns of Feast-shaped values (feature name -> one value per user)."""

    def __init__(self, model: FittedModel, onnx: bool = True) -> None:
        """`onnx`: small calls of an XGBoost model through ONNX Runtime (see the module docstring)."""
        self.model = model
        self.onnx: OnnxTrees | None = None
        # One row at a time: thread fan-out only adds latency (threads change no result).
        if model.family == "xgboost":
            # Not set_params: it would hand every parameter to the booster again, and the booster
            # refuses the list of evaluation metrics the model was fitted with.
            model.estimator.n_jobs = 1
            model.estimator.get_booster().set_param("nthread", 1)
        elif hasattr(model.estimator, "n_jobs"):
            model.estimator.set_params(n_jobs=1)
        self.compiled: _Compiled | None = None
        self._positive = self._estimator_positive
        try:
            compiled = _Compiled(model.preprocessor)
            probe = _probe_columns(compiled)
            expected = model.preprocessor.transform(as_model_input(pd.DataFrame(probe), model.features))
            if np.array_equal(compiled.transform(probe), expected):
                self.compiled = compiled
                self._positive = self._booster_or_estimator(expected)
                if onnx and self.calls_booster:
                    self.onnx = OnnxTrees.load(model.estimator, expected, self._positive(expected))
            else:
                log.warning("compiled preprocessing differs from the model's: using the model's")
        except Exception as exc:  # noqa: BLE001 - any surprise: score the slow, certain way
            log.warning("preprocessing not compiled (%s): using the model's", exc)

    @property
    def uses_lookups(self) -> bool:
        """False when it fell back to the model's own preprocessing (same output, slower)."""
        return self.compiled is not None

    @property
    def calls_booster(self) -> bool:
        """True when an XGBoost model's booster is called directly (same scores, less overhead)."""
        return self._positive != self._estimator_positive

    @property
    def runtime(self) -> str:
        """What scores: "onnx+booster" (small calls in ONNX Runtime), "booster" or "estimator"."""
        if self.onnx is not None:
            return "onnx+booster"
        return "booster" if self.calls_booster else "estimator"

    def predict(self, columns: Mapping[str, Sequence]) -> np.ndarray:
        if self.compiled is None:
            return self.model.predict_proba(pd.DataFrame({f: columns[f] for f in self.model.features}))
        matrix = self.compiled.transform(columns)
        small = self.onnx is not None and len(matrix) <= MAX_ROWS
        return self.model.calibrate(self.onnx(matrix) if small else self._positive(matrix))

    def _estimator_positive(self, matrix: np.ndarray) -> np.ndarray:
        return self.model.estimator.predict_proba(matrix)[:, 1]

    def _booster_or_estimator(self, probe: np.ndarray):
        """XGBoost's booster called directly when it gives predict_proba's exact scores on the probe
        rows: the scikit-learn wrapper's checks cost as much as the trees for one row."""
        if self.model.family != "xgboost":
            return self._estimator_positive
        estimator = self.model.estimator
        best = getattr(estimator, "best_iteration", None)
        rounds = (0, best + 1) if best is not None else (0, 0)  # (0, 0): every tree
        booster = estimator.get_booster()

        def positive(matrix: np.ndarray) -> np.ndarray:
            return booster.inplace_predict(matrix, iteration_range=rounds, validate_features=False)

        try:
            if np.array_equal(positive(probe), self._estimator_positive(probe)):
                return positive
        except Exception as exc:  # noqa: BLE001 - the wrapper is the reference
            log.warning("booster not called directly (%s): through the estimator", exc)
            return self._estimator_positive
        log.warning("booster scores differ from the estimator's: through the estimator")
        return self._estimator_positive


def _probe_columns(compiled: _Compiled) -> dict[str, list]:
    """Rows that visit every known category, None, unseen values and awkward numbers."""
    longest = max(len(lookup) for lookup in compiled.lookup) + 3
    rng = np.random.default_rng(0)
    columns: dict[str, list] = {}
    for feature, lookup in zip(compiled.categorical, compiled.lookup, strict=True):
        values = [*lookup, None, "not a category", ""]
        columns[feature] = [values[r % len(values)] for r in range(longest)]
    specials = [None, 0, -1, 10**9, 0.5, float("nan")]
    for feature in compiled.numeric:
        draws = rng.normal(0, 100, longest).round(2).tolist()
        columns[feature] = [specials[r] if r < len(specials) else draws[r] for r in range(longest)]
    return columns
