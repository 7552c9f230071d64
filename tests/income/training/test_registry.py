"""The promotion gate under retries: one model version per run, one decision per version."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from income.data.schema import LABEL
from income.platform.tracking import configure
from income.training.model import CATEGORICAL, NUMERIC, fit
from income.training.registry import CHAMPION, HISTORY_TAG, register_and_gate, rollback
from income.training.trials import log_model

MARGIN = 0.01


def feature_frame(rows: int, seed: int) -> pd.DataFrame:
    """Feature-shaped rows whose label follows age and hours per week, plus noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f: rng.normal(size=rows) for f in NUMERIC})
    for f in CATEGORICAL:
        frame[f] = rng.choice(["a", "b", "c"], size=rows)
    signal = frame["age"] + frame["hours_per_week"] + rng.normal(scale=0.5, size=rows)
    frame[LABEL] = (signal > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def logged_runs(tmp_path_factory):
    """A throw-away MLflow store with two logged models: {"weak": run id, "strong": run id}, test rows.

    The weak model splits on one feature only; the strong one sees both that matter, so it
    beats the weak one by far more than MARGIN on the test rows.
    """
    root = tmp_path_factory.mktemp("registry")
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INCOME_RUNTIME", str(root))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.delenv("MLFLOW_ARTIFACTS_DESTINATION", raising=False)
        configure()
        train, test = feature_frame(400, seed=1), feature_frame(300, seed=2)
        runs = {}
        for label, family, params in [
            ("weak", "decision_tree", {"max_depth": 1}),
            ("strong", "logistic_regression", {"C": 1.0}),
        ]:
            with mlflow.start_run(run_name=f"registry-test-{label}") as run:
                log_model(fit(family, params, train), train)
            runs[label] = run.info.run_id
        yield runs, test
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def history(name: str) -> list[str]:
    return json.loads(mlflow.MlflowClient().get_registered_model(name).tags[HISTORY_TAG])


def champion(name: str) -> str:
    return str(mlflow.MlflowClient().get_model_version_by_alias(name, CHAMPION).version)


def version_count(name: str) -> int:
    return len(mlflow.MlflowClient().search_model_versions(f"name = '{name}'"))


def test_a_retried_promotion_registers_nothing_new_and_returns_the_same_decision(logged_runs):
    runs, test = logged_runs
    name = "retry-promoted"
    weak = register_and_gate(runs["weak"], test, MARGIN, {}, name)
    strong = register_and_gate(runs["strong"], test, MARGIN, {}, name)
    assert strong.promoted and history(name) == [weak.model_version, strong.model_version]

    # The champion is now the strong version itself: gating it again would reject it.
    assert register_and_gate(runs["strong"], test, MARGIN, {}, name) == strong
    assert register_and_gate(runs["weak"], test, MARGIN, {}, name) == weak
    assert version_count(name) == 2
    assert history(name) == [weak.model_version, strong.model_version]
    assert champion(name) == strong.model_version


def test_a_retried_rejection_stays_rejected(logged_runs):
    runs, test = logged_runs
    name = "retry-rejected"
    strong = register_and_gate(runs["strong"], test, MARGIN, {}, name)
    weak = register_and_gate(runs["weak"], test, MARGIN, {}, name)
    assert not weak.promoted and weak.champion_version == strong.model_version

    assert register_and_gate(runs["weak"], test, MARGIN, {}, name) == weak
    assert version_count(name) == 2
    assert history(name) == [strong.model_version]
    assert champion(name) == strong.model_version


def test_a_retry_after_a_rollback_does_not_bring_the_version_back(logged_runs):
    runs, test = logged_runs
    name = "retry-after-rollback"
    weak = register_and_gate(runs["weak"], test, MARGIN, {}, name)
    strong = register_and_gate(runs["strong"], test, MARGIN, {}, name)
    assert rollback(name) == weak.model_version

    assert register_and_gate(runs["strong"], test, MARGIN, {}, name) == strong
    assert version_count(name) == 2
    assert champion(name) == weak.model_version and history(name) == [weak.model_version]


def test_a_retry_finishes_a_promotion_recorded_before_champion_moved(logged_runs):
    """The decision is recorded on the version first; a run stopped before moving the alias is finished."""
    runs, test = logged_runs
    name = "retry-unfinished-promotion"
    client = mlflow.MlflowClient()
    weak = register_and_gate(runs["weak"], test, MARGIN, {}, name)
    strong = register_and_gate(runs["strong"], test, MARGIN, {}, name)
    # The state a run stopped between recording the promotion and moving `champion` leaves.
    client.set_registered_model_alias(name, CHAMPION, weak.model_version)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps([weak.model_version]))

    assert register_and_gate(runs["strong"], test, MARGIN, {}, name) == strong
    assert version_count(name) == 2
    assert champion(name) == strong.model_version
    assert history(name) == [weak.model_version, strong.model_version]
