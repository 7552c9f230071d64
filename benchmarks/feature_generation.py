"""Feature generation on N synthetic records: the project's Spark jobs vs the same tables on DuckDB.

    python -m benchmarks.feature_generation --records 1000000 [--records 10000000]

The input is `generate_records(records // 3 users, seed=7)` written once as parquet (about
three records per user, so about N rows; reused while it matches). Each path runs in a
fresh process on that file and writes the five tables (demographic, relationship,
occupation, history, labels) as parquet partitioned by event month:

- spark: a local 2-core SparkSession, `build_feature_tables` and `write_table` for every
  table, which is what the pipeline's build_features task does;
- duckdb: the same five tables in SQL, with the history window semantics of
  spark_jobs/history.py, written by `COPY ... TO ... (PARTITION_BY event_month)`.

Time is read + compute + write, end to end; JVM start-up (and DuckDB's connect) is
reported apart. Peak memory is the child's ru_maxrss, plus the JVM's own peak (VmHWM)
for Spark: the JVM is a separate process that ru_maxrss does not see. Afterwards the two
outputs must have the same row counts and, for 200 sampled users, the same rows in every
table (doubles within a relative 1e-9), or the benchmark fails.
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
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from benchmarks.common import bench_dir, machine, peak_rss_mib, run_child
from income.data.schema import (
    ENTITY_KEY,
    FEATURE_TABLES,
    HIGH_INCOME,
    LABEL,
    LABEL_SOURCE,
    LABEL_TABLE,
    LOW_INCOME,
    PARTITION_COLUMN,
    TIMESTAMP,
    VIEW_ATTRIBUTES,
)
from income.features.offline_store import current

MODULE = "benchmarks.feature_generation"
SEED = 7
CORES = 2
SAMPLE_USERS = 200
TABLES = [*FEATURE_TABLES, LABEL_TABLE]
# Spark's console progress bar would garble the progress lines; it costs nothing to drop.
QUIET_SPARK = {"PYSPARK_SUBMIT_ARGS": "--conf spark.ui.showConsoleProgress=false pyspark-shell"}
PATHS = {"spark": "Spark (spark_jobs + write_table)", "duckdb": "DuckDB (same tables in SQL)"}


def _progress(message: str) -> None:
    # Children print their result on stdout, which the parent parses: progress goes to stderr.
    print(message, file=sys.stderr, flush=True)


def _jvm_peak_rss_mib(pid: int) -> float:
    """Peak resident memory of another live process (VmHWM, in KiB) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise OSError(f"no VmHWM for process {pid}")


def generate_child(users: int, raw: Path) -> None:
    """Generate the input records and write them as parquet; prints a JSON line."""
    from income.data.synthetic import generate_records, write_parquet

    started = time.perf_counter()
    records = generate_records(n_users=users, seed=SEED)
    generated = time.perf_counter()
    write_parquet(records, raw)
    result = {
        "rows": len(records),
        "generate_seconds": round(generated - started, 1),
        "write_seconds": round(time.perf_counter() - generated, 1),
        "peak_rss_mib": peak_rss_mib(),
    }
    print(json.dumps(result))


def spark_child(raw: Path, out: Path) -> None:
    """The pipeline's Spark step on `raw`, writing to `out`; prints a JSON line."""
    from income.features.offline_store import new_version, publish, seal, write_table
    from income.platform.spark import local_session
    from spark_jobs import build_feature_tables

    started = time.perf_counter()
    spark = local_session("feature-generation-benchmark", cores=CORES)
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - started
    _progress(f"  spark: JVM up in {startup:.1f} s")

    started = time.perf_counter()
    records = spark.read.parquet(str(raw))
    version, written = new_version(), []
    for name, table in build_feature_tables(records).items():
        written.append(write_table(table, str(out), version, name))
        _progress(f"  spark: {name}: {written[-1].rows:,} rows at {time.perf_counter() - started:.1f} s")
    seal(str(out), version, written)
    rows = {t.name: t.rows for t in publish(str(out), version).tables.values()}
    seconds = time.perf_counter() - started

    jvm_pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    jvm_peak = _jvm_peak_rss_mib(jvm_pid)
    python_peak = peak_rss_mib()
    spark.stop()
    result = {
        "path": "spark",
        "startup_seconds": round(startup, 2),
        "seconds": round(seconds, 2),
        "rows": rows,
        "peak_rss_mib": round(python_peak + jvm_peak, 1),
        "python_peak_rss_mib": python_peak,
        "jvm_peak_rss_mib": jvm_peak,
    }
    print(json.dumps(result))


