"""Hyperparameter trials: a seeded search over model families, each trial one nested MLflow run."""

from __future__ import annotations

import json
import math
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from income.data.schema import LABEL
from income.platform.settings import PROJECT_ROOT
from income.training.model import CATEGORICAL, FAMILIES, FEATURES, NUMERIC, IncomeClassifier, fit
from income.training.plots import importance_figure, log_figure, roc_figure

# Ranges per family: ("int", lo, hi), ("float", lo, hi), ("log", lo, hi) or ("choice", [...]).
SEARCH_SPACE: dict[str, dict[str, tuple]] = {
    "xgboost": {
        "n_estimators": ("int", 100, 400),
        "max_depth": ("int", 3, 7),
        "learning_rate": ("log", 0.02, 0.2),
        "subsample": ("float", 0.7, 1.0),
        "colsample_bytree": ("float", 0.5, 1.0),
        "min_child_weight": ("log", 1.0, 10.0),
    },
    "random_forest": {
        "n_estimators": ("int", 100, 250),
        "max_depth": ("int", 8, 24),
        "min_samples_leaf": ("int", 1, 10),
        "max_features": ("choice", ["sqrt", 0.3, 0.5]),
    },
    "decision_tree": {"max_depth": ("int", 4, 14), "min_samples_leaf": ("int", 5, 100)},
    "logistic_regression": {"C": ("log", 0.01, 10.0)},
}


@dataclass(frozen=True)
class SearchConfig:
    n_trials: int = 16
    seed: int = 42
    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    # Pin parameters of a family, e.g. '{"xgboost": {"max_depth": 6}}' (JSON).
    fixed_params_json: str = "{}"


@dataclass(frozen=True)
class TrialSpec:
    trial_id: int
    model_family: str
    params_json: str

    @property
    def params(self) -> dict:
        return json.loads(self.params_json)


@dataclass(frozen=True)
class TrialResult:
    trial_id: int
    model_family: str
    run_id: str
    val_roc_auc: float
    test_roc_auc: float
    fit_seconds: float


def _sample(rng: np.random.Generator, spec: tuple):
    kind = spec[0]
    if kind == "int":
        return int(rng.integers(spec[1], spec[2] + 1))
    if kind == "float":
        return round(float(rng.uniform(spec[1], spec[2])), 4)
    if kind == "log":
        return round(float(math.exp(rng.uniform(math.log(spec[1]), math.log(spec[2])))), 5)
    choices = spec[1]
    return choices[int(rng.integers(len(choices)))]


def make_trial_specs(cfg: SearchConfig) -> list[TrialSpec]:
    """`n_trials` specs, families in turn, parameters drawn by a seeded random search."""
    unknown = set(cfg.families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown model families {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    rng = np.random.default_rng(cfg.seed)
    fixed = json.loads(cfg.fixed_params_json)
    specs = []
    for trial_id in range(cfg.n_trials):
        family = cfg.families[trial_id % len(cfg.families)]
        params = {name: _sample(rng, space) for name, space in SEARCH_SPACE[family].items()}
        params.update(fixed.get(family, {}))
        specs.append(TrialSpec(trial_id, family, json.dumps(params, sort_keys=True)))
    return specs


def evaluate(labels: np.ndarray, scores: np.ndarray, prefix: str) -> dict[str, float]:
    predicted = (scores >= 0.5).astype(int)
    return {
        f"{prefix}_roc_auc": float(roc_auc_score(labels, scores)),
        f"{prefix}_accuracy": float(accuracy_score(labels, predicted)),
        f"{prefix}_log_loss": float(log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7))),
        f"{prefix}_f1": float(f1_score(labels, predicted)),
    }


def model_signature() -> ModelSignature:
    """Named, optional inputs; numbers typed `any` because Feast hands integers over as int64,
    nullable Int64 or float (when missing) depending on the path, and the model coerces them."""
    columns = [ColSpec(AnyType(), f, required=False) for f in NUMERIC]
    columns += [ColSpec("string", f, required=False) for f in CATEGORICAL]
    return ModelSignature(inputs=Schema(columns), outputs=Schema([ColSpec("double")]))


def pip_requirements() -> list[str]:
    packages = ["mlflow", "xgboost", "scikit-learn", "pandas", "numpy", "joblib", "pyarrow"]
    return [f"{p}=={version(p)}" for p in packages]


def log_model(model, example: pd.DataFrame) -> str:
    """Log the model as the IncomeClassifier pyfunc (training.model) in the active run; return its URI."""
    with tempfile.TemporaryDirectory() as folder:
        artifacts = model.save(Path(folder))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=IncomeClassifier(),
            artifacts=artifacts,
            code_paths=[str(PROJECT_ROOT / "income")],
            signature=model_signature(),
            input_example=example[FEATURES].head(5),
            pip_requirements=pip_requirements(),
        )
    mlflow.set_tag("model_uri", info.model_uri)  # what income.training.registry registers
    return info.model_uri


@dataclass
class Splits:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    source: str  # where the training set is saved
    digest: str  # its content hash
    feature_service: str


def _log_inputs(splits: Splits) -> None:
    with warnings.catch_warnings():
        # MLflow hints about integer columns and ambiguous local sources: both expected here.
        warnings.simplefilter("ignore", UserWarning)
        _log_datasets(splits)


def _log_datasets(splits: Splits) -> None:
    for context, frame in (("training", splits.train), ("validation", splits.valid), ("test", splits.test)):
        dataset = mlflow.data.from_pandas(
            frame,
            source=splits.source,
            targets=LABEL,
            name=f"{splits.feature_service}-{context}",
            digest=f"{splits.digest[:12]}-{context}",
        )
        mlflow.log_input(dataset, context=context, tags={"feature_service": splits.feature_service})


def run_trial(spec: TrialSpec, splits: Splits, parent_run_id: str, seed: int = 0) -> TrialResult:
    """Fit one trial, evaluate it on validation and test, log everything as a nested run.

    An exception ends the run as FAILED in MLflow and propagates, so Flyte counts the
    trial as failed (the map task's min_success_ratio decides whether the run goes on).
    """
    run_name = f"trial-{spec.trial_id:02d}-{spec.model_family}"
    with mlflow.start_run(run_name=run_name, parent_run_id=parent_run_id, nested=True) as run:
        mlflow.set_tags({"model_family": spec.model_family, "trial_id": spec.trial_id})
        mlflow.log_params({"model_family": spec.model_family, **spec.params})
        _log_inputs(splits)
        started = time.perf_counter()
        model = fit(spec.model_family, spec.params, splits.train, seed=seed)
        fit_seconds = time.perf_counter() - started
        valid_scores = model.predict_proba(splits.valid[FEATURES])
        test_scores = model.predict_proba(splits.test[FEATURES])
        metrics = {
            **evaluate(splits.valid[LABEL].to_numpy(), valid_scores, "val"),
            **evaluate(splits.test[LABEL].to_numpy(), test_scores, "test"),
            "fit_seconds": fit_seconds,
        }
        mlflow.log_metrics(metrics)
        log_figure(
            roc_figure(splits.valid[LABEL], valid_scores, f"{run_name}: validation ROC"), "roc_curve.png"
        )
        log_figure(
            importance_figure(model.feature_importance(), f"{run_name}: importance"), "feature_importance.png"
        )
        log_model(model, splits.valid)
    return TrialResult(
        trial_id=spec.trial_id,
        model_family=spec.model_family,
        run_id=run.info.run_id,
        val_roc_auc=metrics["val_roc_auc"],
        test_roc_auc=metrics["test_roc_auc"],
        fit_seconds=round(fit_seconds, 3),
    )
