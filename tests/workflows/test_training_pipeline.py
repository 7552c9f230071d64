"""Training: the workflow through Flyte, the promotion gate, rollback, and the logged model."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from income.training.model import FEATURES, fit

pytestmark = pytest.mark.integration


def test_workflow_registers_a_champion_from_the_best_trial(training_run):
    from income.platform.tracking import configure
    from income.training.registry import MODEL_NAME

    configure()
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert training_run.decision.promoted
    assert str(champion.version) == training_run.decision.model_version
    assert champion.run_id == training_run.final_run_id  # the best trial refit
    assert champion.tags["trial_run_id"] == training_run.best_run_id
    assert champion.tags["feature_service"] == "income_v1"
    assert champion.tags["promotion.decision"] == "promoted"
    assert len(champion.tags["feature_refs"].split(",")) == len(FEATURES)
    best = client.get_run(training_run.best_run_id)
    assert best.data.tags["mlflow.parentRunId"] == training_run.parent_run_id
    assert best.data.metrics["val_roc_auc"] > 0.7
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{training_run.parent_run_id}' "
        "and attributes.status = 'FINISHED' and tags.run_role = 'trial'",
        output_format="list",
    )
    assert best.data.metrics["val_roc_auc"] == max(r.data.metrics["val_roc_auc"] for r in children)
    # The trials never score the test rows: only the final model does.
    assert all("test_roc_auc" not in r.data.metrics for r in children)
    artifacts = {a.path for a in client.list_artifacts(training_run.best_run_id)}
    assert {"roc_curve.png", "feature_importance.png"} <= artifacts
    assert {i.dataset.name for i in best.inputs.dataset_inputs} == {
        "income_v1-training",
        "income_v1-validation",
        "income_v1-test",
    }


def test_a_failing_trial_is_recorded_as_failed_and_does_not_fail_the_run(training_run):
    assert (training_run.trials_succeeded, training_run.trials_failed) == (3, 1)
    failed = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{training_run.parent_run_id}' "
        "and attributes.status = 'FAILED'",
        output_format="list",
    )
    assert [r.data.params["model_family"] for r in failed] == ["decision_tree"]


def test_logged_model_predicts_from_raw_feast_shaped_rows(training_run):
    from income.features.feature_store import get_store
    from income.training.registry import MODEL_NAME

    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    store = get_store()
    users = [{"user_id": u} for u in range(1, 40)]
    online = store.get_online_features(features=store.get_feature_service("income_v1"), entity_rows=users)
    frame = pd.DataFrame(online.to_dict())
    fresh = frame[frame["age"].notna()]
    assert len(fresh) > 0
    scores = np.asarray(model.predict(fresh[FEATURES]))
    assert scores.shape == (len(fresh),) and ((scores >= 0) & (scores <= 1)).all()
    # Feast returns None for missing values: the model imputes them itself.
    raw = {f: [None] for f in FEATURES}
    assert 0 <= float(np.asarray(model.predict(pd.DataFrame(raw)))[0]) <= 1


def _logged_run(family: str, params: dict, train: pd.DataFrame, valid: pd.DataFrame) -> str:
    from income.training.trials import log_model

    with mlflow.start_run(run_name=f"gate-test-{family}") as run:
        log_model(fit(family, params, train), valid)
    return run.info.run_id


def test_promotion_gate_and_rollback(training_run):
    """Worse challengers stay challengers, a better one is promoted, rollback restores the old one."""
    from income.training.registry import CHAMPION, HISTORY_TAG, ROLLED_BACK_TAG, register_and_gate, rollback
    from income.training.splits import split_by_time

    name = "income-classifier-gate-test"  # its own registered model: the pipeline's stays untouched
    client = mlflow.MlflowClient()
    uri = (
        client.get_run(training_run.best_run_id).data.tags.get("training_set_uri")
        or client.get_model_version("income-classifier", training_run.decision.model_version).tags[
            "training_set_uri"
        ]
    )
    train, valid, test = split_by_time(pd.read_parquet(uri), 0.15, 0.15)

    def champion() -> str:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)

    weak = register_and_gate(
        _logged_run("decision_tree", {"max_depth": 1}, train, valid), test, 0.01, {}, name
    )
    assert weak.promoted and weak.champion_test_roc_auc == -1.0  # the first model becomes champion

    strong_run = _logged_run("xgboost", {"n_estimators": 80, "max_depth": 4}, train, valid)
    strong = register_and_gate(strong_run, test, 0.01, {}, name)
    assert strong.promoted and champion() == strong.model_version
    assert strong.challenger_test_roc_auc >= strong.champion_test_roc_auc + 0.01
    # The champion is scored on the same test rows as when it was the challenger.
    assert strong.champion_test_roc_auc == weak.challenger_test_roc_auc

    worse = register_and_gate(
        _logged_run("decision_tree", {"max_depth": 2}, train, valid), test, 0.01, {}, name
    )
    assert not worse.promoted and champion() == strong.model_version
    tags = client.get_model_version(name, worse.model_version).tags
    assert tags["promotion.decision"] == "rejected"
    assert float(tags["promotion.champion_test_roc_auc"]) == pytest.approx(strong.challenger_test_roc_auc)
    assert str(client.get_model_version_by_alias(name, "challenger").version) == worse.model_version

    assert rollback(name) == weak.model_version
    assert champion() == weak.model_version
    assert json.loads(client.get_registered_model(name).tags[HISTORY_TAG]) == [weak.model_version]
    assert ROLLED_BACK_TAG in client.get_model_version(name, strong.model_version).tags
    with pytest.raises(RuntimeError, match="nothing to roll back to"):
        rollback(name)  # the first champion has no predecessor


def test_lineage_leads_from_the_champion_back_to_the_raw_input(training_run, feature_run):
    from income.platform import lineage

    chain = dict(lineage.champion_chain())
    feature_run = next(r for r in lineage.runs() if r["id"] == chain["feature run"])
    assert chain["raw input"] == feature_run["raw"]["source"]
    assert feature_run["raw"]["source"].startswith("synthetic backfill until ")
    assert chain["raw sha256"] == feature_run["raw"]["sha256"]
    assert chain["feature set"] == feature_run["feature_set_version"]
    assert chain["MLflow run"] == training_run.final_run_id
    assert "  table demographic" in chain
    logged = mlflow.artifacts.load_dict(f"runs:/{training_run.parent_run_id}/lineage.json")
    assert logged["model_version"] == training_run.decision.model_version


def test_the_parent_run_keeps_the_lineage_picture_and_the_leaderboard_chart(training_run):
    parent = training_run.parent_run_id
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent)}
    assert {"lineage.json", "lineage.svg", "lineage.html", "leaderboard.png"} <= artifacts
    svg = mlflow.artifacts.load_text(f"runs:/{parent}/lineage.svg")
    assert svg.startswith("<svg") and f"/runs/{training_run.final_run_id}'" in svg
    assert f"#/models/income-classifier/versions/{training_run.decision.model_version}'" in svg
    chart = Path(mlflow.artifacts.download_artifacts(f"runs:/{parent}/leaderboard.png"))
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_retried_select_and_register_changes_nothing(training_run):
    """Flyte retries select_and_register (retries=2): a second attempt with the same inputs
    registers no new version, returns the same outcome and leaves the champion history alone."""
    from income.training.final import FinalModel
    from income.training.registry import HISTORY_TAG, MODEL_NAME
    from income.training.trials import TrialResult
    from tasks.training import TrainingConfig, TrainingSet, refit_best, select_and_register

    client = mlflow.MlflowClient()
    registered = client.get_registered_model(MODEL_NAME)
    versions = len(client.search_model_versions(f"name = '{MODEL_NAME}'"))
    # The first attempt's inputs, rebuilt from what it recorded on the version and the runs.
    tags = client.get_model_version(MODEL_NAME, training_run.decision.model_version).tags
    parent = client.get_run(training_run.parent_run_id)
    training_set = TrainingSet(
        uri=tags["training_set_uri"],
        rows=int(tags["training_set_rows"]),
        sha256=tags["training_set_sha256"],
        feature_service=tags["feature_service"],
        feature_refs=tags["feature_refs"].split(","),
        definitions_version=tags["feast_definitions_version"],
        parent_run_id=training_run.parent_run_id,
        valid_share=float(parent.data.params["valid_share"]),
        test_share=float(parent.data.params["test_share"]),
        lineage={k: v for k, v in tags.items() if k.startswith("lineage.")},
    )
    trials = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{training_run.parent_run_id}' "
        "and attributes.status = 'FINISHED' and tags.run_role = 'trial'",
        output_format="list",
    )
    results = [
        TrialResult(
            trial_id=int(r.data.tags["trial_id"]),
            model_family=r.data.params["model_family"],
            run_id=r.info.run_id,
            val_roc_auc=r.data.metrics["val_roc_auc"],
            fit_seconds=r.data.metrics["fit_seconds"],
        )
        for r in trials
    ] + [None]  # the failed trial

    # refit_best retried finds the final model the first attempt logged, and refits nothing.
    first = FinalModel(**json.loads(client.get_run(training_run.final_run_id).data.tags["final_model"]))
    final = refit_best(training_set=training_set, results=results, cfg=TrainingConfig())
    assert final == first
    retry = select_and_register(training_set=training_set, results=results, final=final, cfg=TrainingConfig())

    assert retry == training_run
    assert len(client.search_model_versions(f"name = '{MODEL_NAME}'")) == versions
    assert client.get_registered_model(MODEL_NAME).tags[HISTORY_TAG] == registered.tags[HISTORY_TAG]
    assert client.get_registered_model(MODEL_NAME).aliases == registered.aliases


def test_the_registered_model_is_the_best_trial_refit_calibrated_and_thresholded(training_run):
    from income.training.model import FittedModel
    from income.training.registry import MODEL_NAME
    from income.training.splits import split_by_time

    client = mlflow.MlflowClient()
    version = client.get_model_version(MODEL_NAME, training_run.decision.model_version)
    final = client.get_run(training_run.final_run_id)
    trial = client.get_run(training_run.best_run_id)
    train, valid, test = split_by_time(pd.read_parquet(version.tags["training_set_uri"]), 0.15, 0.15)

    assert final.data.tags["run_role"] == "final" and final.data.tags["trial_run_id"] == trial.info.run_id
    assert int(final.data.params["refit_rows"]) == len(train) + len(valid)
    if trial.data.params["model_family"] == "xgboost":  # more rows, proportionally more rounds
        growth = (len(train) + len(valid)) / len(train)
        rounds = int(trial.data.params["boosting_rounds"])
        assert int(final.data.params["n_estimators"]) == round(rounds * growth)
    artifacts = {a.path for a in client.list_artifacts(final.info.run_id, "calibration")}
    assert artifacts == {"calibration/reliability_validation.png", "calibration/reliability_test.png"}
    assert version.tags["calibration"] in ("none", "platt", "isotonic")
    # The threshold travels in the version's tags (batch scoring) and in the model (the service).
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version.version}")
    model: FittedModel = pyfunc.unwrap_python_model().model
    assert model.threshold == float(version.tags["decision_threshold"])
    assert 0 < model.threshold < 1
    # The final score on the test rows is the model's own, at its threshold.
    scores = np.asarray(pyfunc.predict(test[FEATURES]))
    accuracy = float(((scores >= model.threshold).astype(int) == test["label"].to_numpy()).mean())
    assert accuracy == pytest.approx(final.data.metrics["test_accuracy"])


def test_the_final_model_is_sliced_by_sex_and_race_on_its_test_rows(training_run):
    from income.training import fairness
    from income.training.registry import MODEL_NAME
    from income.training.splits import split_by_time

    client = mlflow.MlflowClient()
    version = client.get_model_version(MODEL_NAME, training_run.decision.model_version)
    final = client.get_run(training_run.final_run_id)
    _, _, test = split_by_time(pd.read_parquet(version.tags["training_set_uri"]), 0.15, 0.15)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version.version}")
    threshold = float(version.tags["decision_threshold"])
    expected = fairness.gaps(
        fairness.slices(test, test["label"], np.asarray(pyfunc.predict(test[FEATURES])), threshold)
    )
    assert expected  # the synthetic population has groups large enough to compare
    assert {k: final.data.metrics[f"fairness_{k}"] for k in expected} == pytest.approx(expected)
    slices = pd.read_json(
        mlflow.artifacts.download_artifacts(run_id=final.info.run_id, artifact_path="fairness/slices.json"),
        orient="split",
    )
    assert set(slices["attribute"]) == {"sex", "race"} and slices["rows"].sum() == 2 * len(test)
    attribute, gap = fairness.worst_equalized_odds(expected)
    assert version.tags["fairness_worst_equalized_odds_gap"] == f"{attribute}={gap:.4f}"


def test_a_fairness_gap_over_the_limit_refuses_promotion(training_run):
    """The gate's fairness check: the same run, gated again under a new name with a limit it breaks."""
    from income.training.registry import register_and_gate
    from income.training.splits import split_by_time

    client = mlflow.MlflowClient()
    version = client.get_model_version("income-classifier", training_run.decision.model_version)
    _, _, test = split_by_time(pd.read_parquet(version.tags["training_set_uri"]), 0.15, 0.15)
    decision = register_and_gate(
        training_run.final_run_id, test, 0.0, {}, "income-classifier-fairness-test", blocked="gap 0.2 > 0.1"
    )
    assert not decision.promoted and "gap 0.2 > 0.1" in decision.reason
    assert client.get_registered_model("income-classifier-fairness-test").aliases.get("champion") is None