def duckdb_queries(window_micros: int) -> dict[str, str]:
    """SELECTs over the view `raw` giving the five tables, each with its event_month column."""
    key = f"{ENTITY_KEY}, {TIMESTAMP}"
    year = f"CAST(year({TIMESTAMP}) * 100 + month({TIMESTAMP}) AS INTEGER) AS {PARTITION_COLUMN}"
    queries = {
        view: f"SELECT {key}, {', '.join(attributes)}, {year} FROM raw"
        for view, attributes in VIEW_ATTRIBUTES.items()
    }

    def changed(column: str) -> str:
        # As spark_jobs/history._changed: a null previous timestamp marks a first record.
        previous = f"OVER (PARTITION BY {ENTITY_KEY} ORDER BY {TIMESTAMP})"
        return (
            f"CASE WHEN lag({TIMESTAMP}) {previous} IS NULL"
            f" OR {column} IS NOT DISTINCT FROM lag({column}) {previous}"
            " THEN 0 ELSE 1 END"
        )

    # (t - 365 days, t] on integer microseconds, over changes computed on the full history.
    last_year = (
        f"OVER (PARTITION BY {ENTITY_KEY} ORDER BY epoch_us({TIMESTAMP})"
        f" RANGE BETWEEN {window_micros - 1} PRECEDING AND CURRENT ROW)"
    )
    queries["history"] = f"""
        WITH changes AS (
            SELECT {key}, capital_gain, capital_loss, hours_per_week,
                {changed("occupation")} AS job_change,
                {changed("marital_status")} AS marital_change
            FROM raw
        )
        SELECT {key},
            CAST(capital_gain - capital_loss AS BIGINT) AS capital_net,
            CAST(count(*) {last_year} AS BIGINT) AS records_365d,
            CAST(sum(job_change) {last_year} AS BIGINT) AS job_changes_365d,
            CAST(sum(marital_change) {last_year} AS BIGINT) AS marital_changes_365d,
            CAST(avg(hours_per_week) {last_year} AS DOUBLE) AS hours_per_week_mean_365d,
            {year}
        FROM changes
    """
    queries[LABEL_TABLE] = f"""
        SELECT {key},
            CAST(CASE WHEN {LABEL_SOURCE} = '{HIGH_INCOME}' THEN 1
                      WHEN {LABEL_SOURCE} = '{LOW_INCOME}' THEN 0 END AS BIGINT) AS {LABEL},
            CAST(NULL AS TIMESTAMPTZ) AS arrived_at,
            {year}
        FROM raw WHERE {LABEL_SOURCE} IS NOT NULL
    """
    return queries


def duckdb_child(raw: Path, out: Path) -> None:
    """The same five tables on DuckDB from `raw`, written to `out`; prints a JSON line."""
    import duckdb

    from spark_jobs.history import WINDOW_DAYS

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads = {CORES}")
    con.execute("SET TimeZone = 'UTC'")  # event_month of a timestamptz, as Spark's session zone
    con.execute(f"SET temp_directory = '{out}/_spill'")
    startup = time.perf_counter() - started

    started = time.perf_counter()
    con.execute(f"CREATE VIEW raw AS SELECT * FROM read_parquet('{raw}')")
    rows = {}
    (out / "_staging").mkdir()
    for name, query in duckdb_queries(WINDOW_DAYS * 24 * 3600 * 1_000_000).items():
        # Staged then renamed into place, as write_table does.
        staging = out / "_staging" / name
        copied = con.execute(
            f"COPY ({query}) TO '{staging}' (FORMAT parquet, PARTITION_BY ({PARTITION_COLUMN}))"
        ).fetchone()
        os.rename(staging, out / name)
        rows[name] = copied[0]
        _progress(f"  duckdb: {name}: {rows[name]:,} rows at {time.perf_counter() - started:.1f} s")
    seconds = time.perf_counter() - started
    con.close()
    result = {
        "path": "duckdb",
        "startup_seconds": round(startup, 2),
        "seconds": round(seconds, 2),
        "rows": rows,
        "peak_rss_mib": peak_rss_mib(),
    }
    print(json.dumps(result))


def _dataset(folder: Path) -> ds.Dataset:
    return ds.dataset(folder, format="parquet", partitioning="hive")


def _sample(folder: Path, users: list[int]) -> pd.DataFrame:
    table = _dataset(folder).to_table(filter=pc.field(ENTITY_KEY).isin(users))
    return table.to_pandas().sort_values([ENTITY_KEY, TIMESTAMP]).reset_index(drop=True)


def compare_outputs(spark_out: Path, duckdb_out: Path, users: list[int]) -> list[str]:
    """Differences between the two outputs: row counts per table, sampled users' rows."""
    problems = []
    published = current(str(spark_out))
    for name in TABLES:
        folders = (Path(published.uri(name)), duckdb_out / name)
        counts = [_dataset(folder).count_rows() for folder in folders]
        if counts[0] != counts[1]:
            problems.append(f"{name}: {counts[0]:,} rows from Spark, {counts[1]:,} from DuckDB")
        expected, actual = (_sample(folder, users) for folder in folders)
        if expected.empty:
            problems.append(f"{name}: no rows for the sampled users")
        try:
            pd.testing.assert_frame_equal(expected, actual, check_exact=False, rtol=1e-9)
        except AssertionError as error:
            problems.append(f"{name}, sampled users: {error}")
    return problems


