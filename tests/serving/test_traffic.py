"""Challenger traffic, the prediction log and /metrics, against real Valkey, Feast and MLflow."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from income.inference.onnx_trees import TOLERANCE
from income.monitoring.prediction_log import STREAM, drain, read_log
from income.training.model import FEATURES, fit
from serving.app import create_app
from serving.settings import ServeSettings
from serving.traffic import in_challenger_arm
from tests.serving.service_process import service_process

pytestmark = pytest.mark.integration

MODEL = "income-classifier-traffic-test"


def test_the_ab_draw_is_sticky_near_its_share_and_new_per_experiment():
    users = range(1, 20_001)
    first = [in_challenger_arm(u, 0.3, "challenger-v2") for u in users]
    assert first == [in_challenger_arm(u, 0.3, "challenger-v2") for u in users]  # sticky
    assert abs(np.mean(first) - 0.3) < 0.015
    other = [in_challenger_arm(u, 0.3, "challenger-v3") for u in users]
    assert 0.05 < np.mean(np.array(first) != np.array(other)) < 0.6  # a new draw, not the same arm
    assert not any(in_challenger_arm(u, 0.0, "x") for u in users)
    assert all(in_challenger_arm(u, 1.0, "x") for u in users)


def _register(training_set: pd.DataFrame, family: str, params: dict, contract: dict[str, str]) -> str:
    from income.training.trials import log_model

    with mlflow.start_run(run_name=f"traffic-test-{family}") as run:
        log_model(fit(family, params, training_set), training_set)
    return str(mlflow.register_model(f"runs:/{run.info.run_id}/model", MODEL, tags=contract).version)


@pytest.fixture(scope="module")
def seats(champion):
    """MODEL's champion (XGBoost) and challenger (logistic regression), with the scoring tests'
    contract: (champion version, challenger version)."""
    name, version, training_set = champion
    registry = mlflow.MlflowClient()
    contract = dict(registry.get_model_version(name, version).tags)
    contract = {k: contract[k] for k in ("feature_service", "feature_refs", "decision_threshold")}
    first = _register(training_set, "xgboost", {"n_estimators": 30, "max_depth": 3}, contract)
    second = _register(training_set, "logistic_regression", {"C": 0.5}, contract)
    registry.set_registered_model_alias(MODEL, "champion", first)
    registry.set_registered_model_alias(MODEL, "challenger", second)
    return first, second


@pytest.fixture(scope="module")
def users(champion):
    """Users with a row of every view online (scoreable)."""
    from income.features.feature_store import FEATURE_SERVICE, get_store

    store = get_store()
    read = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE),
        entity_rows=[{"user_id": u} for u in range(1, 601)],
    ).to_dict(include_event_timestamps=True)
    frame = pd.DataFrame(read)
    stamps = ["age__ts", "marital_status__ts", "workclass__ts", "capital_net__ts"]
    known = frame[(frame[stamps] > 0).all(axis=1)].reset_index(drop=True)
    assert len(known) > 100
    return known


def _client(mode: str, share: float = 0.5) -> TestClient:
    settings = ServeSettings(model_name=MODEL, challenger_mode=mode, ab_share=share, reload_seconds=0.5)
    return TestClient(create_app(settings))


def _probabilities(version: str, frame: pd.DataFrame) -> np.ndarray:
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}")
    return np.asarray(model.predict(frame[FEATURES]), dtype=float)


@pytest.fixture
def empty_log(valkey_server, tmp_path):
    """The stream drained (earlier tests' entries set aside); yields a fresh offline root to drain into."""
    client = valkey_server.settings.client()
    drain(client, str(tmp_path / "earlier"))
    assert client.xlen(STREAM) == 0
    return str(tmp_path / "offline")


def test_a_service_logs_to_the_stream_its_settings_name(seats, users, valkey_server, empty_log):
    """INCOME_SERVE_PREDICTION_LOG_STREAM: e.g. the serving benchmark's, never drained into the log."""
    client = valkey_server.settings.client()
    elsewhere = "income:prediction_log:elsewhere"
    client.delete(elsewhere)
    settings = ServeSettings(model_name=MODEL, prediction_log_stream=elsewhere)
    with TestClient(create_app(settings)) as app:
        assert app.post("/predict", json={"user_id": int(users.user_id.iloc[0])}).status_code == 200
    assert (client.xlen(elsewhere), client.xlen(STREAM)) == (1, 0)
    client.delete(elsewhere)


def test_shadow_scores_are_logged_never_returned(seats, users, valkey_server, empty_log):
    champion, challenger = seats
    sample = users.iloc[:40]
    with _client("shadow") as client:
        health = client.get("/health").json()
        assert health["traffic"] == {
            "mode": "shadow",
            "ab_share": 0.5,
            "active": True,
            "prediction_log": True,
        }
        assert health["challenger"]["version"] == challenger
        answers = [client.post("/predict", json={"user_id": int(u)}).json() for u in sample.user_id]
    assert {p["variant"] for a in answers for p in a["predictions"]} == {"champion"}
    assert {p["model_version"] for a in answers for p in a["predictions"]} == {champion}

    summary = drain(valkey_server.settings.client(), empty_log)
    assert (summary.entries, summary.remaining) == (2 * len(sample), 0)
    logged = read_log(empty_log)
    served, shadow = logged[logged.served], logged[~logged.served]
    assert served.request_id.tolist() == [a["request_id"] for a in answers]
    assert served.probability.tolist() == [a["predictions"][0]["probability"] for a in answers]
    assert set(shadow.request_id) == set(served.request_id)
    assert set(shadow.variant) == {"shadow"} and set(shadow.model_version) == {challenger}
    expected = _probabilities(challenger, sample)
    np.testing.assert_allclose(
        shadow.set_index("user_id").loc[sample.user_id, "probability"],
        expected,
        rtol=0,
        atol=TOLERANCE,  # one user per call: ONNX Runtime's trees (income.inference.onnx_trees)
    )
    # The logged features are the ones scored: the champion's pyfunc on them gives the served scores.
    np.testing.assert_allclose(_probabilities(champion, served), served.probability, rtol=0, atol=TOLERANCE)
    assert served[[c for c in logged if c.startswith("ts__")]].notna().all().all()


def test_ab_traffic_is_a_sticky_split_and_every_answer_names_its_variant(
    seats, users, valkey_server, empty_log
):
    champion, challenger = seats
    ids = users.user_id.astype(int).tolist()[:200]
    with _client("ab", share=0.5) as client:
        first = client.post("/predict", json={"user_ids": ids}).json()["predictions"]
        again = client.post("/predict", json={"user_ids": ids[::-1]}).json()["predictions"][::-1]
    variant = {p["user_id"]: (p["variant"], p["model_version"]) for p in first}
    assert variant == {p["user_id"]: (p["variant"], p["model_version"]) for p in again}  # sticky
    arms = pd.Series([v for v, _ in variant.values()]).value_counts()
    assert set(arms.index) == {"champion", "challenger"} and 60 < arms["challenger"] < 140
    assert {(v, m) for v, m in variant.values()} == {("champion", champion), ("challenger", challenger)}
    in_arm = [u for u in ids if variant[u][0] == "challenger"]
    rows = users.set_index("user_id").loc[in_arm].reset_index()
    answered = {p["user_id"]: p["probability"] for p in first}
    np.testing.assert_allclose(
        [answered[u] for u in in_arm], _probabilities(challenger, rows), rtol=0, atol=TOLERANCE
    )
    drain(valkey_server.settings.client(), empty_log)
    logged = read_log(empty_log)
    assert len(logged) == 2 * len(ids) and logged.served.all()  # two requests; no shadows in A/B


def _samples(text: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_count_the_requests_sent_to_every_worker(seats, users):
    """Two worker processes; a scrape reaches one, and counts what both answered."""
    champion, _ = seats
    known = int(users.user_id.iloc[0])
    settings = {"INCOME_SERVE_MODEL": MODEL, "INCOME_SERVE_WORKERS": "2"}
    with service_process(**settings) as (base, _):
        before = _samples(httpx.get(f"{base}/metrics").text)
        workers, health_calls = set(), 0
        while len(workers) < 2 and health_calls < 200:  # a new connection each: either worker may answer
            workers.add(httpx.get(f"{base}/health").json()["process_id"])
            health_calls += 1
        assert len(workers) == 2, "one worker answered every new connection"
        for _ in range(7):
            assert httpx.post(f"{base}/predict", json={"user_id": known}).status_code == 200
        assert httpx.post(f"{base}/predict", json={"user_ids": [known, 10**12]}).status_code == 404
        for _ in range(3):
            assert httpx.post(f"{base}/predict", json={"user_id": -1}).status_code == 422
        assert httpx.get(f"{base}/nowhere").status_code == 404
        scraped = httpx.get(f"{base}/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    after = _samples(scraped.text)

    def increase(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    def requests(route: str, status: str, method: str = "POST") -> float:
        return increase("income_http_requests_total", method=method, route=route, status=status)

    assert requests("/health", "200", "GET") == health_calls
    assert requests("/predict", "200") == 7
    assert requests("/predict", "404") == 1
    assert requests("/predict", "422") == 3
    assert requests("unmatched", "404", "GET") == 1
    assert increase("income_http_request_duration_seconds_count", method="POST", route="/predict") == 11
    assert increase("income_predictions_total", model_version=champion, variant="champion") == 7
    assert increase("income_prediction_probability_count", variant="champion") == 7
    for view in ("demographic", "relationship", "occupation", "history"):
        assert increase("income_feature_age_seconds_count", view=view) == 7
        assert increase("income_feature_age_seconds_sum", view=view) > 0


def test_every_200_is_in_the_log_after_kill_9_under_load(seats, users, valkey_server, empty_log):
    ok: list[str] = []
    stop = threading.Event()

    def load(base: str, offset: int) -> None:
        with httpx.Client(base_url=base, timeout=5) as http:
            i = offset
            while not stop.is_set():
                user = int(users.user_id.iloc[i % len(users)])
                try:
                    answer = http.post("/predict", json={"user_id": user})
                except httpx.HTTPError:
                    return  # the server is gone
                if answer.status_code == 200:
                    ok.append(answer.json()["request_id"])
                i += 4

    settings = {"INCOME_SERVE_MODEL": MODEL, "INCOME_SERVE_CHALLENGER_MODE": "shadow"}
    with service_process(**settings) as (base, server):
        threads = [threading.Thread(target=load, args=(base, k)) for k in range(4)]
        try:
            for thread in threads:
                thread.start()
            while len(ok) < 300:
                time.sleep(0.05)
            server.send_signal(signal.SIGKILL)  # mid-flight: no shutdown, no flush
            server.wait(timeout=10)
        finally:
            stop.set()
    for thread in threads:
        thread.join(timeout=10)
    drain(valkey_server.settings.client(), empty_log)
    logged = read_log(empty_log)
    answered = set(ok)
    assert len(answered) >= 300
    assert answered <= set(logged.request_id), f"{len(answered - set(logged.request_id))} answers not logged"
    assert set(logged[~logged.served].request_id) >= answered  # their shadow scores too
