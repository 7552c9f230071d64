"""Batch scoring: the model version, the population, point-in-time features, Spark scoring.

The flow (tasks/scoring.py wires it): resolve the model alias to a version and check its
feature contract (income.inference.contract, the same check the online service makes); take the
population (every user of the offline store, or the user_ids of a file); join their
features as of one timestamp through income.features.point_in_time (Feast's offline store, or
the DuckDB ASOF plan); score on Spark with `mapInPandas`, the model loaded once per Python
worker; write the partition `<predictions>/as_of=<label>/` atomically (staging folder,
then two renames), so a re-run for the same as_of replaces it.

The partition column `as_of` lives in the folder name only (hive style, as Spark and
pyarrow expect): readers of the predictions root get it as the folder-safe label
`2026-01-01T00-00-00Z`; `read_predictions` turns it back into a UTC timestamp.
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

from income.data.schema import ENTITY_KEY, FEATURE_TABLES, TIMESTAMP
from income.features.feature_store import FEATURE_SERVICE
from income.features.offline_store import STAGING, current, swap_into_place, table_uri
from income.features.point_in_time import ASOF, point_in_time_features
from income.training.model import FEATURES

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = [
    ENTITY_KEY,
    "probability",
    "predicted_label",
    "model_name",
    "model_version",
    "feature_service",
    "scored_at",
]
AS_OF = "as_of"
_LABEL_FORMAT = "%Y-%m-%dT%H-%M-%S"
_LABEL_PATTERN = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})(\.\d{6})?Z$")
SCORING_ENGINE = ASOF
_SPARK_TYPES = {
    "Int64": "bigint",
    "Int32": "bigint",
    "Float64": "double",
    "Float32": "double",
    "String": "string",
}


class PopulationError(ValueError):
    """The population file is missing, unreadable or lacks usable user_ids."""


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    version: str
    uri: str  # models:/<name>/<version>: immutable, unlike an alias
    tags: dict[str, str]


# ---------------------------------------------------------------------------- model


def parse_model_uri(model_uri: str) -> tuple[str, str | None, str | None]:
    """'models:/name@alias' -> (name, None, alias); 'models:/name/3' -> (name, '3', None)."""
    rest = model_uri.removeprefix("models:/")
    if rest == model_uri or not rest:
        raise ValueError(f"expected models:/<name>@<alias> or models:/<name>/<version>, got {model_uri!r}")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, None, alias
    name, _, version = rest.rpartition("/")
    if not name or not version.isdigit():
        raise ValueError(f"expected models:/<name>@<alias> or models:/<name>/<version>, got {model_uri!r}")
    return name, version, None


def resolve_model(model_uri: str) -> ResolvedModel:
    """The registered version an alias (or version) URI points at, with its tags."""
    from mlflow import MlflowClient

    client = MlflowClient()
    name, version, alias = parse_model_uri(model_uri)
    found = (
        client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    )
    return ResolvedModel(name, str(found.version), f"models:/{name}/{found.version}", dict(found.tags))


# ---------------------------------------------------------------------------- as_of and folders


def parse_as_of(text: str = "") -> pd.Timestamp:
    """An ISO-8601 time as a UTC timestamp (naive means UTC); empty: now, to the second."""
    if not text:
        return pd.Timestamp.now(tz="UTC").floor("s")
    try:
        ts = pd.Timestamp(text)
    except ValueError as error:
        raise ValueError(
            f"as_of must be an ISO-8601 time such as 2026-01-01T00:00:00Z, not {text!r}"
        ) from error
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.floor("us")


def as_of_label(as_of: pd.Timestamp) -> str:
    """Folder-safe and sortable: 2026-01-01T00-00-00Z (microseconds only when present)."""
    micro = f".{as_of.microsecond:06d}" if as_of.microsecond else ""
    return f"{as_of.strftime(_LABEL_FORMAT)}{micro}Z"


def label_as_of(label: str) -> pd.Timestamp:
    """The inverse of as_of_label."""
    match = _LABEL_PATTERN.match(label)
    if not match:
        raise ValueError(f"not an as_of label: {label!r}")
    day, hh, mm, ss, micro = match.groups()
    return pd.Timestamp(f"{day}T{hh}:{mm}:{ss}{micro or ''}", tz="UTC")


def partition_uri(predictions_root: str, as_of: pd.Timestamp) -> str:
    return table_uri(predictions_root, f"{AS_OF}={as_of_label(as_of)}")


# ---------------------------------------------------------------------------- population


def population_from_offline_store(spark, offline_root: str):
    """Distinct user_id over the published feature tables (a Spark DataFrame with one column)."""
    published = current(offline_root)
    frames = [spark.read.parquet(published.uri(t)).select(ENTITY_KEY) for t in FEATURE_TABLES]
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union.distinct()


def population_from_file(uri: str) -> pd.DataFrame:
    """The distinct user_ids of a parquet or CSV file with a `user_id` column, sorted."""
    is_csv = uri.lower().endswith((".csv", ".csv.gz"))
    local = uri.removeprefix("file://")
    if "://" not in local and not os.path.exists(local):
        raise PopulationError(f"population file {uri} does not exist")
    try:
        frame = pd.read_csv(uri) if is_csv else pd.read_parquet(uri)
    except Exception as error:  # noqa: BLE001 - pandas/pyarrow raise many types
        kind = "CSV" if is_csv else "parquet"
        raise PopulationError(f"cannot read population file {uri} as {kind}: {error}") from error
    if ENTITY_KEY not in frame.columns:
        raise PopulationError(
            f"population file {uri} has no {ENTITY_KEY!r} column (columns: {list(frame.columns)})"
        )
    ids = pd.to_numeric(frame[ENTITY_KEY], errors="coerce")
    bad = ids.isna() | (ids != ids.round())
    if bad.any():
        examples = frame.loc[bad, ENTITY_KEY].head(3).tolist()
        raise PopulationError(
            f"population file {uri}: {int(bad.sum())} {ENTITY_KEY} values are not integers, e.g. {examples}"
        )
    users = pd.DataFrame({ENTITY_KEY: np.unique(ids.astype("int64").to_numpy())})
    if users.empty:
        raise PopulationError(f"population file {uri} holds no {ENTITY_KEY}")
    return users


# ---------------------------------------------------------------------------- features


def features_as_of(store, users: pd.DataFrame, as_of: pd.Timestamp, engine: str | None = None, spark=None):
    """Every feature of income_v1 for each user as of `as_of`: one row per user, sorted by user.

    `engine` as in income.features.point_in_time.point_in_time_features; scoring defaults to
    "asof" (SCORING_ENGINE) because Feast's file store drops the entity rows whose every view
    is older than its TTL, where scoring needs a row (all features null) for every user.
    """
    entity_rows = pd.DataFrame({ENTITY_KEY: users[ENTITY_KEY].astype("int64").to_numpy()})
    entity_rows[TIMESTAMP] = as_of
    try:
        # One time for every row: the (time, user) order of the result is the user order.
        return point_in_time_features(store, entity_rows, engine=engine or SCORING_ENGINE, spark=spark)
    except AssertionError as error:  # the row-count check of point_in_time_features
        raise RuntimeError(
            f"the point-in-time join with engine {engine!r} lost entity rows ({error}): Feast's file "
            "store drops users whose features are all older than the views' TTL; use engine 'asof'"
        ) from error


def spark_feature_schema(store, service_name: str = FEATURE_SERVICE) -> str:
    """A DDL schema (user_id, event_timestamp, features) from the service's Feast types."""
    service = store.get_feature_service(service_name)
    columns = [f"{ENTITY_KEY} bigint", f"{TIMESTAMP} timestamp"]
    for projection in service.feature_view_projections:
        for field in projection.features:
            columns.append(f"`{field.name}` {_SPARK_TYPES.get(str(field.dtype), 'string')}")
    return ", ".join(columns)


