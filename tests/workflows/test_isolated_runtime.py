"""Nothing pod-local between tasks: the feature, training, batch scoring and monitoring workflows run
with INCOME_ISOLATED_RUNTIME=1, so every task has a new empty runtime folder, removed when it ends
(as a pod of its own would), and the stores are configured explicitly in a place all tasks reach.
Whatever a later task read, it found in its Flyte inputs or in those stores.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mlflow
import pytest

pytestmark = pytest.mark.integration

VALKEY_DB = 10  # a Valkey database of this module's own

TASKS = {
    "ingest_batch",
    "build_features",
    "publish_features",
    "build_training_set",
    "ask_trials",
    "train_trial",
    "tell_trials",
    "gather_trials",
    "refit_best",
    "select_and_register",
    "score_batch",
    "report_drift",
    "drain_prediction_log",
    "live_metrics_report",
    "monitor_predictions",
}


class TaskFolders(logging.Handler):
    """(task, runtime folder) of every task run, from tasks.execution's log line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.runs: list[tuple[str, Path]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("task %s runs with INCOME_RUNTIME="):
            task, folder = record.args
            self.runs.append((task, Path(folder)))


@pytest.fixture(scope="module")
def stores(valkey_server, tmp_path_factory):
    """Every store explicitly in one shared folder; the process's own INCOME_RUNTIME a folder that
    does not exist (nothing may create it); the isolated mode on."""
    shared = tmp_path_factory.mktemp("shared_stores")
    settings = valkey_server.settings
    mp = pytest.MonkeyPatch()
    mp.setenv("INCOME_ISOLATED_RUNTIME", "1")
    mp.setenv("INCOME_RUNTIME", str(shared / "never-created"))
    mp.setenv("INCOME_OFFLINE_STORE", str(shared / "offline_store"))
    mp.setenv("FEAST_REGISTRY_PATH", str(shared / "feast" / "registry.sqlite"))
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{shared / 'mlflow' / 'mlflow.db'}")
    mp.setenv("MLFLOW_ARTIFACTS_DESTINATION", str(shared / "mlflow" / "artifacts"))
    mp.delenv("INCOME_OPTUNA_STORAGE", raising=False)  # beside the MLflow store
    mp.setenv("VALKEY_HOST", settings.host)
    mp.setenv("VALKEY_PORT", str(settings.port))
    mp.setenv("VALKEY_PASSWORD", settings.password)
    mp.setenv("VALKEY_DB", str(VALKEY_DB))
    # The tasks point MLflow's process-wide URIs at the shared store: the modules after this one
    # must find theirs again.
    uris = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        yield shared
    finally:
        mp.undo()
        mlflow.set_tracking_uri(uris[0])
        mlflow.set_registry_uri(uris[1])


@pytest.fixture(scope="module")
def runs(stores, spark):
    """The four workflows one after the other on a small synthetic world; (outputs, task folders)."""
    from income.training.search import SearchConfig
    from tasks.config import FeaturePipelineConfig
    from tasks.training import TrainingConfig
    from workflows.batch_scoring import batch_scoring
    from workflows.feature_pipeline import feature_pipeline
    from workflows.monitoring import monitoring
    from workflows.training_pipeline import training_pipeline

    folders = TaskFolders()
    logger = logging.getLogger("tasks.execution")
    level = logger.level
    logger.addHandler(folders)
    logger.setLevel(logging.INFO)
    try:
        search = SearchConfig(
            n_trials=2, families=["xgboost"], fixed_params_json=json.dumps({"xgboost": {"n_estimators": 30}})
        )
        outputs = {
            "features": feature_pipeline(cfg=FeaturePipelineConfig(users=300, seed=23)),
            "training": training_pipeline(cfg=TrainingConfig(search=search)),
            "scoring": batch_scoring(),
            "monitoring": monitoring(),
        }
    finally:
        logger.removeHandler(folders)
        logger.setLevel(level)
    return outputs, folders.runs


def test_every_task_ran_in_a_new_runtime_folder_that_is_gone(runs, stores):
    _, task_runs = runs
    assert {task for task, _ in task_runs} == TASKS
    folders = [folder for _, folder in task_runs]
    assert len(set(folders)) == len(folders)  # one per task run: two trials, two folders
    assert [f for f in folders if f.exists()] == []
    assert not any(f.is_relative_to(stores) for f in folders)
    # The process's own runtime folder was never needed, by a task or around them.
    assert not (stores / "never-created").exists()


def test_the_results_are_in_the_stores(runs, stores):
    from income.features.offline_store import current
    from income.inference.as_of import parse_as_of
    from income.inference.predictions import read_predictions
    from income.platform import lineage
    from income.platform.files import read_text
    from income.platform.tracking import MODEL_NAME, configure

    outputs, _ = runs
    offline = str(stores / "offline_store")
    published = outputs["features"]
    assert current(offline).version == published.tables.version and published.online_users > 0

    training = outputs["training"]
    assert training.decision.promoted and training.trials_succeeded == 2
    configure()
    champion = mlflow.MlflowClient().get_model_version_by_alias(MODEL_NAME, "champion")
    assert str(champion.version) == training.decision.model_version
    assert champion.tags["training_set_uri"].startswith(f"{offline}/training_sets/")
    assert Path(champion.tags["training_set_uri"]).exists()
    assert mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion") is not None

    scoring, drift = outputs["scoring"]
    assert scoring.predictions_root == f"{offline}/predictions" and scoring.rows > 0
    predictions = read_predictions(scoring.predictions_root, parse_as_of(scoring.as_of))
    assert len(predictions) == scoring.rows
    assert set(predictions["model_version"]) == {training.decision.model_version}
    assert drift.report_path.startswith(f"{offline}/reports/drift-")
    assert "prediction (probability)" in read_text(drift.report_path)

    live, alerts = outputs["monitoring"]
    assert live.predictions == 0  # nothing served: the log is empty, and the run still goes through
    assert alerts.champion_version == training.decision.model_version
    assert alerts.alerts_uri.startswith(f"{offline}/monitoring/alerts/")

    kinds = {record["kind"] for record in lineage.runs()}
    assert kinds == {"feature_pipeline", "training_pipeline", "batch_scoring", "live_metrics", "monitoring"}
    for deck in ("ingestion", "feature-tables", "online-store", "training", "batch-scoring", "drift"):
        assert read_text(f"{offline}/reports/{deck}.html"), deck


def test_a_store_left_unset_stops_the_task_naming_it(stores, monkeypatch):
    from tasks.training import gather_trials

    monkeypatch.delenv("MLFLOW_ARTIFACTS_DESTINATION")
    with pytest.raises(Exception, match="MLFLOW_ARTIFACTS_DESTINATION not set"):
        gather_trials(rounds=[[]])
