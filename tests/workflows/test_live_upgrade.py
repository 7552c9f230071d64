"""The whole upgrade loop on live traffic: shadow, then A/B, outcomes, the analysis, the green
button, the red button, with the service answering 200 throughout."""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import contextmanager

import httpx
import mlflow
import pandas as pd
import pytest

from income.monitoring import buttons
from income.monitoring.ab_test import COLLECTING, PROMOTE, read_analysis
from income.monitoring.prediction_log import read_log
from income.platform.settings import offline_store_uri
from income.training.model import fit
from income.training.registry import seats
from tests.serving.service_process import service_process

pytestmark = pytest.mark.integration

MODEL = "income-classifier-loop-test"
RELOAD_SECONDS = 0.5


def _register(training_set: pd.DataFrame, family: str, params: dict, contract: dict[str, str]) -> str:
    from income.data.schema import service_features
    from income.training.trials import log_model

    features = service_features(contract["feature_service"])
    with mlflow.start_run(run_name=f"loop-test-{family}") as run:
        log_model(fit(family, params, training_set, features=features), training_set)
    return str(mlflow.register_model(f"runs:/{run.info.run_id}/model", MODEL, tags=contract).version)


@pytest.fixture(scope="module")
def versions(champion):
    """A weak champion on income_v1 (a one-split tree) and a strong challenger on income_v2
    (XGBoost, its training set built by the training pipeline's task) of MODEL."""
    from tasks.training import TrainingConfig, build_training_set

    name, version, training_set = champion
    registry = mlflow.MlflowClient()
    tags = registry.get_model_version(name, version).tags
    contract = {k: tags[k] for k in ("feature_service", "feature_refs")}
    weak = _register(training_set, "decision_tree", {"max_depth": 1}, contract)
    v2 = build_training_set(cfg=TrainingConfig(feature_service="income_v2"))
    assert v2.feature_service == "income_v2" and "history:records_total" in v2.feature_refs
    v2_contract = {"feature_service": "income_v2", "feature_refs": ",".join(v2.feature_refs)}
    strong = _register(pd.read_parquet(v2.uri), "xgboost", {"n_estimators": 80, "max_depth": 5}, v2_contract)
    registry.set_registered_model_tag(MODEL, "champion_history", f'["{weak}"]')
    registry.set_registered_model_alias(MODEL, "champion", weak)
    registry.set_registered_model_alias(MODEL, "challenger", strong)
    return weak, strong, sorted(set(training_set.user_id.astype(int)))