def prepare_input(folder: Path, records: int) -> dict:
    """The raw parquet for `records`, generated unless a matching one is already there."""
    raw, meta = folder / "raw.parquet", folder / "raw.json"
    users = records // 3
    if raw.exists() and meta.exists():
        known = json.loads(meta.read_text())
        rows = pq.ParquetFile(raw).metadata.num_rows
        if (known["users"], known["seed"], known["rows"]) == (users, SEED, rows):
            _progress(f"reusing {raw} ({known['rows']:,} rows)")
            return {**known, "reused": True}
    _progress(f"generating {users:,} users (seed {SEED}) into {raw} ...")
    generated = run_child(MODULE, ["--child", "generate", "--users", str(users), "--raw", str(raw)], {})
    known = {"users": users, "seed": SEED, **generated}
    meta.write_text(json.dumps(known, indent=2))
    _progress(
        f"  {known['rows']:,} rows: generated in {known['generate_seconds']} s, "
        f"written in {known['write_seconds']} s"
    )
    return {**known, "reused": False}


def run(records: int) -> dict:
    """Both paths on `records` records, checked against each other; the result as a dict."""
    folder = bench_dir(f"feature_generation-{records}")
    # Other work on a 2-core machine skews both paths: note the load the run started under.
    load = round(os.getloadavg()[0], 2)
    if load > 0.5:
        _progress(f"warning: 1-minute load average {load} before the run: numbers may be skewed")
    generated = prepare_input(folder, records)
    raw = folder / "raw.parquet"
    # Both paths read the input from the page cache, whichever runs first.
    with raw.open("rb") as f:
        while f.read(1 << 24):
            pass
    results = {}
    for path in PATHS:
        out = folder / path
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        _progress(f"running {path} on {generated['rows']:,} records ...")
        args = ["--child", path, "--raw", str(raw), "--out", str(out)]
        result = run_child(MODULE, args, QUIET_SPARK if path == "spark" else {})
        result["records_per_second"] = round(generated["rows"] / result["seconds"])
        results[path] = result
        _progress(
            f"  {path}: {result['seconds']} s, {result['records_per_second']:,} records/s, "
            f"peak RSS {result['peak_rss_mib']:,} MiB"
        )

    rng = np.random.default_rng(0)
    users = rng.choice(np.arange(1, generated["users"] + 1), SAMPLE_USERS, replace=False).tolist()
    _progress(f"comparing the outputs (row counts, {SAMPLE_USERS} sampled users) ...")
    problems = compare_outputs(folder / "spark", folder / "duckdb", users)
    summary = {
        "machine": machine(),
        "records": generated["rows"],
        "input": generated,
        "load_average_before": load,
        "results": results,
        "spark_over_duckdb_seconds": round(results["spark"]["seconds"] / results["duckdb"]["seconds"], 2),
        "spark_over_duckdb_peak_rss": round(
            results["spark"]["peak_rss_mib"] / results["duckdb"]["peak_rss_mib"], 2
        ),
        "identical": not problems,
        "problems": problems,
    }
    (folder / "result.json").write_text(json.dumps(summary, indent=2))
    if problems:
        raise SystemExit("Spark and DuckDB outputs differ:\n" + "\n".join(problems))
    _progress(f"  identical; result in {folder / 'result.json'}")
    return summary


def report(summaries: list[dict]) -> str:
    """The markdown table of all runs, with the ratios and the machine line."""
    lines = [
        "| records | path | seconds | records/s | peak RSS (MiB) | start-up (s, not timed) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for summary in summaries:
        for path, label in PATHS.items():
            r = summary["results"][path]
            lines.append(
                f"| {summary['records']:,} | {label} | {r['seconds']} "
                f"| {r['records_per_second']:,} | {r['peak_rss_mib']:,} | {r['startup_seconds']} |"
            )
    lines.append("")
    for summary in summaries:
        spark = summary["results"]["spark"]
        lines.append(
            f"{summary['records']:,} records: Spark/DuckDB time {summary['spark_over_duckdb_seconds']}x, "
            f"peak memory {summary['spark_over_duckdb_peak_rss']}x (Spark: Python "
            f"{spark['python_peak_rss_mib']:,} + JVM {spark['jvm_peak_rss_mib']:,} MiB); input "
            f"generated in {summary['input']['generate_seconds']} s + written in "
            f"{summary['input']['write_seconds']} s; outputs identical for "
            f"{SAMPLE_USERS} sampled users and in row counts."
        )
    lines.append(f"\nmachine: {summaries[0]['machine']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--records", type=int, action="append", help="input size, repeatable (default 1,000,000)"
    )
    parser.add_argument("--child", choices=["generate", *PATHS])
    parser.add_argument("--users", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--raw", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "generate":
        generate_child(args.users, args.raw)
    elif args.child == "spark":
        spark_child(args.raw, args.out)
    elif args.child == "duckdb":
        duckdb_child(args.raw, args.out)
    else:
        _progress(f"machine: {machine()}")
        summaries = [run(records) for records in args.records or [1_000_000]]
        print(report(summaries))


if __name__ == "__main__":
    main()
