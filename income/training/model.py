"""The income classifier as one MLflow pyfunc model: preprocessing and estimator together.

Batch and online scoring pass the feature values exactly as Feast returns them (strings
or None for categoricals, ints/floats or None for numbers); the model itself imputes,
encodes and scores, so training and serving cannot drift apart. XGBoost boosters are
stored in XGBoost's own JSON format; scikit-learn estimators, the preprocessor and the
calibrator with joblib; the decision threshold in model.json.

XGBoost is fitted with early stopping when validation rows are given: up to MAX_ROUNDS
boosting rounds, stopping when the validation log loss has not improved for
EARLY_STOPPING_ROUNDS; the model keeps the best round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from income.data.schema import CATEGORICAL_ATTRIBUTES, LABEL, MISSING_CATEGORY, service_features

# The features of income_v1, the default feature service; a model trained on another service
# carries its own list (FittedModel.features).
FEATURES = service_features("income_v1")
CATEGORICAL = [f for f in FEATURES if f in CATEGORICAL_ATTRIBUTES]
NUMERIC = [f for f in FEATURES if f not in CATEGORICAL]
FAMILIES = ("xgboost", "random_forest", "decision_tree", "logistic_regression")
MAX_ROUNDS = 1000
EARLY_STOPPING_ROUNDS = 50


def kinds(features: list[str]) -> tuple[list[str], list[str]]:
    """(categorical, numeric) features, each in the given order."""
    categorical = [f for f in features if f in CATEGORICAL_ATTRIBUTES]
    return categorical, [f for f in features if f not in categorical]


def as_model_input(df: pd.DataFrame, features: list[str] = FEATURES) -> pd.DataFrame:
    """Feast-shaped values -> the frame the preprocessor expects (numbers as float, None kept)."""
    categorical, numeric = kinds(features)
    out = pd.DataFrame(index=df.index)
    for column in numeric:
        out[column] = pd.to_numeric(df[column], errors="coerce").astype("float64")
    for column in categorical:
        out[column] = df[column].astype("object").where(df[column].notna(), None)
    return out


def make_preprocessor(features: list[str] = FEATURES) -> ColumnTransformer:
    categorical_features, numeric_features = kinds(features)
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY, missing_values=None),
        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False),
    )
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    return ColumnTransformer(
        [("categorical", categorical, categorical_features), ("numeric", numeric, numeric_features)]
    )


def make_estimator(family: str, params: dict[str, Any], seed: int = 0):
    """An unfitted estimator of the given family (parameters as in its library)."""
    if family == "xgboost":
        from xgboost import XGBClassifier

        params = {"n_estimators": MAX_ROUNDS, **params}
        return XGBClassifier(
            **params, tree_method="hist", n_jobs=2, random_state=seed, eval_metric=["auc", "logloss"]
        )
    if family == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(**params, n_jobs=2, random_state=seed)
    if family == "decision_tree":
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(**params, random_state=seed)
    if family == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(**params, max_iter=2000)
    raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")


@dataclass
class FittedModel:
    family: str
    preprocessor: ColumnTransformer
    estimator: Any
    # Maps the estimator's scores to calibrated probabilities (income.training.calibration); None: as is.
    calibrator: Any = None
    threshold: float = 0.5  # a probability at or above it is predicted >50K
    features: list[str] = field(default_factory=lambda: list(FEATURES))  # its feature service's

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Probability that income > 50K, from Feast-shaped feature values (other columns ignored)."""
        matrix = self.preprocessor.transform(as_model_input(features, self.features))
        return self.calibrate(self.estimator.predict_proba(matrix)[:, 1])

    def calibrate(self, scores: np.ndarray) -> np.ndarray:
        """The estimator's scores as calibrated probabilities (unchanged without a calibrator)."""
        return scores if self.calibrator is None else self.calibrator.transform(scores)

    @property
    def boosting_rounds(self) -> int | None:
        """XGBoost: the rounds the model uses (the best one when it stopped early); else None."""
        if self.family != "xgboost":
            return None
        best = getattr(self.estimator, "best_iteration", None)
        return int(best) + 1 if best is not None else int(self.estimator.get_booster().num_boosted_rounds())

    def feature_importance(self) -> pd.Series:
        """Importance per raw feature: encoded columns summed back onto their feature."""
        if hasattr(self.estimator, "feature_importances_"):
            weights = np.asarray(self.estimator.feature_importances_, dtype=float)
        else:
            weights = np.abs(np.asarray(self.estimator.coef_, dtype=float)).ravel()
        names = self.preprocessor.get_feature_names_out()
        raw = [_raw_feature(name, self.features) for name in names]
        return pd.Series(weights, index=raw).groupby(level=0).sum().sort_values(ascending=False)

    def save(self, folder: Path) -> dict[str, str]:
        """Write the artifacts; returns the mapping MLflow logs as pyfunc artifacts."""
        folder.mkdir(parents=True, exist_ok=True)
        artifacts = {"preprocessor": str(folder / "preprocessor.joblib")}
        joblib.dump(self.preprocessor, artifacts["preprocessor"])
        if self.calibrator is not None:
            artifacts["calibrator"] = str(folder / "calibrator.joblib")
            joblib.dump(self.calibrator, artifacts["calibrator"])
        if self.family == "xgboost":
            artifacts["estimator"] = str(folder / "estimator.xgb.json")
            self.estimator.save_model(artifacts["estimator"])
        else:
            artifacts["estimator"] = str(folder / "estimator.joblib")
            joblib.dump(self.estimator, artifacts["estimator"])
        meta = folder / "model.json"
        meta.write_text(
            json.dumps({"family": self.family, "features": self.features, "threshold": self.threshold})
        )
        artifacts["meta"] = str(meta)
        return artifacts

    @classmethod
    def load(cls, artifacts: dict[str, str]) -> FittedModel:
        meta = json.loads(Path(artifacts["meta"]).read_text())
        family = meta["family"]
        if family == "xgboost":
            from xgboost import XGBClassifier

            estimator = XGBClassifier()
            estimator.load_model(artifacts["estimator"])
        else:
            estimator = joblib.load(artifacts["estimator"])
        calibrator = joblib.load(artifacts["calibrator"]) if "calibrator" in artifacts else None
        return cls(
            family,
            joblib.load(artifacts["preprocessor"]),
            estimator,
            calibrator,
            meta.get("threshold", 0.5),
            meta.get("features", list(FEATURES)),
        )


