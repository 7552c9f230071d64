"""MLflow's artifacts on object storage: what a run logs lands in the bucket and loads back."""

from __future__ import annotations

import boto3
import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from income.platform.tracking import configure


class Doubler(PythonModel):
    """A tiny pyfunc model: enough to round-trip a model's files through the artifact store."""

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:
        return model_input["x"] * 2


def test_artifacts_and_models_go_to_the_bucket_and_load_back(s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DESTINATION", f"{s3_bucket}/mlflow")
    configure("income-object-store-test")
    with mlflow.start_run() as run:
        mlflow.log_dict({"feature_service": "income_v1"}, "contract/contract.json")
        # Requirements given: inferring them starts a subprocess that imports the model (slow).
        logged = mlflow.pyfunc.log_model(name="model", python_model=Doubler(), pip_requirements=["pandas"])

    assert run.info.artifact_uri.startswith(f"{s3_bucket}/mlflow/")
    assert mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/contract/contract.json") == {
        "feature_service": "income_v1"
    }
    loaded = mlflow.pyfunc.load_model(logged.model_uri)
    assert loaded.predict(pd.DataFrame({"x": [1, 4]})).tolist() == [2, 8]
    keys = [
        o["Key"]
        for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket.removeprefix("s3://"))["Contents"]
    ]
    assert any(k.endswith("contract/contract.json") for k in keys)
    assert any(k.endswith("MLmodel") for k in keys)
