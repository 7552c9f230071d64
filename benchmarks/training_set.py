"""Point-in-time training set of N labels: Feast's offline stores vs a hand-written DuckDB ASOF JOIN.

    python -m benchmarks.training_set --labels 1000000

The same parquet tables (the four views of `income_v1`; ~3 survey records per user,
each view one row per record, labels at the record times as the feature pipeline
writes them) are joined by, each in a fresh process (wall time of the join and peak
resident memory of the process):
- `file`: Feast's default file (Dask) offline store,
- `duckdb`: Feast's DuckDB offline store (needs `feast[duckdb]`),
- `spark`: Feast's Spark offline store in a local session on every core (the session
  start-up is reported apart),
- `asof`: income.features.point_in_time's engine `asof` (DuckDB ASOF JOINs planned from the registry),
- `spark_asof`: the same plan on Spark (income.features.spark_point_in_time) in a local
  session on every core, its result collected as pandas (what `join_training_set` returns),
- `spark_asof_parquet`: the same, with the labels read and the result written as parquet by
  Spark, never collected: the seconds and memory are taken before the check reads it back,
- `handwritten`: one hand-written DuckDB ASOF JOIN over the same parquet.
With `--user-share F` (< 1) the joins take only the labels of the users that the drift report's
sample rule keeps (income.inference.drift_sample, the same users in every kind): a small entity
set against whole tables, as the drift reference and the scoring of a few users are.
Every result must hold one row per label, and all must agree: their content hashes
(income.training.fingerprint.fingerprint) over every row are compared. Spark kinds report
the JVM's peak apart (in local mode it holds the driver and the executors).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import bench_dir, machine, peak_rss_mib, random_column, run_child
from benchmarks.materialization import VIEW_COLUMNS
from income.features.offline_store import current, current_or_none, publish_pandas_tables

KINDS = ("handwritten", "asof", "spark_asof", "spark_asof_parquet", "duckdb", "spark", "file")
SPARK_KINDS = ("spark", "spark_asof", "spark_asof_parquet")
RECORDS_PER_USER = 3
START, SPAN_DAYS = pd.Timestamp("2022-01-01", tz="UTC"), 4 * 365


def make_tables(root: Path, labels: int, seed: int = 1) -> None:
    """Views and labels as the feature pipeline writes them, partitioned by event year."""
    rng = np.random.default_rng(seed)
    users = -(-labels // RECORDS_PER_USER)
    user_id = np.repeat(np.arange(1, users + 1, dtype=np.int64), RECORDS_PER_USER)[:labels]
    # Distinct record times per user (seconds), sorted within the user.
    offsets = rng.integers(0, SPAN_DAYS * 86_400, labels)
    order = np.lexsort((offsets, user_id))
    offsets = offsets[order]
    clash = np.r_[False, (user_id[1:] == user_id[:-1]) & (offsets[1:] <= offsets[:-1])]
    offsets[clash] += 1
    ts = pd.Series((START + pd.to_timedelta(offsets, unit="s")).astype("datetime64[us, UTC]"))
    tables = {"labels": {"label": (rng.random(labels) < 0.24).astype("int64")}}
    for view, columns in VIEW_COLUMNS.items():
        data = {}
        for name, kind in columns.items():
            data[name] = random_column(rng, kind, labels)
        tables[view] = data
    frames = {
        name: pd.DataFrame({"user_id": user_id, "event_timestamp": ts, **data})
        for name, data in tables.items()
    }
    publish_pandas_tables(str(root), frames)


HANDWRITTEN_SQL = """
SET TimeZone = 'UTC';
SELECT l.user_id, l.event_timestamp, l.label,
  {selects}
FROM labels l
{joins}
"""


def handwritten(offline: str, labels: pd.DataFrame) -> pd.DataFrame:
    """The peer: one DuckDB ASOF JOIN per view, TTL 730 days, written by hand."""
    import duckdb

    selects, joins = [], []
    published = current(offline)
    for view, columns in VIEW_COLUMNS.items():
        joins.append(
            f"ASOF LEFT JOIN (SELECT user_id, event_timestamp AS ts, {', '.join(columns)} "
            f"FROM read_parquet('{published.uri(view)}/**/*.parquet', hive_partitioning = false)) {view} "
            f"ON l.user_id = {view}.user_id AND l.event_timestamp >= {view}.ts"
        )
        selects += [
            f"CASE WHEN {view}.ts >= l.event_timestamp - INTERVAL 730 DAY THEN {view}.{c} END AS {c}"
            for c in columns
        ]
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("labels", labels)
        sql = HANDWRITTEN_SQL.split(";", 1)[1].format(selects=",\n  ".join(selects), joins="\n".join(joins))
        return con.sql(sql).to_arrow_table().to_pandas()


def descendants_peak_rss_mib() -> float:
    """Peak resident memory of this process's children (the Spark JVM), from /proc VmHWM."""
    import psutil

    total = 0
    for process in psutil.Process().children(recursive=True):
        try:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def spark_session(driver_memory: str):
    """income.platform.spark's local configuration on every core, with the driver memory asked for."""
    from pyspark.sql import SparkSession

    from income.platform.java import ensure_java
    from income.platform.spark import SPARK_CONF

    ensure_java()
    cores = os.cpu_count() or 2
    conf = {**SPARK_CONF, "spark.sql.shuffle.partitions": str(cores), "spark.driver.memory": driver_memory}
    builder = SparkSession.builder.master(f"local[{cores}]").appName("training-set-bench")
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.config("spark.driver.bindAddress", "127.0.0.1").getOrCreate()