def _raw_feature(encoded: str, features: list[str] = FEATURES) -> str:
    """'categorical__occupation_Sales' -> 'occupation'; 'numeric__age' -> 'age'."""
    _, _, rest = encoded.partition("__")
    return max((f for f in features if rest == f or rest.startswith(f + "_")), key=len, default=rest)


def fit(
    family: str,
    params: dict[str, Any],
    train: pd.DataFrame,
    seed: int = 0,
    valid: pd.DataFrame | None = None,
    features: list[str] | None = None,
) -> FittedModel:
    """Fit the preprocessor and the estimator on `train`; XGBoost stops early on `valid` when given.

    `features`: the feature service's features (default: income_v1's, FEATURES).

    With early stopping, `estimator.evals_result()` holds the learning curve: "validation_0" on
    the training rows, "validation_1" on the validation rows (AUC and log loss per round).
    """
    features = list(features or FEATURES)
    preprocessor = make_preprocessor(features)
    matrix = preprocessor.fit_transform(as_model_input(train, features))
    estimator = make_estimator(family, params, seed)
    labels = train[LABEL].to_numpy()
    if family == "xgboost" and valid is not None:
        valid_matrix = preprocessor.transform(as_model_input(valid, features))
        estimator.set_params(early_stopping_rounds=EARLY_STOPPING_ROUNDS)
        eval_set = [(matrix, labels), (valid_matrix, valid[LABEL].to_numpy())]
        estimator.fit(matrix, labels, eval_set=eval_set, verbose=False)
    else:
        estimator.fit(matrix, labels)
    return FittedModel(family, preprocessor, estimator, features=features)


class IncomeClassifier(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: Feast-shaped features in, P(income > 50K) out."""

    def load_context(self, context) -> None:
        self.model = FittedModel.load(context.artifacts)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.model.predict_proba(model_input)
