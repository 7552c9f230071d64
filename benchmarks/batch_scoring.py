"""Batch scoring of N feature rows: our Spark mapInPandas path vs pandas + XGBoost vs mlflow spark_udf.

    python -m benchmarks.batch_scoring --rows 1000000

The scoring step alone, from ready features, on a warm Spark session: what the whole
`batch_scoring` workflow costs is measured by benchmarks.batch_scoring_workflow.

The same N rows (synthetic values in the model's feature schema, ~2% missing, one parquet
file) are scored, side by side in one run, by:
- `spark_map_in_pandas`: income.inference.batch_scoring.score_and_write, the batch-scoring task's path
  (model shipped with addFile, loaded once per Python worker, mapInPandas, atomic partition
  write),
- `pandas_inplace`: one process: read, preprocessor.transform, booster.inplace_predict, write,
- `mlflow_spark_udf`: mlflow.pyfunc.spark_udf over the same Spark DataFrame, write.
Each reads the parquet file and writes (user_id, probability) parquet; timings include
loading the model. The model is a small XGBoost pyfunc (income.training.model.fit +
income.training.trials.log_model) in a throw-away MLflow store under .runtime/bench/. Spark
start-up (session + first job) is reported apart. Paths run in turn, `--repeat` times;
the table shows the best of each. All three must agree on a sample of rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import bench_dir, machine, peak_rss_mib
from benchmarks.feature_rows import make_features
from income.data.schema import ENTITY_KEY, LABEL
from income.training.model import FEATURES, FittedModel, as_model_input, fit


def synthetic_labels(frame: pd.DataFrame, seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = as_model_input(frame)
    logit = (
        0.05 * (x["age"].fillna(40) - 40)
        + 0.25 * (x["education_num"].fillna(10) - 10)
        + 0.03 * (x["hours_per_week"].fillna(40) - 40)
        + 1.2 * (frame["marital_status"] == "Married-civ-spouse")
        - 1.4
    )
    return (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype("int64")


def write_features(frame: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Row groups of 64k rows so that Spark can split the file over its cores.
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=65_536, coerce_timestamps="us"
    )


def train_model(folder: Path, features: pd.DataFrame) -> Path:
    """A small XGBoost pyfunc logged to a throw-away MLflow store; its local model folder."""
    import mlflow
    import mlflow.artifacts

    from income.training.trials import log_model

    store = folder / "mlflow"
    store.mkdir(exist_ok=True)
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    if mlflow.get_experiment_by_name("bench-batch-scoring") is None:
        mlflow.create_experiment("bench-batch-scoring", artifact_location=f"file://{store / 'artifacts'}")
    mlflow.set_experiment("bench-batch-scoring")
    train = features.sample(n=min(len(features), 50_000), random_state=0).reset_index(drop=True)
    train[LABEL] = synthetic_labels(train)
    model = fit("xgboost", {"n_estimators": 150, "max_depth": 6, "learning_rate": 0.1}, train)
    with mlflow.start_run(run_name="bench-model"):
        uri = log_model(model, train)
    target = folder / "model"
    shutil.rmtree(target, ignore_errors=True)
    mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(target))
    return target


def run_pandas(features_path: Path, model_dir: Path, out: Path) -> None:
    """Single process: read, preprocess, XGBoost inplace_predict, write."""
    frame = pd.read_parquet(features_path)
    artifacts = {
        "preprocessor": str(model_dir / "artifacts" / "preprocessor.joblib"),
        "estimator": str(model_dir / "artifacts" / "estimator.xgb.json"),
        "meta": str(model_dir / "artifacts" / "model.json"),
    }
    model = FittedModel.load(artifacts)
    matrix = model.preprocessor.transform(as_model_input(frame[FEATURES]))
    probability = model.estimator.get_booster().inplace_predict(matrix)
    pd.DataFrame({ENTITY_KEY: frame[ENTITY_KEY], "probability": probability.astype("float64")}).to_parquet(
        out, index=False
    )


def run_spark_map_in_pandas(spark, features_path: Path, model_dir: Path, out: Path) -> dict:
    from income.inference.batch_scoring import score_and_write
    from income.inference.model_version import ResolvedModel

    model = ResolvedModel(name="bench", version="1", uri=str(model_dir), tags={})
    written = score_and_write(
        spark, spark.read.parquet(str(features_path)), model, "income_v1", str(out), pd.Timestamp(0, tz="UTC")
    )
    return {"model_loads": written.model_loads, "batches": written.batches, "rows": written.rows}


def run_spark_udf(spark, features_path: Path, model_dir: Path, out: Path) -> None:
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    udf = mlflow.pyfunc.spark_udf(spark, model_uri=str(model_dir), result_type="double", env_manager="local")
    frame = spark.read.parquet(str(features_path))
    scored = frame.select(ENTITY_KEY, udf(F.struct(*FEATURES)).alias("probability"))
    scored.write.mode("overwrite").parquet(str(out))


def read_scores(path: Path) -> pd.Series:
    import pyarrow.dataset as ds

    frame = ds.dataset(str(path), format="parquet").to_table(columns=[ENTITY_KEY, "probability"]).to_pandas()
    return frame.set_index(ENTITY_KEY)["probability"].sort_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--sample", type=int, default=5_000)
    args = parser.parse_args()

    load_before = os.getloadavg()
    folder = bench_dir(f"batch-scoring-{args.rows}")
    features_path = folder / "features.parquet"
    started = time.perf_counter()
    features = make_features(args.rows)
    write_features(features, features_path)
    model_dir = train_model(folder, features)
    prepare_seconds = time.perf_counter() - started
    del features

    # Python workers must run this interpreter (and its packages), for both Spark paths.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from income.platform.spark import local_session

    started = time.perf_counter()
    spark = local_session("bench-batch-scoring", cores=args.cores)
    spark.range(1).count()
    spark_startup = time.perf_counter() - started

    outputs = {
        name: folder / f"out-{name}" for name in ("spark_map_in_pandas", "pandas_inplace", "mlflow_spark_udf")
    }
    times: dict[str, list[float]] = {name: [] for name in outputs}
    details: dict = {}
    for _ in range(args.repeat):
        for name, out in outputs.items():
            shutil.rmtree(out, ignore_errors=True)
            if name == "pandas_inplace":
                out.mkdir()
            started = time.perf_counter()
            if name == "spark_map_in_pandas":
                details = run_spark_map_in_pandas(spark, features_path, model_dir, out)
            elif name == "pandas_inplace":
                run_pandas(features_path, model_dir, out / "part-0.parquet")
            else:
                run_spark_udf(spark, features_path, model_dir, out)
            times[name].append(time.perf_counter() - started)

    scores = {name: read_scores(out) for name, out in outputs.items()}
    assert all(len(s) == args.rows for s in scores.values()), {n: len(s) for n, s in scores.items()}
    sample = np.random.default_rng(0).choice(scores["pandas_inplace"].index, size=args.sample, replace=False)
    reference = scores["pandas_inplace"].loc[sample].to_numpy()
    max_diff = {
        name: float(np.max(np.abs(s.loc[sample].to_numpy() - reference))) for name, s in scores.items()
    }
    assert all(d < 1e-6 for d in max_diff.values()), max_diff

    best = {name: min(t) for name, t in times.items()}
    result = {
        "rows": args.rows,
        "cores": args.cores,
        "machine": machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "prepare_seconds": round(prepare_seconds, 1),
        "spark_startup_seconds": round(spark_startup, 2),
        "seconds": {name: [round(t, 2) for t in ts] for name, ts in times.items()},
        "best_seconds": {name: round(t, 2) for name, t in best.items()},
        "rows_per_second": {name: round(args.rows / t) for name, t in best.items()},
        "ratio_vs_pandas": {name: round(t / best["pandas_inplace"], 2) for name, t in best.items()},
        "ratio_vs_spark_udf": {name: round(t / best["mlflow_spark_udf"], 2) for name, t in best.items()},
        "max_abs_diff_vs_pandas_on_sample": max_diff,
        "map_in_pandas": details,
        "peak_rss_mib_driver": peak_rss_mib(),
    }
    print(markdown(result))
    print(json.dumps(result))
    spark.stop()


def markdown(r: dict) -> str:
    lines = [
        f"{r['rows']:,} rows, {r['cores']} cores; {r['machine']}; load average before "
        f"{r['load_average_before']}, after {r['load_average_after']}; Spark start-up "
        f"{r['spark_startup_seconds']} s (not included below).",
        "",
        "| path | best s (all runs) | rows/s | vs pandas + inplace_predict | vs mlflow spark_udf |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in r["best_seconds"]:
        runs = ", ".join(str(t) for t in r["seconds"][name])
        lines.append(
            f"| {name} | {r['best_seconds'][name]} ({runs}) | {r['rows_per_second'][name]:,} | "
            f"{r['ratio_vs_pandas'][name]}x | {r['ratio_vs_spark_udf'][name]}x |"
        )
    lines.append("")
    lines.append(
        f"mapInPandas: {r['map_in_pandas']}; "
        f"max |diff| vs pandas on a sample: {r['max_abs_diff_vs_pandas_on_sample']}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
