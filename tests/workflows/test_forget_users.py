"""forget_users erases people from every store: raw history, versions, training sets, predictions, Valkey."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from income.data.schema import ENTITY_KEY

pytestmark = pytest.mark.integration

DAYS = ["2026-03-01T02:00:00Z", "2026-03-02T02:00:00Z", "2026-03-03T02:00:00Z"]


def _traces(folder, user_ids: set[int]) -> list[str]:
    """Every parquet file under `folder` whose user_id column holds one of the users."""
    found = []
    for path in sorted(folder.rglob("*.parquet")):
        schema = pq.read_schema(path)
        if ENTITY_KEY not in schema.names:
            continue
        ids = pd.to_numeric(pq.read_table(path, columns=[ENTITY_KEY]).column(0).to_pandas(), errors="coerce")
        if set(ids.dropna().astype("int64")) & user_ids:
            found.append(str(path.relative_to(folder)))
    return found


def _log_predictions(users: list[int]) -> None:
    """Prediction-log entries for the users: one drained to the offline store, one still in the stream."""
    from income.monitoring.prediction_log import STREAM, drain, encode
    from income.platform.settings import ValkeySettings, offline_store_uri

    client = ValkeySettings.from_env().client()

    def append() -> None:
        for user in users:
            entry = {
                "request_id": "r",
                "time": 1.7e9,
                "user_id": user,
                "model_name": "m",
                "model_version": "1",
            }
            entry |= {
                "variant": "champion",
                "served": True,
                "feature_service": "income_v1",
                "probability": 0.5,
            }
            entry |= {"label": "<=50K", "threshold": 0.5, "latency_ms": 1.0, "features": {"age": 40}}
            client.xadd(STREAM, {"e": encode(entry | {"feature_times": {"demographic": 1.6e9}})})

    append()
    assert drain(client, offline_store_uri()).entries == len(users)
    append()


def _in_stream(users: set[int]) -> set[int]:
    import json

    from income.monitoring.prediction_log import STREAM
    from income.platform.settings import ValkeySettings

    entries = ValkeySettings.from_env().client().xrange(STREAM)
    return {json.loads(fields[b"e"])["user_id"] for _, fields in entries} & users


@pytest.fixture(scope="module")
def forgotten(pipeline_env, champion, tmp_path_factory):
    """Two feature runs, a training set, a scored batch, in a runtime of their own; 3 users forgotten."""
    from income.features.feature_store import get_store
    from tasks.config import FeaturePipelineConfig
    from tasks.inference import ScoringConfig, score_batch
    from tasks.training import TrainingConfig, build_training_set
    from workflows.feature_pipeline import feature_pipeline
    from workflows.forget_users import forget_users

    runtime = tmp_path_factory.mktemp("forget") / ".runtime"  # hidden, like the demo's
    mp = pytest.MonkeyPatch()
    mp.setenv("INCOME_RUNTIME", str(runtime))
    mp.setenv("INCOME_OFFLINE_STORE", str(runtime / "offline_store"))
    mp.setenv("FEAST_REGISTRY_PATH", str(runtime / "registry.db"))
    mp.setenv("VALKEY_DB", "8")
    try:
        cfg = FeaturePipelineConfig(
            users=300, seed=13, start="2024-06-01", end="2026-02-27", invalid_share=0.02
        )
        for day in DAYS[:2]:
            feature_pipeline(run_time=pd.Timestamp(day).to_pydatetime(), cfg=cfg)
        training_set = pd.read_parquet(build_training_set(cfg=TrainingConfig()).uri)
        name, version, _ = champion
        score_batch(
            run_time=pd.Timestamp(DAYS[1]).to_pydatetime(),
            cfg=ScoringConfig(model_uri=f"models:/{name}/{version}"),
        )
        predictions = pd.concat(
            pd.read_parquet(p) for p in (runtime / "offline_store" / "predictions").rglob("*.parquet")
        )
        store = get_store()
        online = store.get_online_features(
            features=["demographic:age"], entity_rows=[{ENTITY_KEY: u} for u in range(1, 301)]
        )
        in_valkey = {
            u for u, age in zip(range(1, 301), online.to_dict()["age"], strict=True) if age is not None
        }
        users = sorted(set(training_set[ENTITY_KEY]) & set(predictions[ENTITY_KEY]) & in_valkey)[:3]
        assert len(users) == 3
        _log_predictions(users + [next(u for u in in_valkey if u not in users)])
        assert _traces(runtime, set(users)), "the users must be somewhere before they are forgotten"
        ids = runtime / "forget.csv"
        pd.DataFrame({ENTITY_KEY: users}).to_csv(ids, index=False)
        report = forget_users(user_ids=str(ids))
        yield runtime, set(users), report, cfg, feature_pipeline
    finally:
        mp.undo()


def test_no_trace_is_left_in_any_file_or_in_valkey(forgotten):
    from income.features.feature_store import get_store

    runtime, users, report, _, _ = forgotten
    assert report.users == 3
    assert _traces(runtime, users) == []
    online = get_store().get_online_features(
        features=["demographic:age"], entity_rows=[{ENTITY_KEY: u} for u in sorted(users)]
    )
    assert online.to_dict()["age"] == [None, None, None]
    assert report.removed["online store keys"] == 3
    assert report.removed["feature and label tables (every version)"] > 0
    assert report.removed["training sets"] > 0 and report.removed["predictions"] > 0
    assert report.removed["prediction log (drained)"] == 3 and report.removed["prediction log (stream)"] == 3
    assert _in_stream(users) == set()
    assert len(_in_stream(set(range(1, 301)))) == 1  # the fourth user's entry stays


def test_lineage_keeps_an_audit_record_without_the_ids(forgotten):
    from income.platform import lineage

    _, users, report, _, _ = forgotten
    audit = [r for r in lineage.runs() if r["kind"] == "forget_users"][-1]
    assert audit["users"] == 3 and audit["ids_sha256"] == report.ids_sha256
    # Counts and a digest only: no field could hold the ids.
    assert set(audit) == {"id", "kind", "at", "flyte_execution_id", "users", "ids_sha256", "removed"}
    assert all(isinstance(v, int) for v in audit["removed"].values())


def test_later_runs_cannot_see_them(forgotten):
    from income.features.offline_store import current
    from income.platform.settings import offline_store_uri

    runtime, users, _, cfg, feature_pipeline = forgotten
    feature_pipeline(run_time=pd.Timestamp(DAYS[2]).to_pydatetime(), cfg=cfg)
    published = current(offline_store_uri())
    for name in published.tables:
        assert not set(pd.read_parquet(published.uri(name))[ENTITY_KEY]) & users, name
    assert _traces(runtime, users) == []
