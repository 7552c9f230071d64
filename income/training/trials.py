"""One hyperparameter trial: fit, evaluate and log as a nested MLflow run (the search: search.py)."""

from __future__ import annotations

import tempfile
import time
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, log_loss, roc_auc_score

from income.data.schema import LABEL, service_features
from income.platform.settings import PROJECT_ROOT
from income.training.model import IncomeClassifier, fit, kinds
from income.training.plots import importance_figure, learning_curve_figure, log_figure, roc_figure
from income.training.search import TrialSpec

ROLE_TAG = "run_role"  # "trial" for a search trial, "final" for the refit model that is registered


@dataclass(frozen=True)
class TrialResult:
    trial_id: int
    model_family: str
    run_id: str
    val_roc_auc: float
    fit_seconds: float


def evaluate(labels: np.ndarray, scores: np.ndarray, prefix: str, threshold: float = 0.5) -> dict[str, float]:
    predicted = (scores >= threshold).astype(int)
    return {
        f"{prefix}_roc_auc": float(roc_auc_score(labels, scores)),
        f"{prefix}_accuracy": float(accuracy_score(labels, predicted)),
        f"{prefix}_log_loss": float(log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7))),
        f"{prefix}_brier": float(brier_score_loss(labels, scores)),
        f"{prefix}_f1": float(f1_score(labels, predicted)),
    }


def model_signature(features: list[str]) -> ModelSignature:
    """Named, optional inputs; numbers typed `any` because Feast hands integers over as int64,
    nullable Int64 or float (when missing) depending on the path, and the model coerces them."""
    categorical, numeric = kinds(features)
    columns = [ColSpec(AnyType(), f, required=False) for f in numeric]
    columns += [ColSpec("string", f, required=False) for f in categorical]
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
            signature=model_signature(model.features),
            input_example=example[model.features].head(5),
            pip_requirements=pip_requirements(),
        )
    mlflow.set_tag("model_uri", info.model_uri)  # what income.training.registry registers
    return info.model_uri


def log_learning_curve(model, title: str) -> None:
    """XGBoost's log loss and AUC per round on training and validation rows: step metrics and a figure."""
    curves = model.estimator.evals_result()
    named = {"train": curves["validation_0"], "val": curves["validation_1"]}
    metrics = [
        Metric(f"curve_{rows}_{metric}", float(value), 0, step)
        for rows, per_metric in named.items()
        for metric, values in per_metric.items()
        for step, value in enumerate(values)
    ]
    client, run_id = mlflow.MlflowClient(), mlflow.active_run().info.run_id
    for start in range(0, len(metrics), 1000):  # MLflow takes at most 1,000 metrics per batch
        client.log_batch(run_id, metrics=metrics[start : start + 1000], synchronous=True)
    log_figure(
        learning_curve_figure(named, model.boosting_rounds, f"{title}: learning curve"), "learning_curve.png"
    )


VALID_SCORES = "validation_scores.npy"  # a trial's scores on the validation rows, in their order


def log_validation_scores(scores: np.ndarray) -> None:
    """Keep a trial's validation scores in its run: calibration and threshold are chosen on them."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / VALID_SCORES
        np.save(path, np.asarray(scores, dtype=float))
        mlflow.log_artifact(str(path))


@dataclass
class Splits:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    source: str  # where the training set is saved
    digest: str  # its content hash
    feature_service: str

    @property
    def features(self) -> list[str]:
        """The features the models are trained on: those of the feature service."""
        return service_features(self.feature_service)


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
    """Fit one trial (XGBoost stops early on the validation rows), score it on validation, log it
    as a nested run: parameters, metrics, ROC curve, importance, XGBoost's learning curve.

    An exception ends the run as FAILED in MLflow and propagates, so Flyte counts the
    trial as failed (the map task's min_success_ratio decides whether the run goes on).
    """
    run_name = f"trial-{spec.trial_id:02d}-{spec.model_family}"
    with mlflow.start_run(run_name=run_name, parent_run_id=parent_run_id, nested=True) as run:
        mlflow.set_tags(
            {
                "model_family": spec.model_family,
                "trial_id": spec.trial_id,
                ROLE_TAG: "trial",
                "params_json": spec.params_json,  # typed, as the refit needs them (params are text)
            }
        )
        mlflow.log_params({"model_family": spec.model_family, **spec.params})
        _log_inputs(splits)
        started = time.perf_counter()
        model = fit(
            spec.model_family,
            spec.params,
            splits.train,
            seed=seed,
            valid=splits.valid,
            features=splits.features,
        )
        fit_seconds = time.perf_counter() - started
        if model.boosting_rounds is not None:
            mlflow.log_param("boosting_rounds", model.boosting_rounds)  # the best round (early stopping)
            log_learning_curve(model, run_name)
        valid_scores = model.predict_proba(splits.valid)
        # The test rows stay untouched: they score the final model only (final.py, registry.py).
        metrics = {
            **evaluate(splits.valid[LABEL].to_numpy(), valid_scores, "val"),
            "fit_seconds": fit_seconds,
        }
        mlflow.log_metrics(metrics)
        log_validation_scores(valid_scores)
        log_figure(
            roc_figure(splits.valid[LABEL], valid_scores, f"{run_name}: validation ROC"), "roc_curve.png"
        )
        log_figure(
            importance_figure(model.feature_importance(), f"{run_name}: importance"), "feature_importance.png"
        )
    return TrialResult(
        trial_id=spec.trial_id,
        model_family=spec.model_family,
        run_id=run.info.run_id,
        val_roc_auc=metrics["val_roc_auc"],
        fit_seconds=round(fit_seconds, 3),
    )
