"""MLflow setup: the local sqlite store under .runtime/ by default, any server via MLFLOW_TRACKING_URI."""

from __future__ import annotations

import logging
import os
import subprocess

import mlflow

from income.platform.settings import PROJECT_ROOT, load_runtime_env, runtime_dir, secret

EXPERIMENT = "income-classifier"
MONITORING_EXPERIMENT = "income-monitoring"  # live metrics and experiments, apart from training
MODEL_NAME = "income-classifier"


def tracking_uri() -> str:
    load_runtime_env()
    default = f"sqlite:///{runtime_dir() / 'mlflow' / 'mlflow.db'}"
    return os.environ.get("MLFLOW_TRACKING_URI", default)


def artifact_root() -> str:
    load_runtime_env()
    return os.environ.get("MLFLOW_ARTIFACTS_DESTINATION", str(runtime_dir() / "mlflow" / "artifacts"))


def artifact_location() -> str | None:
    """Where a new experiment keeps its artifacts: under artifact_root() with a local tracking
    store, None (the server's own artifact store) with a tracking server."""
    if not tracking_uri().startswith(("sqlite:", "file:", "/")):
        return None
    location = artifact_root()
    return location if "://" in location else f"file://{location}"


def ui_url() -> str:
    """Where people open the MLflow UI (`make mlflow-ui` serves it on MLFLOW_PORT, default 5000)."""
    load_runtime_env()
    default = f"http://127.0.0.1:{os.environ.get('MLFLOW_PORT', '5000')}"
    return os.environ.get("MLFLOW_UI_URL", default).rstrip("/")


def run_page(experiment_id: str, run_id: str) -> str:
    return f"{ui_url()}/#/experiments/{experiment_id}/runs/{run_id}"


def model_version_page(name: str, version: str) -> str:
    return f"{ui_url()}/#/models/{name}/versions/{version}"


def configure(name: str = EXPERIMENT) -> str:
    """Point MLflow at the tracking store and make sure the experiment `name` exists; return its id."""
    # MLflow narrates every artifact copy at INFO and warns that a Python model is pickled
    # (ours is, by design: the model carries its preprocessing); keep the pipelines' output readable.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri()
    token = secret("MLFLOW_TRACKING_TOKEN", "mlflow-token")  # a tracking server's bearer token
    if token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = token
    if uri.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(uri.removeprefix("sqlite:///")), exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        experiment_id = experiment.experiment_id
    else:
        experiment_id = mlflow.create_experiment(name, artifact_location=artifact_location())
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"