# ---------------------------------------------------------------------------- scoring on executors

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
    """The function mapInPandas runs: feature batches -> (user_id, probability).

    `spark_file` names the model folder shipped with SparkContext.addFile; `loads` and
    `batches` are Spark accumulators counting model loads and scored batches.
    """

    def local_path() -> str:
        from pyspark import SparkFiles

        return SparkFiles.get(spark_file)

    def score(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            predict, fresh = worker_model(key, local_path)
            if fresh:
                loads.add(1)
            batches.add(1)
            probability = np.asarray(predict(frame[FEATURES]), dtype="float64")
            yield pd.DataFrame({ENTITY_KEY: frame[ENTITY_KEY].to_numpy(), "probability": probability})

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
) -> ScoredPartition:
    """Score the features DataFrame on Spark and swap in the partition as_of=<label> atomically.

    `partitions`: repartition to this many first; 0 keeps the input's partitioning unless it
    has fewer partitions than Spark's default parallelism.
    """
    from pyspark.sql import functions as F

    spark_file, downloads = ship_model(spark, model)
    loads = spark.sparkContext.accumulator(0)
    batches = spark.sparkContext.accumulator(0)
    if partitions:
        features = features.repartition(partitions)
    elif features.rdd.getNumPartitions() < spark.sparkContext.defaultParallelism:
        features = features.repartition(spark.sparkContext.defaultParallelism)  # use every core
    scorer = make_scorer(f"{model.uri}#{spark_file}", spark_file, loads, batches)
    scored = features.mapInPandas(scorer, schema=f"{ENTITY_KEY} bigint, probability double").select(
        ENTITY_KEY,
        "probability",
        (F.col("probability") >= F.lit(threshold)).cast("int").alias("predicted_label"),
        F.lit(model.name).alias("model_name"),
        F.lit(model.version).alias("model_version"),
        F.lit(feature_service).alias("feature_service"),
        F.current_timestamp().alias("scored_at"),
    )
    target = partition_uri(predictions_root, as_of)
    run = uuid.uuid4().hex[:12]
    staging = table_uri(predictions_root, f"{STAGING}/{AS_OF}={as_of_label(as_of)}-{run}")
    try:
        scored.write.mode("errorifexists").parquet(staging)
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


def read_predictions(predictions_root: str, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Predictions as pandas (every partition, or one), `as_of` as a UTC timestamp column."""
    import pyarrow.dataset as ds

    if as_of is not None:
        frame = ds.dataset(partition_uri(predictions_root, as_of), format="parquet").to_table().to_pandas()
        frame[AS_OF] = as_of
        return frame
    frame = ds.dataset(predictions_root, format="parquet", partitioning="hive").to_table().to_pandas()
    frame[AS_OF] = frame[AS_OF].astype(str).map(label_as_of).astype("datetime64[us, UTC]")
    return frame