def spark_asof_parquet(spark, store, offline: str, result: dict, started: float) -> pd.DataFrame:
    """Labels read, joined and written by Spark; seconds and peak memory noted in `result` before
    the written set is read back (as pandas, for the content hash)."""
    import pyarrow.dataset as ds

    from income.features.point_in_time import arrow_to_pandas, canonical_output, feature_types
    from income.features.spark_point_in_time import spark_point_in_time
    from income.training.labels import LABEL_COLUMNS, read_labels

    labels = spark.read.parquet(current(offline).uri("labels")).select(*LABEL_COLUMNS)
    out = str(Path(offline).parent / "training-set-spark")
    spark_point_in_time(spark, store, labels).write.mode("overwrite").parquet(out)
    result["seconds"] = round(time.perf_counter() - started, 2)
    result["python_peak_rss_mib"] = peak_rss_mib()
    result["jvm_peak_rss_mib"] = descendants_peak_rss_mib()
    written = arrow_to_pandas(ds.dataset(out, format="parquet").to_table())
    return canonical_output(written, read_labels(offline), feature_types(store), nan_strings=False)


def child(kind: str, offline: str, driver_memory: str, user_share: float = 1.0) -> None:
    """One join in this process; prints a JSON line with time, memory, rows and content hash."""
    from income.inference.drift_sample import in_sample
    from income.training.fingerprint import fingerprint
    from income.training.labels import read_labels
    from income.training.training_set import join_training_set

    result: dict = {"kind": kind}
    if kind == "duckdb" and importlib.util.find_spec("ibis") is None:
        print(json.dumps({**result, "error": "ibis-framework not installed (feast[duckdb])"}))
        return
    labels = read_labels(offline)
    if user_share < 1.0:
        labels = labels[in_sample(labels["user_id"], user_share)].reset_index(drop=True)
    result["labels"] = len(labels)
    spark = None
    if kind == "handwritten":
        started = time.perf_counter()
        out = handwritten(offline, labels)
        result["seconds"] = round(time.perf_counter() - started, 2)
        out = out.sort_values(["event_timestamp", "user_id"], kind="stable").reset_index(drop=True)
        for column, dtype in out.dtypes.items():
            if dtype.kind in "iu" or (dtype.kind == "f" and column != "hours_per_week_mean_365d"):
                out[column] = out[column].astype("Int64")
    else:
        from income.features.feature_store import apply_definitions, get_store

        if kind in SPARK_KINDS:
            started = time.perf_counter()
            spark = spark_session(driver_memory)
            spark.range(1).count()
            result["spark_driver_memory"] = driver_memory
            result["spark_start_seconds"] = round(time.perf_counter() - started, 2)
        store = get_store(
            offline_engine="spark" if kind == "spark" else kind if kind in ("file", "duckdb") else "file"
        )
        apply_definitions(store)
        started = time.perf_counter()
        if kind == "spark_asof_parquet":
            out = spark_asof_parquet(spark, store, offline, result, started)
        else:
            engine = kind if kind in ("asof", "spark_asof") else "feast"
            out = join_training_set(store, labels, engine=engine, spark=spark)
            result["seconds"] = round(time.perf_counter() - started, 2)
    assert len(out) == len(labels), (kind, len(out), len(labels))
    out.iloc[:: max(1, len(out) // 1000)].to_parquet(Path(offline).parent / f"sample-{kind}.parquet")
    result.update(fingerprint(out))
    # spark_asof_parquet noted its peaks before reading its output back for the check.
    result.setdefault("python_peak_rss_mib", peak_rss_mib())
    result["peak_rss_mib"] = result["python_peak_rss_mib"]
    if spark is not None:
        result.setdefault("jvm_peak_rss_mib", descendants_peak_rss_mib())
        result["peak_rss_mib"] = round(result["python_peak_rss_mib"] + result["jvm_peak_rss_mib"], 1)
        spark.stop()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated subset of {KINDS}")
    parser.add_argument("--child", choices=KINDS)
    parser.add_argument("--rewrite", action="store_true", help="write the tables even if present")
    parser.add_argument("--offline")
    parser.add_argument("--spark-driver-memory", default="12g", help="the project's tasks use 4g")
    parser.add_argument(
        "--user-share", type=float, default=1.0, help="join only the labels of this share of users"
    )
    args = parser.parse_args()
    if args.child:
        child(args.child, args.offline, args.spark_driver_memory, args.user_share)
        return

    folder = bench_dir(f"training-set-{args.labels}")
    offline = folder / "offline_store"
    kinds = args.kinds.split(",")
    print(f"machine: {machine()}")
    print(f"load before: {os.getloadavg()[0]:.2f} (1-minute average)")
    users = -(-args.labels // RECORDS_PER_USER)
    print(f"writing {args.labels:,} labels, {users:,} users x 4 views to {offline} ...", flush=True)
    if current_or_none(str(offline)) is None or args.rewrite:
        make_tables(offline, args.labels)
    results = {}
    for kind in kinds:
        env = {
            "INCOME_RUNTIME": str(folder),
            "INCOME_OFFLINE_STORE": str(offline),
            # The Spark store needs SparkSource definitions: one registry per engine.
            "FEAST_REGISTRY_PATH": str(folder / f"registry-{kind}.db"),
            # Offline retrieval never touches the online store; get_store wants its settings.
            "VALKEY_HOST": "127.0.0.1",
            "VALKEY_PORT": "1",
            "VALKEY_PASSWORD": "",
            # Spark fetches large task results from the driver's block manager by host
            # name, which resolves to an address this sandbox does not route: stay on loopback.
            "SPARK_LOCAL_IP": "127.0.0.1",
        }
        print(f"running {kind} ...", flush=True)
        child_args = ["--child", kind, "--offline", str(offline)]
        child_args += [
            "--spark-driver-memory",
            args.spark_driver_memory,
            "--user-share",
            str(args.user_share),
        ]
        try:
            results[kind] = run_child("benchmarks.training_set", child_args, env)
        except subprocess.CalledProcessError as failed:
            results[kind] = {"kind": kind, "error": f"failed (exit {failed.returncode}), see its stderr"}
        print(f"  {results[kind]}", flush=True)
    ran = {k: r for k, r in results.items() if "error" not in r}
    hashes = {r["sha256"] for r in ran.values()}
    agree = len(hashes) == 1
    samples = {k: pd.read_parquet(folder / f"sample-{k}.parquet") for k in ran}
    first = next(iter(samples.values()))
    samples_agree = all(first.astype(str).equals(s.astype(str)) for s in samples.values())
    base = ran.get("handwritten", {}).get("seconds")
    dask = ran.get("file", {}).get("seconds")
    print(f"\nload after: {os.getloadavg()[0]:.2f} (1-minute average)")
    print(
        "\n| labels | engine | join seconds | vs Feast file store | vs hand-written ASOF | peak RSS (MiB) |"
    )
    print("|---|---|---|---|---|---|")
    names = {
        "file": "Feast file (Dask) store",
        "duckdb": "Feast DuckDB store",
        "spark": "Feast Spark store",
        "asof": "income.features.point_in_time `asof` (registry-driven DuckDB ASOF)",
        "spark_asof": "`spark_asof` (the same plan on Spark), collected as pandas",
        "spark_asof_parquet": "`spark_asof`, labels read and result written by Spark (never collected)",
        "handwritten": "hand-written DuckDB ASOF JOIN",
    }
    for kind, r in results.items():
        if "error" in r:
            print(f"| {args.labels:,} | {names[kind]} | not run: {r['error']} | | | |")
            continue
        seconds = r["seconds"]
        extra = f" (+{r['spark_start_seconds']} s session start)" if "spark_start_seconds" in r else ""
        memory_note = (
            f" (Python {r['python_peak_rss_mib']:,} + JVM {r['jvm_peak_rss_mib']:,})"
            if "jvm_peak_rss_mib" in r
            else ""
        )
        speedup = f"{dask / seconds:.1f}x faster" if dask else ""
        ratio = f"{seconds / base:.2f}x" if base else ""
        memory = f"{r['peak_rss_mib']:,}{memory_note}"
        print(f"| {r['labels']:,} | {names[kind]} | {seconds}{extra} | {speedup} | {ratio} | {memory} |")
    print(
        f"\nevery engine returned one row per label; content hashes over all rows identical: {agree}; "
        f"sampled rows identical: {samples_agree}"
    )
    (folder / "result.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "labels": args.labels,
                "user_share": args.user_share,
                "results": results,
                "identical": agree,
            },
            indent=2,
        )
    )
    if not (agree and samples_agree):
        raise SystemExit("the engines disagree")


if __name__ == "__main__":
    main()
