"""Batch and online scoring agree: same user, same time, same model -> same probability."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration


def test_batch_scoring_and_predict_give_the_same_probability(champion, feature_run, spark, tmp_path):
    from income.features.feature_store import FEATURE_SERVICE, get_store
    from income.inference.as_of import parse_as_of
    from income.inference.predictions import read_predictions
    from serving.app import create_app
    from serving.settings import ServeSettings
    from tasks.inference import ScoringConfig, score_batch

    name, version, _ = champion
    _, published = feature_run
    # The online store holds each user's latest values as of the materialization's end:
    # scoring the batch as of that instant must see the same feature rows.
    as_of = published.window_end
    store = get_store()
    candidates = [{"user_id": u} for u in range(1, 200)]
    online = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE), entity_rows=candidates
    ).to_dict()
    users = [u for u, age in zip(online["user_id"], online["age"], strict=True) if age is not None][:40]
    assert len(users) >= 20
    population = tmp_path / "users.csv"
    pd.DataFrame({"user_id": users}).to_csv(population, index=False)

    score_batch(
        cfg=ScoringConfig(
            model_uri=f"models:/{name}/{version}",
            as_of=as_of,
            population_uri=str(population),
            predictions_uri=str(tmp_path / "predictions"),
        )
    )
    batch = read_predictions(str(tmp_path / "predictions"), parse_as_of(as_of)).set_index("user_id")

    with TestClient(create_app(ServeSettings(model_name=name))) as client:
        response = client.post("/predict", json={"user_ids": users})
    assert response.status_code == 200, response.text
    for prediction in response.json()["predictions"]:
        assert prediction["model_version"] == str(batch.at[prediction["user_id"], "model_version"])
        assert prediction["probability"] == pytest.approx(
            batch.at[prediction["user_id"], "probability"], abs=1e-9
        )
        assert prediction["label"] == (
            ">50K" if batch.at[prediction["user_id"], "predicted_label"] else "<=50K"
        )