class Traffic:
    """Requests for the users in a loop on a thread; every status counted."""

    def __init__(self, base: str, users: list[int]) -> None:
        self.base, self.users = base, users
        self.statuses: Counter = Counter()
        self.versions: list[tuple[str, str]] = []  # (model version, feature service) per 200
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as http:
            i = 0
            while not self._stop.is_set():
                answer = http.post("/predict", json={"user_id": self.users[i % len(self.users)]})
                self.statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    prediction = answer.json()["predictions"][0]
                    self.versions.append((prediction["model_version"], prediction["feature_service"]))
                i += 1

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def wait_for_version(self, version: str, timeout: float = 10.0) -> float:
        """Seconds until answers come from `version` (the service follows the alias)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.versions and self.versions[-1][0] == version:
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"still answering v{self.versions[-1] if self.versions else None}")


@contextmanager
def service(mode: str):
    settings = {
        "INCOME_SERVE_MODEL": MODEL,
        "INCOME_SERVE_CHALLENGER_MODE": mode,
        "INCOME_SERVE_AB_SHARE": "0.5",
        "INCOME_SERVE_RELOAD_SECONDS": str(RELOAD_SECONDS),
    }
    with service_process(**settings) as (base, _):
        yield base


def _scoreable(base: str, users: list[int]) -> list[int]:
    answer = httpx.post(f"{base}/predict", json={"user_ids": users}, timeout=30)
    missing = set(answer.json().get("user_ids", [])) if answer.status_code == 404 else set()
    return [u for u in users if u not in missing]


def _monitor(**plan):
    from tasks.monitoring import MonitoringConfig
    from workflows.monitoring import monitoring

    return monitoring(cfg=MonitoringConfig(model_name=MODEL, **plan)).live


# Large effects on a small population: the plan needs about 90 users per arm.
PLAN = {"baseline_accuracy": 0.7, "minimal_effect": 0.15}


def test_shadow_then_ab_then_the_green_and_the_red_button(versions, valkey_server):
    weak, strong, users = versions
    with service("shadow") as base:
        scoreable = _scoreable(base, users)
        assert len(scoreable) > 250
        for user in scoreable[:40]:  # too few users yet: no decision, and no promotion
            assert (
                httpx.post(f"{base}/predict", json={"user_id": user}).json()["predictions"][0]["variant"]
                == "champion"
            )
    early = _monitor(**PLAN)
    assert early.decision == COLLECTING, early.reason
    log = read_log(offline_store_uri())
    shadows = log[(log["model_name"] == MODEL) & (log["variant"] == "shadow")]
    assert len(shadows) == 40 and set(shadows["feature_service"]) == {"income_v2"}
    assert shadows["records_total"].notna().all()  # the v2 challenger's own feature, logged
    with pytest.raises(PermissionError, match="collecting"):
        buttons.promote(MODEL, analysis=read_analysis(offline_store_uri()))

    with service("ab") as base:
        seen = Counter()
        for user in scoreable:
            answer = httpx.post(f"{base}/predict", json={"user_id": user}).json()["predictions"][0]
            seen[(answer["variant"], answer["model_version"], answer["feature_service"])] += 1
        # Each arm answers with its own model, reading its own feature service.
        assert set(seen) == {("champion", weak, "income_v1"), ("challenger", strong, "income_v2")}, seen
        assert min(seen.values()) > 90, seen
        decided = _monitor(**PLAN)
        assert decided.decision == PROMOTE, decided.reason
        analysis = read_analysis(offline_store_uri())
        assert analysis.mode == "ab" and (analysis.champion_version, analysis.challenger_version) == (
            weak,
            strong,
        )
        assert analysis.challenger_users >= analysis.planned_users_per_arm

        with Traffic(base, scoreable) as traffic:
            assert buttons.promote(MODEL, analysis=analysis) == strong  # the green button
            assert seats(MODEL)[0] == strong
            assert traffic.wait_for_version(strong) < 10
            assert buttons.roll_back(MODEL) == weak  # the red button
            assert traffic.wait_for_version(weak) < 10
            time.sleep(0.5)
        assert set(traffic.statuses) == {200}, traffic.statuses  # no error while switching
        # The model and its feature service move together, both ways.
        assert {(strong, "income_v2"), (weak, "income_v1")} <= set(traffic.versions)

    registry = mlflow.MlflowClient()
    promoted = registry.get_model_version(MODEL, strong).tags
    assert promoted["promotion.decision"] == "promoted" and "better" in promoted["promotion.reason"]
    assert "rolled_back" in promoted
    with pytest.raises(PermissionError, match="was rolled back"):  # not on the evidence from before
        buttons.promote(MODEL, analysis=read_analysis(offline_store_uri()))
    forced = buttons.promote(MODEL, force_reason="incident 42: v1 misbehaves", analysis=None)
    assert (
        forced == strong
        and "incident 42" in registry.get_model_version(MODEL, strong).tags["promotion.reason"]
    )


def test_monitoring_alerts_are_recorded_and_can_fail_the_run(versions):
    """A latency limit no request meets: the alert is recorded, and with fail_on_alert the run fails."""
    from income.monitoring.alerts import AlertConfig
    from tasks.monitoring import MonitoringConfig
    from workflows.monitoring import monitoring

    strict = AlertConfig(latency_p99_ms=0.001, min_predictions=10, window_hours=24 * 365)
    outcome = monitoring(cfg=MonitoringConfig(model_name=MODEL, alerts=strict))
    assert outcome.alerts.predictions_checked >= 10
    assert any("latency p99" in message for message in outcome.alerts.alerts), outcome.alerts
    with pytest.raises(Exception, match="monitoring alert"):
        monitoring(cfg=MonitoringConfig(model_name=MODEL, alerts=strict, fail_on_alert=True))
