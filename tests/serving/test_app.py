"""The online service against real Valkey, Feast and MLflow: parity, errors, outages, reloads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from income.training.model import FEATURES, fit
from serving.app import create_app
from serving.online_features import OnlineFeatures
from serving.schemas import MAX_USERS
from serving.settings import ServeSettings
from tests.conftest import CHAMPION_THRESHOLD

pytestmark = pytest.mark.integration

UNKNOWN = 10**12  # a valid user id nobody materialized
RELOAD_SECONDS = 0.5
CONTRACT_TAGS = ("feature_service", "feature_refs")


@pytest.fixture(scope="module")
def client(champion):
    name, _, _ = champion
    app = create_app(
        ServeSettings(model_name=name, reload_seconds=RELOAD_SECONDS, valkey_timeout_seconds=0.5)
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def online(champion):
    """The online features of users 1..800 with a row of every view (scoreable), as Feast's SDK
    returns them (with timestamps)."""
    from income.features.feature_store import FEATURE_SERVICE, get_store

    store = get_store()
    rows = [{"user_id": u} for u in range(1, 801)]
    frame = pd.DataFrame(
        store.get_online_features(
            features=store.get_feature_service(FEATURE_SERVICE), entity_rows=rows
        ).to_dict(include_event_timestamps=True)
    )
    every_view = ["age__ts", "marital_status__ts", "workclass__ts", "capital_net__ts"]
    known = frame[(frame[every_view] > 0).all(axis=1)].reset_index(drop=True)
    assert len(known) > 100
    return known


def _expected(name: str, frame: pd.DataFrame) -> np.ndarray:
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    return np.asarray(model.predict(frame[FEATURES]), dtype=float)


def test_one_user_scored_as_the_champion_pyfunc_scores_the_same_online_features(client, champion, online):
    name, version, _ = champion
    row = online.iloc[[0]]
    response = client.post("/predict", json={"user_id": int(row.user_id.iloc[0])})
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    probability = float(_expected(name, row)[0])
    assert prediction["probability"] == probability
    assert prediction["label"] == (">50K" if probability >= CHAMPION_THRESHOLD else "<=50K")
    assert prediction["threshold"] == CHAMPION_THRESHOLD  # the model version's own
    assert (prediction["model_name"], prediction["model_version"]) == (name, version)
    stamps = prediction["feature_timestamps"]
    assert set(stamps) == {"demographic", "relationship", "occupation", "history"}
    for view, first_feature in (
        ("demographic", "age"),
        ("occupation", "workclass"),
        ("history", "capital_net"),
    ):
        seen = pd.Timestamp(stamps[view])
        assert seen.tzinfo is not None and int(seen.timestamp()) == row[f"{first_feature}__ts"].iloc[0]


def test_many_users_scored_in_request_order(client, champion, online):
    name, version, _ = champion
    users = online.user_id.tolist()[::-1]  # more than the inline batch: scored on a worker thread
    response = client.post("/predict", json={"user_ids": users})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["user_id"] for p in predictions] == users
    expected = _expected(name, online.set_index("user_id").loc[users].reset_index())
    assert [p["probability"] for p in predictions] == expected.tolist()
    assert {p["model_version"] for p in predictions} == {version}
    assert all(all(p["feature_timestamps"].values()) for p in predictions)


def test_unknown_users_are_404_and_named(client, online):
    known = int(online.user_id.iloc[0])
    response = client.post("/predict", json={"user_ids": [known, UNKNOWN, UNKNOWN + 1]})
    assert response.status_code == 404
    body = response.json()
    assert body["user_ids"] == [UNKNOWN, UNKNOWN + 1]
    assert str(UNKNOWN) in body["detail"] and str(UNKNOWN + 1) in body["detail"]
    assert client.post("/predict", json={"user_id": UNKNOWN}).status_code == 404


@pytest.fixture
def partial_user(valkey_server, online):
    """A user whose online row holds the demographic view only (written through Feast), removed after."""
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from income.features.feature_store import get_store

    store = get_store()
    user = UNKNOWN + 7
    row = online[online["user_id"] == int(online.user_id.iloc[0])][["age", "sex", "race", "native_country"]]
    frame = row.assign(user_id=user, event_timestamp=pd.Timestamp.now(tz="UTC").floor("s"))
    store.write_to_online_store("demographic", frame.reset_index(drop=True))
    key = _redis_key(
        store.config.project,
        EntityKey(join_keys=["user_id"], entity_values=[Value(int64_val=user)]),
        store.config.entity_key_serialization_version,
    )
    client = valkey_server.settings.client()
    assert client.exists(key)
    yield user
    client.delete(key)


def test_the_direct_reader_reads_what_feasts_sdk_reads(valkey_server, online, partial_user):
    """Every feature service, users with every view, one view only (partial_user) and none."""
    users = [*online.user_id.astype(int).tolist()[:200], partial_user, UNKNOWN]

    async def read_both() -> tuple[str, dict, dict]:
        settings = valkey_server.settings
        direct = await OnlineFeatures.open(settings, timeout=0.5, reader="direct")
        feast = await OnlineFeatures.open(settings, timeout=0.5, reader="feast")
        try:
            names = sorted(direct.services)
            rows = [({n: await r.read(users, n) for n in names}) for r in (direct, feast)]
            return direct.reader, *rows
        finally:
            await direct.close()
            await feast.close()

    reader, direct_rows, feast_rows = asyncio.run(read_both())
    assert reader == "direct"  # its startup check against Feast's SDK passed
    assert set(direct_rows) >= {"income_v1", "income_v2"}
    assert direct_rows == feast_rows
    partial = direct_rows["income_v1"].timestamps
    assert partial["demographic"][-2] is not None and partial["occupation"][-2] is None
    assert all(stamps[-1] is None for stamps in partial.values())


def test_a_user_missing_a_view_online_is_404_as_batch_scoring_leaves_them_unscored(
    client, online, partial_user
):
    from income.features.feature_store import FEATURE_SERVICE, get_store

    store = get_store()
    read = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE), entity_rows=[{"user_id": partial_user}]
    ).to_dict(include_event_timestamps=True)
    assert read["age"] == online["age"].iloc[:1].tolist() and read["age__ts"][0] > 0
    assert read["workclass__ts"] == [0] and read["capital_net__ts"] == [0]  # views with no row

    known = int(online.user_id.iloc[0])
    response = client.post("/predict", json={"user_ids": [known, partial_user]})
    assert response.status_code == 404
    body = response.json()
    assert body["user_ids"] == [partial_user]
    assert str(partial_user) in body["detail"] and "not scoreable" in body["detail"]
    assert client.post("/predict", json={"user_id": partial_user}).status_code == 404
    assert client.post("/predict", json={"user_id": known}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"user_id": "7"},
        {"user_id": 7.0},
        {"user_id": True},
        {"user_id": None},
        {"user_id": 0},
        {"user_id": -3},
        {"user_id": 2**63},
        {"user_id": 1, "user_ids": [1]},
        {"user_ids": []},
        {"user_ids": "1,2"},
        {"user_ids": [1, "2"]},
        {"user_ids": [1, -2]},
        {"user_ids": list(range(1, MAX_USERS + 2))},
        {"user_id": 1, "extra": 1},
        {"userid": 1},
        [1, 2],
        "1",
        7,
        None,
    ],
    ids=lambda body: str(body)[:40],
)
def test_malformed_or_mistyped_bodies_are_422(client, body):
    response = client.post("/predict", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "content, headers",
    [
        (b"", {"content-type": "application/json"}),
        (b"{not json", {"content-type": "application/json"}),
        (b'{"user_id": 1', {"content-type": "application/json"}),
        (b"\xff\xfe\x00", {"content-type": "application/json"}),
        (b'{"user_id": 1}', {"content-type": "text/plain"}),
        (b"user_id=1", {"content-type": "application/x-www-form-urlencoded"}),
        (b'{"user_id": 1e400}', {"content-type": "application/json"}),
    ],
)
def test_bad_bytes_are_422_never_500(client, content, headers):
    response = client.post("/predict", content=content, headers=headers)
    assert response.status_code == 422, response.text


def test_startup_objects_are_frozen_out_of_the_garbage_collector(client):
    import gc

    # Full collections over the imports and models paused a worker 150-250 ms (serving.app).
    assert client.get("/health").status_code == 200
    assert gc.get_freeze_count() > 10_000


def test_health_names_the_model_and_valkey(client, champion):
    name, version, _ = champion
    response = client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    model = body["model"]
    assert (model["name"], model["version"], model["fast_path"], model["runtime"]) == (
        name,
        version,
        True,
        "onnx+booster",
    )
    assert body["valkey"]["ok"] is True
    assert body["features"] == {"reader": "direct", "note": None}


def test_valkey_down_is_503_and_the_service_recovers_by_itself(client, valkey_server, online):
    user = int(online.user_id.iloc[0])
    before = client.post("/predict", json={"user_id": user}).json()
    valkey_server.stop()  # SIGTERM: Valkey writes its snapshot; start() reloads it, same port/password
    try:
        assert valkey_server.pid() is None
        started = time.perf_counter()
        down = client.post("/predict", json={"user_id": user})
        assert down.status_code == 503
        assert "Valkey" in down.json()["detail"] and "unreachable" in down.json()["detail"]
        assert time.perf_counter() - started < 3  # fails fast, no multi-second retry backoff
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["valkey"]["ok"] is False and health.json()["valkey"]["error"]
        assert health.json()["model"]["version"] is not None
    finally:
        valkey_server.start()
    assert valkey_server.settings.client().ping()
    assert client.get("/health").status_code == 200
    after = client.post("/predict", json={"user_id": user})
    assert after.status_code == 200, after.text
    assert after.json()["predictions"] == before["predictions"]


def _register(name: str, training_set: pd.DataFrame, tags: dict[str, str]) -> str:
    from income.training.trials import log_model

    with mlflow.start_run(run_name="serving-test-next-champion") as run:
        log_model(fit("logistic_regression", {"C": 0.5}, training_set), training_set)
    return str(mlflow.register_model(f"runs:/{run.info.run_id}/model", name, tags=tags).version)


def _wait_until(probe: Callable[[], dict], done: Callable[[dict], bool], timeout: float = 60) -> dict:
    """Call `probe` until `done` holds for its answer or the deadline passes; the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if done(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(RELOAD_SECONDS / 5)


def _wait_for_version(client: TestClient, user: int, version: str, timeout: float = 60) -> dict:
    """The first prediction for `user` scored by `version` (or the last answer at the deadline)."""
    answer = _wait_until(
        lambda: client.post("/predict", json={"user_id": user}).json(),
        lambda body: body.get("predictions", [{}])[0].get("model_version") == version,
        timeout,
    )
    assert "predictions" in answer, answer
    return answer["predictions"][0]


def test_a_new_champion_is_served_without_restart_and_a_mismatched_one_is_refused(client, champion, online):
    name, first, training_set = champion
    registry = mlflow.MlflowClient()
    contract = registry.get_model_version(name, first).tags
    user = int(online.user_id.iloc[0])
    try:
        second = _register(name, training_set, {k: contract[k] for k in CONTRACT_TAGS})
        registry.set_registered_model_alias(name, "champion", second)
        prediction = _wait_for_version(client, user, second)
        assert prediction["model_version"] == second
        assert prediction["probability"] == float(_expected(name, online.iloc[[0]])[0])

        # Trained on another feature service: never served, the current champion stays.
        foreign = _register(
            name, training_set, {"feature_service": "income_v0", "feature_refs": contract["feature_refs"]}
        )
        registry.set_registered_model_alias(name, "champion", foreign)
        time.sleep(RELOAD_SECONDS * 4)
        assert (
            client.post("/predict", json={"user_id": user}).json()["predictions"][0]["model_version"]
            == second
        )
        health = client.get("/health").json()
        assert health["model"]["version"] == second
        assert "income_v0" in health["model"]["error"]
    finally:
        registry.set_registered_model_alias(name, "champion", first)
    assert _wait_for_version(client, user, first)["model_version"] == first


def test_a_version_without_a_feature_contract_is_refused_as_batch_scoring_refuses_it(
    client, champion, online
):
    name, first, training_set = champion
    registry = mlflow.MlflowClient()
    user = int(online.user_id.iloc[0])
    try:
        untagged = _register(name, training_set, {})
        registry.set_registered_model_alias(name, "champion", untagged)
        health = _wait_until(
            lambda: client.get("/health").json()["model"],
            lambda model: model["version"] == untagged or f"v{untagged}" in (model["error"] or ""),
        )
        assert health["version"] == first  # never served: the previous champion stays
        prediction = client.post("/predict", json={"user_id": user}).json()["predictions"][0]
        assert prediction["model_version"] == first

        # The same check, word for word, as batch scoring's (tasks.inference.score_batch).
        from income.features.feature_store import get_store
        from income.inference.contract import ContractMismatchError, check_contract

        with pytest.raises(ContractMismatchError) as refused:
            check_contract(name, untagged, registry.get_model_version(name, untagged).tags, get_store())
        assert "has no feature contract" in str(refused.value)
        assert health["error"] == f"cannot use {name} v{untagged}: {refused.value}"
        assert health["failed_version"] == untagged
    finally:
        registry.set_registered_model_alias(name, "champion", first)
    assert _wait_for_version(client, user, first)["model_version"] == first


def test_a_version_that_cannot_load_at_start_up_is_retried_until_it_loads(champion, online):
    """The artifact store is down when the service starts: 503 saying why and when it retries;
    once the artifacts are back the service serves, without a restart or an alias change."""
    name, first, training_set = champion
    registry = mlflow.MlflowClient()
    contract = registry.get_model_version(name, first).tags
    other = "income-classifier-retry-test"  # its own registered model: the session champion stays
    version = _register(other, training_set, {k: contract[k] for k in CONTRACT_TAGS})
    registry.set_registered_model_alias(other, "champion", version)
    artifacts = Path(urlparse(registry.get_model_version_download_uri(other, version)).path)
    away = artifacts.with_name(f"{artifacts.name}.away")
    user = int(online.user_id.iloc[0])
    settings = ServeSettings(
        model_name=other, reload_seconds=RELOAD_SECONDS, retry_seconds=0.1, retry_max_seconds=0.4
    )
    artifacts.rename(away)
    try:
        with TestClient(create_app(settings)) as client:
            down = client.post("/predict", json={"user_id": user})
            assert down.status_code == 503
            assert f"cannot use {other} v{version}" in down.json()["detail"]

            # Retried, not given up on: the attempts go on counting while the artifacts are away.
            health = _wait_until(
                lambda: client.get("/health").json(), lambda body: body["model"]["failed_attempts"] >= 3
            )
            assert health["status"] == "unavailable"
            model = health["model"]
            assert model["version"] is None
            assert model["failed_version"] == version and model["failed_attempts"] >= 3
            assert model["error"].startswith(f"cannot use {other} v{version}: ")
            assert model["next_retry_at"] is not None
            assert client.get("/health").status_code == 503

            away.rename(artifacts)
            prediction = _wait_for_version(client, user, version)
            assert prediction["model_version"] == version
            assert prediction["probability"] == float(_expected(other, online.iloc[[0]])[0])
            recovered = client.get("/health")
            assert recovered.status_code == 200, recovered.text
            model = recovered.json()["model"]
            assert (model["version"], model["error"], model["failed_version"]) == (version, None, None)
            assert (model["failed_attempts"], model["next_retry_at"]) == (0, None)
    finally:
        if away.exists():
            away.rename(artifacts)


def test_openapi_lists_the_endpoints_with_their_models(client):
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/health"} <= set(schema["paths"])
    predict = schema["paths"]["/predict"]["post"]
    assert {"200", "404", "422", "503"} <= set(predict["responses"])
    assert "some view of the feature service has no online row" in predict["responses"]["404"]["description"]
    ok = predict["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/PredictResponse")
    components = schema["components"]["schemas"]
    assert components["PredictRequest"]["examples"] and components["PredictResponse"]["examples"]
    assert "200" in schema["paths"]["/health"]["get"]["responses"]
