"""Batch and online scoring agree: the same users are scored (every view of the service within its
TTL), and for each of them same user, same time, same model -> same probability."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration


def test_batch_scoring_and_predict_score_the_same_users_with_the_same_probability(
    champion, feature_run, spark, tmp_path
):
    from income.features.feature_store import FEATURE_SERVICE, get_store
    from income.inference.as_of import parse_as_of
    from income.inference.onnx_trees import TOLERANCE
    from income.inference.predictions import read_predictions
    from income.inference.scoreable import service_views
    from serving.app import create_app
    from serving.settings import ServeSettings
    from tasks.inference import ScoringConfig, score_batch

    name, version, _ = champion
    _, published = feature_run
    # The online store holds each user's latest values as of the materialization's end:
    # scoring the batch as of that instant must see the same feature rows.
    as_of = published.window_end
    store = get_store()
    users = list(range(1, 200))
    online = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE), entity_rows=[{"user_id": u} for u in users]
    ).to_dict(include_event_timestamps=True)
    first_features = [features[0] for features in service_views(store).values()]
    in_valkey = {u for i, u in enumerate(users) if any(online[f"{f}__ts"][i] for f in first_features)}
    population = tmp_path / "users.csv"
    pd.DataFrame({"user_id": users}).to_csv(population, index=False)

    scored = score_batch(
        cfg=ScoringConfig(
            model_uri=f"models:/{name}/{version}",
            as_of=as_of,
            population_uri=str(population),
            predictions_uri=str(tmp_path / "predictions"),
        )
    ).summary
    batch = read_predictions(str(tmp_path / "predictions"), parse_as_of(as_of)).set_index("user_id")

    with TestClient(create_app(ServeSettings(model_name=name))) as client:
        answers = {u: client.post("/predict", json={"user_id": u}) for u in users}
        together = client.post("/predict", json={"user_ids": sorted(batch.index)})
    assert {r.status_code for r in answers.values()} <= {200, 404}
    served = {u for u, r in answers.items() if r.status_code == 200}
    refused = {u for u, r in answers.items() if r.status_code == 404}
    # The same users on both paths: scored in batch <=> 200 online; not scored <=> 404.
    assert served == set(batch.index)
    assert len(refused) == scored.unscored_users
    assert len(served) >= 20 and refused  # both kinds are present
    assert served <= in_valkey
    for user in refused:
        assert answers[user].json()["user_ids"] == [user]
    # One user per call goes through the trees in ONNX Runtime: the same scores within its tolerance.
    for user in served:
        (alone,) = answers[user].json()["predictions"]
        assert alone["probability"] == pytest.approx(batch.at[user, "probability"], abs=TOLERANCE)

    assert together.status_code == 200, together.text
    for prediction in together.json()["predictions"]:
        assert prediction["model_version"] == str(batch.at[prediction["user_id"], "model_version"])
        assert prediction["probability"] == pytest.approx(
            batch.at[prediction["user_id"], "probability"], abs=1e-9
        )
        assert prediction["label"] == (
            ">50K" if batch.at[prediction["user_id"], "predicted_label"] else "<=50K"
        )
