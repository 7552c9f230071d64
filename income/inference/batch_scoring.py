"""Score a batch on Spark and swap its predictions in as the partition of their as_of.

The model is downloaded once on the driver, shipped to the executors, loaded once per
Python worker and applied as a scalar pandas UDF (only the features go to Python; the rows
stay in the JVM). The flow around it (tasks/inference.py wires
it): resolve the model version (income.inference.model_version) and check its feature
contract (income.inference.contract), take the population (income.inference.population)
and its features as of one time (income.inference.batch_features), then `score_and_write`
here; the partition layout is income.inference.predictions'.

Measured end to end (`python -m benchmarks.batch_scoring_workflow --users 1000000 --repeat 2`,
2026-12-05, 2 cores, 24 GiB): `pyflyte run ... batch_scoring` 74.3 s against 28.7 s for one
plain process (DuckDB join + `inplace_predict`), 2.59x where the goal was 1.5x; warm, the
workflow took 30.7 s, of which this module's Spark plan (population, join, filter, scoring,
writes) 22.0 s (40.9 s cold). The driver of `score_batch` peaked at 428 MiB (it holds no
rows), the local JVM (driver + executors) at 2.3 GB. At 10M users (`--users 10000000
--repeat 1 --no-single`): the command 478.6 s (6.4x, with another process busy), a cold run
273.5 s, the Spark plan 213.8 s; the driver still 427 MiB, the local JVM 4.7 GB (its 4g heap
used to the cap). README, Performance, has the tables.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from income.data.schema import ENTITY_KEY, service_features
from income.inference.model_version import ResolvedModel
from income.inference.predictions import partition_uri, staging_uri, swap_into_place

log = logging.getLogger(__name__)

# One loaded model per Python worker process, keyed by model version: filled on first use
# inside a worker, reused by every later batch and task that worker runs.
_WORKER_MODELS: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {}


def predictor(model) -> Callable[[pd.DataFrame], np.ndarray]:
    """The scoring function of a loaded pyfunc model.

    For the project's own IncomeClassifier it is the wrapped model's predict_proba, which
    is what pyfunc.predict computes after MLflow's per-call schema enforcement; that
    enforcement cost 2.5x the scoring itself per Arrow batch, and here the Spark schema
    (the Feast types) already fixes the column types. Any other pyfunc goes through predict.
    """
    from income.training.model import IncomeClassifier

    try:
        python_model = model.unwrap_python_model()
    except Exception:  # noqa: BLE001 - not a PythonModel-based pyfunc
        python_model = None
    if isinstance(python_model, IncomeClassifier):
        return python_model.model.predict_proba
    return model.predict


def worker_model(
    key: str, local_path: Callable[[], str]
) -> tuple[Callable[[pd.DataFrame], np.ndarray], bool]:
    """(predict function, freshly_loaded) for this process: loads `local_path()` once per key."""
    predict = _WORKER_MODELS.get(key)
    if predict is not None:
        return predict, False
    import mlflow.pyfunc

    predict = predictor(mlflow.pyfunc.load_model(local_path()))
    _WORKER_MODELS[key] = predict
    log.info("python worker %d loaded model %s", os.getpid(), key)
    return predict, True


def make_scorer(key: str, spark_file: str, loads, batches):
    """The body of the scoring pandas UDF: batches of feature rows -> their probabilities.

    `spark_file` names the model folder shipped with SparkContext.addFile; `loads` and
    `batches` are Spark accumulators counting model loads and scored batches.
    """

    def local_path() -> str:
        from pyspark import SparkFiles

        return SparkFiles.get(spark_file)

    def score(frames: Iterator[pd.DataFrame]) -> Iterator[pd.Series]:
        for frame in frames:
            predict, fresh = worker_model(key, local_path)
            if fresh:
                loads.add(1)
            batches.add(1)
            yield pd.Series(np.asarray(predict(frame), dtype="float64"))

    return score


@dataclass(frozen=True)
class ScoredPartition:
    uri: str
    rows: int
    positive_share: float
    model_loads: int
    batches: int


def ship_model(spark, model: ResolvedModel) -> tuple[str, Path]:
    """Download the model version once on the driver and ship it to the executors.

    Returns its SparkFiles name and the driver's download folder (remove it after the job).
    """
    import mlflow.artifacts

    name = f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', model.name)}-v{model.version}-{uuid.uuid4().hex[:8]}"
    downloads = Path(tempfile.mkdtemp(prefix="income-model-"))
    local = mlflow.artifacts.download_artifacts(artifact_uri=model.uri, dst_path=str(downloads / "download"))
    folder = downloads / name  # addFile names the folder by its last path element
    Path(local).rename(folder)
    spark.sparkContext.addFile(str(folder), recursive=True)
    return name, downloads


def score_and_write(
    spark,
    features,
    model: ResolvedModel,
    feature_service: str,
    predictions_root: str,
    as_of: pd.Timestamp,
    threshold: float = 0.5,
    partitions: int = 0,
    features_uri: str = "",
) -> ScoredPartition:
    """Score the features DataFrame on Spark and swap in the partition as_of=<label> atomically.

    `partitions`: repartition to this many first; 0 keeps the input's partitioning (for a
    point-in-time join: spark.sql.shuffle.partitions). `features_uri`: also keep the scored
    rows (the input's columns and `probability`) as parquet there; the scoring job writes
    them and the predictions are read back from them, so the input's plan (the join, say)
    runs once.
    """
    from pyspark.sql import functions as F

    spark_file, downloads = ship_model(spark, model)
    loads = spark.sparkContext.accumulator(0)
    batches = spark.sparkContext.accumulator(0)
    if partitions:
        features = features.repartition(partitions)
    scorer = F.pandas_udf(make_scorer(f"{model.uri}#{spark_file}", spark_file, loads, batches), "double")
    # A scalar pandas UDF sends only the features to Python and keeps the rows in the JVM.
    # The model's features are its feature service's (the contract checked before).
    scored = features.withColumn("probability", scorer(F.struct(*service_features(feature_service))))
    target = partition_uri(predictions_root, as_of)
    staging = staging_uri(predictions_root, as_of)
    try:
        if features_uri:
            scored.write.mode("errorifexists").parquet(features_uri)
            scored = spark.read.parquet(features_uri)
        _predictions(scored, model, feature_service, threshold).write.mode("errorifexists").parquet(staging)
    finally:
        shutil.rmtree(downloads, ignore_errors=True)
    written = spark.read.parquet(staging)
    stats = written.agg(F.count("*").alias("rows"), F.avg("predicted_label").alias("positive")).first()

    swap_into_place(spark, staging, target)
    return ScoredPartition(
        uri=target,
        rows=int(stats["rows"]),
        positive_share=float(stats["positive"] or 0.0),
        model_loads=int(loads.value),
        batches=int(batches.value),
    )


def _predictions(scored, model: ResolvedModel, feature_service: str, threshold: float):
    """The prediction rows (income.inference.predictions' columns) of scored feature rows."""
    from pyspark.sql import functions as F

    return scored.select(
        ENTITY_KEY,
        "probability",
        (F.col("probability") >= F.lit(threshold)).cast("int").alias("predicted_label"),
        F.lit(model.name).alias("model_name"),
        F.lit(model.version).alias("model_version"),
        F.lit(feature_service).alias("feature_service"),
        F.current_timestamp().alias("scored_at"),
    )
