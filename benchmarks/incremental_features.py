"""A daily batch on N records: the incremental feature run vs a full rebuild, publication and Valkey included.

    python -m benchmarks.incremental_features --records 10000000 --batch-share 0.01

Setup (not timed, cached in a data folder: see data_folder): a synthetic world of `records // 3`
users (`generate_records`, seed 7, records from 2023-06-15 to 2026-06-15 00:00 UTC), written
to the bronze layer with `batches.append_batch` in four batches by time (validation is
skipped: the generator makes valid rows only); labels of records younger than the 28-day lag
are held back. The daily batch: `batch_share * records` new records of day 2026-06-15
(`generate_records` of its own, seed 8), 90% of them mapped onto distinct existing users and
10% onto new users, 30% with an inline label; plus a labels-only batch (the held-back labels
of the records of day 2026-06-15 - 28 days), as the synthetic world's day would bring.

Then, in this one process and one warm local Spark session, against a private Valkey, the
Flyte tasks' functions are called as a local Flyte run calls them (`tasks.features.build_features`
then `publish_features`; the Spark plugin's `getOrCreate` hands them this session):
1. base, not timed: the base history at run time T0 = 2026-06-15 02:00 UTC, a full build,
   publication, `feast apply` and a full materialization: Valkey holds version T0;
2. the daily batch is ingested (its bronze files hard-linked in, not timed);
3. **incremental**, timed: the run at T1 = T0 + 1 day: a new version cloned from T0 with the
   changed partitions rewritten, sealed, published, `feast apply`, and an incremental
   materialization of the changed users;
4. **full**, timed: the same run with `full_rebuild=True`: every table from the bronze layer,
   published, `feast apply`, full materialization (into the Valkey the incremental run left).
Order: incremental first, then full (both read bronze from the page cache the base build
filled). With `--repeat N` the base version is re-published and re-materialized between
repeats (not timed) and the median of each figure is reported.

Checks: every table of the incremental version equals the full rebuild's (Spark: `exceptAll`
both ways is empty and the counts are equal), and Valkey holds the same content after both, key
by key (compare_online): the same keys with the same HGETALL. One difference is expected and
explained per key: Valkey counts an expiry in wall seconds from the write while the benchmark's
day is simulated, so a key the full run writes with a simulated expiry seconds after T1 is gone
by the time the check reads it; such keys are listed with their simulated expiry, computed from
the full version's tables, and must fall within the wall time from the full run's start to the
check. Expiry seconds themselves are not compared (keys written on different simulated days).

Reported per path: wall seconds split into build (`build_features`), publish + apply
(`publish_features` without its materialization) and materialization (the task's own
`materialize_seconds`); rows written (rows in the parquet files the path wrote: an
incremental version hard-links the untouched partitions); users written to Valkey; peak RSS
of Python and of the JVM during the path (VmHWM, reset before each path through
/proc/<pid>/clear_refs; what was resident before counts); load average and other processes'
CPU next to each figure.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import (
    OtherCpu,
    bench_dir,
    load_average,
    machine,
    private_valkey,
    run_child,
    wait_until_quiet,
)

MODULE = "benchmarks.incremental_features"
SEED, BATCH_SEED = 7, 8
WORLD_START = "2023-06-15"
DAY = datetime(2026, 6, 15, tzinfo=UTC)  # the base history ends here; the daily batch is this day
BASE_RUN = DAY + timedelta(hours=2)  # T0: the base run's time
DAILY_RUN = BASE_RUN + timedelta(days=1)  # T1: the run that ingests DAY
LAG = timedelta(days=28)
BASE_BATCHES = 4
EXISTING_USER_SHARE = 0.9
BATCH_LABEL_SHARE = 0.3
# Spark's console progress bar would garble the progress lines.
QUIET_SPARK = "--conf spark.ui.showConsoleProgress=false pyspark-shell"
MAX_WAIT = float(os.environ.get("BENCH_MAX_WAIT", 60))  # seconds to wait for other jobs to go quiet
PATHS = {"incremental": "incremental (clone + changed partitions)", "full": "full rebuild"}


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- setup (child)


def setup_child(records: int, batch_share: float, source: Path) -> None:
    """Write the base history and the daily batch as two bronze roots; prints a JSON line."""
    import numpy as np
    import pandas as pd

    from income.data import batches
    from income.data.schema import ENTITY_KEY, LABEL_SOURCE, TIMESTAMP
    from income.data.synthetic import generate_records
    from income.data.validation import LABEL_ONLY_COLUMNS
    from income.platform.lineage import content_hash

    started = time.perf_counter()
    users = records // 3
    day = pd.Timestamp(DAY)
    world = generate_records(users, seed=SEED, start=WORLD_START, end=DAY.date().isoformat())
    world = world.sort_values([TIMESTAMP, ENTITY_KEY], kind="stable").reset_index(drop=True)
    # Labels of records younger than the lag have not arrived yet: those of day - lag come
    # in the daily labels-only batch, the others later (never, here).
    unripe = world[TIMESTAMP] >= day - pd.Timedelta(LAG)
    of_lag_day = (world[TIMESTAMP] >= day - pd.Timedelta(LAG)) & (
        world[TIMESTAMP] < day - pd.Timedelta(LAG) + pd.Timedelta(days=1)
    )
    labels = world.loc[of_lag_day & world[LABEL_SOURCE].notna(), LABEL_ONLY_COLUMNS].reset_index(drop=True)
    world[LABEL_SOURCE] = world[LABEL_SOURCE].where(~unripe, None)
    generated = time.perf_counter() - started

    base_root, daily_root = str(source / "base"), str(source / "daily")
    ids = {"base": [], "daily": []}
    for chunk in np.array_split(np.arange(len(world)), BASE_BATCHES):
        frame = world.iloc[chunk].reset_index(drop=True)
        ingest_date = min(frame[TIMESTAMP].max().date() + timedelta(days=1), DAY.date())
        batch, _ = batches.append_batch(
            base_root, batches.RECORDS, frame, ingest_date, batches.batch_id(content_hash(frame))
        )
        ids["base"].append(batch.batch_id)
    base_rows = len(world)
    del world

    # The day's records: a generated population of its own, moved onto existing users (distinct
    # ones: at most one generated user each) and new users.
    wanted = round(records * batch_share)
    daily = generate_records(
        max(1, wanted // 3),
        seed=BATCH_SEED,
        start=DAY.date().isoformat(),
        end=(DAY + timedelta(days=1)).date().isoformat(),
        label_share=BATCH_LABEL_SHARE,
    )
    generated_users = daily[ENTITY_KEY].max()
    rng = np.random.default_rng(BATCH_SEED)
    existing = round(generated_users * EXISTING_USER_SHARE)
    mapping = np.concatenate(
        [
            rng.choice(np.arange(1, users + 1), existing, replace=False),
            np.arange(users + 1, users + 1 + generated_users - existing),
        ]
    )
    daily[ENTITY_KEY] = mapping[rng.permutation(generated_users)][daily[ENTITY_KEY].to_numpy() - 1]
    if daily.duplicated([ENTITY_KEY, TIMESTAMP]).any():
        raise SystemExit("the daily batch repeats a key")
    ingest_date = (DAILY_RUN).date()
    for kind, frame in ((batches.RECORDS, daily), (batches.LABELS, labels)):
        batch, _ = batches.append_batch(
            daily_root, kind, frame, ingest_date, batches.batch_id(content_hash(frame))
        )
        ids["daily"].append(batch.batch_id)
    result = {
        "records": records,
        "batch_share": batch_share,
        "users": users,
        "base_rows": base_rows,
        "daily_rows": len(daily),
        "daily_existing_users": int(existing),
        "daily_new_users": int(generated_users - existing),
        "daily_labelled_rows": int(daily[LABEL_SOURCE].notna().sum()),
        "labels_only_rows": len(labels),
        "batch_ids": ids,
        "generate_seconds": round(generated, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


def prepare_source(folder: Path, records: int, batch_share: float) -> dict:
    """The base and daily bronze roots, generated unless a matching set is already there."""
    source, meta = folder / "source", folder / "source.json"
    if meta.exists():
        known = json.loads(meta.read_text())
        if (known["records"], known["batch_share"]) == (records, batch_share):
            _progress(f"reusing the bronze batches in {source}")
            return known
    shutil.rmtree(source, ignore_errors=True)
    _progress(f"generating {records:,} records + a {batch_share:.0%} daily batch into {source} ...")
    known = run_child(
        MODULE,
        ["--child", "setup", "--records", str(records), "--batch-share", str(batch_share)],
        {"BENCH_SOURCE": str(source)},
    )
    meta.write_text(json.dumps(known, indent=2))
    _progress(f"  {known['base_rows']:,} base rows + {known['daily_rows']:,} daily in {known['seconds']} s")
    return known


def link_tree(source: Path, target: Path) -> None:
    """Hard-link every file of `source` into `target` (ingesting bronze batches without copying)."""
    for path in source.rglob("*"):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, destination)


# ----------------------------------------------------------------------------- measuring


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _reset_peak(pid: int) -> None:
    """Reset the process's peak resident size to its current one (Linux >= 4.0)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def written_rows(table_uris: list[str]) -> tuple[int, int]:
    """(rows, files) in the tables' parquet files written by this version: not hard links to an older one."""
    import pyarrow.parquet as pq

    rows = files = 0
    for path in (p for uri in table_uris for p in Path(uri).rglob("*.parquet")):
        if path.name.startswith((".", "_")) or path.stat().st_nlink > 1:
            continue
        rows += pq.read_metadata(path).num_rows
        files += 1
    return rows, files


def run_path(name: str, ingested, cfg, jvm_pid: int, valkey_pid: int) -> dict:
    """One timed feature run: build_features then publish_features, as the workflow calls them."""
    from tasks.features import build_features, publish_features

    waited = wait_until_quiet(max_cores=0.3, max_wait=MAX_WAIT, pids=[valkey_pid])
    load = load_average()
    _progress(f"running {name} (load {load}, waited {waited} s for quiet) ...")
    for pid in (os.getpid(), jvm_pid):
        _reset_peak(pid)
    with OtherCpu([valkey_pid]) as others:
        started = time.perf_counter()
        tables = build_features(ingested=ingested, cfg=cfg)
        built = time.perf_counter()
        published = publish_features(tables=tables, ingested=ingested, cfg=cfg)
        ended = time.perf_counter()
    rows, files = written_rows(list(tables.uris.values()))
    result = {
        "version": tables.version,
        "build_seconds": round(built - started, 2),
        "publish_apply_seconds": round(ended - built - published.materialize_seconds, 2),
        "materialize_seconds": published.materialize_seconds,
        "seconds": round(ended - started, 2),
        "table_rows": tables.rows,
        "rows_written": rows,
        "files_written": files,
        "changed_users": tables.changed_users,
        "online_users_written": published.online_users,
        "python_peak_rss_mib": _peak_mib(os.getpid()),
        "jvm_peak_rss_mib": _peak_mib(jvm_pid),
        "load_average_before": load,
        "other_cores": others.cores,
        "waited_for_quiet_seconds": waited,
    }
    _progress(
        f"  {name}: {result['seconds']} s (build {result['build_seconds']}, publish + apply "
        f"{result['publish_apply_seconds']}, materialize {result['materialize_seconds']}); "
        f"{rows:,} rows written; others {others.cores} cores"
    )
    return result


# Where the profile's time is attributed: the project's functions and Spark's actions.
PROFILED = ("/tasks/", "/spark_jobs/", "/income/", "pyspark/sql/readwriter.py", "pyspark/sql/dataframe.py")


def profile_incremental(ingested, cfg, path: Path) -> list[dict]:
    """The incremental run once more under cProfile; the project's and Spark's costliest calls."""
    import cProfile
    import pstats

    from tasks.features import build_features, publish_features

    _progress("incremental once more under cProfile (not timed) ...")
    profiler = cProfile.Profile()
    profiler.enable()
    tables = build_features(ingested=ingested, cfg=cfg)
    publish_features(tables=tables, ingested=ingested, cfg=cfg)
    profiler.disable()
    profiler.dump_stats(path)
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, function), (_, calls, _, cumulative, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if any(part in filename for part in PROFILED) and cumulative >= 0.5:
            called_from = sorted(
                ((f"{Path(c[0]).name}:{c[1]} {c[2]}", v[3]) for c, v in callers.items()),
                key=lambda item: -item[1],
            )[:3]
            rows.append(
                {
                    "function": f"{filename.split('/wt-bench10/')[-1]}:{line} {function}",
                    "calls": calls,
                    "cumulative_seconds": round(cumulative, 2),
                    "called_from": [(where, round(seconds, 2)) for where, seconds in called_from],
                }
            )
    rows.sort(key=lambda row: -row["cumulative_seconds"])
    for row in rows[:40]:
        seconds, calls = row["cumulative_seconds"], row["calls"]
        _progress(f"  {seconds:8.2f} s {calls:5d}x  {row['function']}  <- {row['called_from']}")
    return rows[:60]


# ----------------------------------------------------------------------------- checks


def compare_tables(spark, root: str, incremental: str, full: str) -> list[str]:
    """Differences between two versions' tables: counts, and rows missing on either side."""
    from income.features.offline_store import sealed

    problems = []
    a, b = sealed(root, incremental), sealed(root, full)
    if set(a.tables) != set(b.tables):
        return [f"tables differ: {sorted(a.tables)} vs {sorted(b.tables)}"]
    for name in a.tables:
        left, right = spark.read.parquet(a.uri(name)), spark.read.parquet(b.uri(name))
        right = right.select(*left.columns)
        counts = (left.count(), right.count())
        only_left, only_right = left.exceptAll(right).count(), right.exceptAll(left).count()
        if counts[0] != counts[1] or only_left or only_right:
            problems.append(
                f"{name}: {counts[0]:,} vs {counts[1]:,} rows; {only_left:,} only in the incremental "
                f"version, {only_right:,} only in the full rebuild"
            )
        _progress(f"  {name}: {counts[0]:,} rows, {only_left} / {only_right} rows on one side only")
    return problems


def online_state(client) -> dict[bytes, int]:
    """Every key but the markers, with a digest of its HGETALL (field order does not matter)."""
    from income.features.materialize import MARKER_PREFIX

    state: dict[bytes, int] = {}
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, count=10_000)
        keys = [k for k in keys if not k.startswith(MARKER_PREFIX.encode())]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        for key, fields in zip(keys, pipe.execute(), strict=True):
            content = hashlib.blake2b(key, digest_size=8)
            for field in sorted(fields):
                content.update(b"%d:%s%d:%s" % (len(field), field, len(fields[field]), fields[field]))
            state[key] = int.from_bytes(content.digest(), "little")
        if cursor == 0:
            return state


def online_summary(state: dict[bytes, int]) -> dict:
    """Key count and an order-free digest over every (key, HGETALL)."""
    return {"keys": len(state), "digest": f"{sum(state.values()) % 2**64:016x}"}


def simulated_expiry(spark, root: str, version: str, users: list[int]) -> dict[int, float]:
    """Seconds after T1 at which each user's key expires in simulated time, as materialize sets it:
    the earliest (latest event within the TTL + TTL) over the views; missing: no key is due."""
    from pyspark.sql import functions as F

    from income.data.schema import FEATURE_VIEWS
    from income.features.offline_store import sealed

    published = sealed(root, version)
    wanted = spark.createDataFrame([(u,) for u in users], "user_id long")
    ends: dict[int, float] = {}
    for name, view in FEATURE_VIEWS.items():
        rows = (
            spark.read.parquet(published.uri(name))
            .join(wanted, "user_id")
            .where(F.col("event_timestamp").between(DAILY_RUN - view.ttl, DAILY_RUN))
            .groupBy("user_id")
            .agg(F.max("event_timestamp").alias("latest"))
            .collect()
        )
        for row in rows:
            latest = row["latest"].replace(tzinfo=UTC) if row["latest"].tzinfo is None else row["latest"]
            end = (latest + view.ttl - DAILY_RUN).total_seconds()
            ends[row["user_id"]] = min(end, ends.get(row["user_id"], end))
    return ends


def compare_online(
    spark, root: str, full_version: str, states: dict, wall_window: float
) -> tuple[dict, list[str]]:
    """Valkey after the incremental run against Valkey after the full rebuild, key by key.

    A key the full run wrote with an expiry a few simulated seconds after T1 expires in wall
    time before the check reads it (Valkey counts from the write; the benchmark's day is
    simulated): a key on the incremental side only whose simulated expiry is within
    `wall_window` seconds (from the full run's start to the check) is explained, and listed.
    Every other difference, and every key whose content differs, is a problem.
    """
    from income.features.feature_store import get_store
    from income.features.materialize import key_layout

    incremental, full = states["incremental"], states["full"]
    only_incremental = [k for k in incremental if k not in full]
    only_full = [k for k in full if k not in incremental]
    changed = sum(1 for k, digest in full.items() if k in incremental and incremental[k] != digest)
    users = [int(u) for u in key_layout(get_store()).users(only_incremental)]
    expiry = simulated_expiry(spark, root, full_version, users) if users else {}
    expired = sorted(u for u in users if 0 < expiry.get(u, -1) <= wall_window)
    detail = {
        "keys_only_after_incremental": len(only_incremental),
        "keys_only_after_full": len(only_full),
        "keys_with_different_content": changed,
        "expired_in_wall_time": [{"user_id": u, "simulated_expiry_after_T1_s": expiry[u]} for u in expired],
        "wall_window_s": round(wall_window, 1),
    }
    problems = []
    unexplained = len(only_incremental) - len(expired)
    if unexplained or only_full or changed:
        problems.append(
            f"Valkey differs: {unexplained} keys only after the incremental run and not explained by "
            f"expiry, {len(only_full)} only after the full rebuild, {changed} with different content"
        )
    return detail, problems


# ----------------------------------------------------------------------------- the run


def data_folder(records: int, batch_share: float) -> Path:
    """Where the bronze batches, the offline store and Valkey's files go: outside the bench dir
    (tens of GB at 10M records; $BENCH_DATA, default /tmp/income-bench)."""
    path = Path(os.environ.get("BENCH_DATA", "/tmp/income-bench")) / f"incremental-{records}-{batch_share}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(records: int, batch_share: float, repeat: int, profile: bool = False) -> dict:
    folder = bench_dir(f"incremental_features-{records}-{batch_share}")
    data = data_folder(records, batch_share)
    load_before = load_average()
    _progress(f"machine: {machine()}; load average {load_before}")
    source = prepare_source(data, records, batch_share)

    work = data / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    root = work / "offline_store"
    server = private_valkey(work)
    env = {
        "INCOME_RUNTIME": str(work),
        "INCOME_OFFLINE_STORE": str(root),
        "FEAST_REGISTRY_PATH": str(work / "feast" / "registry.db"),
        "VALKEY_HOST": server.bind,
        "VALKEY_PORT": str(server.port),
        "VALKEY_PASSWORD": server.password,
        "PYSPARK_SUBMIT_ARGS": QUIET_SPARK,
    }
    os.environ.update(env)
    try:
        profile_to = folder / "incremental.pstats" if profile else None
        return _run_all(folder, data, source, root, server, repeat, load_before, profile_to)
    finally:
        server.stop()


def _run_all(
    folder: Path, data: Path, source: dict, root: Path, server, repeat: int, load_before, profile_to
) -> dict:
    from income.features.feature_store import FEATURE_SERVICE, apply_definitions, get_store
    from income.features.materialize import materialize
    from income.features.offline_store import publish
    from income.platform.settings import ValkeySettings
    from income.platform.spark import local_session
    from tasks.config import FeaturePipelineConfig
    from tasks.data import IngestedBatch
    from tasks.features import build_features, publish_features

    started = time.perf_counter()
    spark = local_session("incremental-features-benchmark", cores=2)
    spark.sparkContext.setLogLevel("ERROR")
    jvm_pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    startup = round(time.perf_counter() - started, 1)
    valkey_pid = server.pid()
    client = ValkeySettings.from_env().client()
    # Every version stays: the base is re-published between repeats.
    cfg = FeaturePipelineConfig(keep_versions=1000)
    ids = source["batch_ids"]

    link_tree(data / "source" / "base", root)
    base_in = IngestedBatch(
        run_time=BASE_RUN.isoformat(), source="benchmark base history", sha256="", batch_ids=ids["base"],
        new_batch_ids=ids["base"],
    )  # fmt: skip
    _progress("base: full build, publication and full materialization (not timed) ...")
    base_started = time.perf_counter()
    base_tables = build_features(ingested=base_in, cfg=cfg)
    base_published = publish_features(tables=base_tables, ingested=base_in, cfg=cfg)
    base = {
        "version": base_tables.version,
        "seconds": round(time.perf_counter() - base_started, 1),
        "materialize_seconds": base_published.materialize_seconds,
        "table_rows": base_tables.rows,
        "online_users": base_published.online_users,
    }
    _progress(f"  base {base['version']}: {base['seconds']} s; {base['online_users']:,} users in Valkey")

    link_tree(data / "source" / "daily", root)
    daily_in = IngestedBatch(
        run_time=DAILY_RUN.isoformat(), source="benchmark daily batch", sha256="", batch_ids=ids["daily"],
        new_batch_ids=ids["daily"],
    )  # fmt: skip
    runs: dict[str, list[dict]] = {name: [] for name in PATHS}
    problems: list[str] = []
    online: dict[str, dict] = {}

    def restore_base() -> None:
        _progress("restoring the base version in the offline store and Valkey (not timed) ...")
        published = publish(str(root), base["version"])
        store = get_store()
        apply_definitions(store)
        materialize(store, client, FEATURE_SERVICE, datetime.fromisoformat(published.as_of),
                    None, published.version)  # fmt: skip

    for attempt in range(repeat):
        if attempt:
            restore_base()
        runs["incremental"].append(run_path("incremental", daily_in, cfg, jvm_pid, valkey_pid))
        if attempt == 0:
            states = {"incremental": online_state(client)}
        full_started = time.monotonic()
        runs["full"].append(run_path("full", daily_in, replace(cfg, full_rebuild=True), jvm_pid, valkey_pid))
        if attempt == 0:
            states["full"] = online_state(client)
            wall_window = time.monotonic() - full_started
            online = {name: online_summary(state) for name, state in states.items()}
            _progress("comparing the incremental version with the full rebuild ...")
            problems += compare_tables(
                spark, str(root), runs["incremental"][0]["version"], runs["full"][0]["version"]
            )
            online["comparison"], found = compare_online(
                spark, str(root), runs["full"][0]["version"], states, wall_window
            )
            problems += found
            _progress(f"  Valkey: {online['comparison']}")
            del states
    profile = None
    if profile_to is not None:
        restore_base()
        try:
            profile = profile_incremental(daily_in, cfg, profile_to)
        except Exception as error:  # noqa: BLE001 - the measured results still count
            _progress(f"profiling failed: {error!r}")
    spark.stop()
    medians = {name: _median(results) for name, results in runs.items()}
    summary = {
        "machine": machine(),
        "records": source["base_rows"] + source["daily_rows"],
        "source": source,
        "spark_startup_seconds": startup,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "order": "incremental, then full, in each repeat",
        "repeat": repeat,
        "base": base,
        "runs": runs,
        "median": medians,
        "ratio": {
            key: round(medians["incremental"][key] / medians["full"][key], 3)
            for key in ("seconds", "build_seconds", "publish_apply_seconds", "materialize_seconds")
            if medians["full"][key]
        },
        "online": online,
        "profile": profile,
        "identical": not problems,
        "problems": problems,
    }
    (folder / "result.json").write_text(json.dumps(summary, indent=2))
    _progress(f"result in {folder / 'result.json'}")
    return summary


def _median(results: list[dict]) -> dict:
    """Per numeric figure the median over repeats; the rest from the first."""
    out = dict(results[0])
    for key, value in results[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = statistics.median(r[key] for r in results)
    return out


def _expiry_range(expired: list[dict]) -> str:
    seconds = [e["simulated_expiry_after_T1_s"] for e in expired]
    return f"{min(seconds):.0f} to {max(seconds):.0f}" if seconds else "none"


def report(summary: dict) -> str:
    """The markdown table, the ratio, the checks and the machine line."""
    m, source = summary["median"], summary["source"]
    online = summary["online"]
    compared = online["comparison"]
    lines = [
        "| path | total s | build s | publish + apply s | materialize s | rows written | users to Valkey "
        "| peak RSS Python / JVM (MiB) | load before | others (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label in PATHS.items():
        r = m[name]
        lines.append(
            f"| {label} | {r['seconds']:.1f} | {r['build_seconds']:.1f} | {r['publish_apply_seconds']:.1f} "
            f"| {r['materialize_seconds']:.1f} | {r['rows_written']:,.0f} | {r['online_users_written']:,.0f} "
            f"| {r['python_peak_rss_mib']:,.0f} / {r['jvm_peak_rss_mib']:,.0f} "
            f"| {r['load_average_before'][0]} | {r['other_cores']} |"
        )
    ratio = summary["ratio"]
    lines.append(
        f"| **incremental / full** | **{ratio['seconds']:.3f}** | {ratio.get('build_seconds', 0):.3f} "
        f"| {ratio.get('publish_apply_seconds', 0):.3f} | {ratio.get('materialize_seconds', 0):.3f} "
        "| | | | | |"
    )
    repeats = summary["repeat"]
    lines += [
        "",
        f"{summary['records']:,} records ({source['base_rows']:,} base + {source['daily_rows']:,} in the "
        f"daily batch: {source['daily_existing_users']:,} existing users, {source['daily_new_users']:,} new, "
        f"{source['daily_labelled_rows']:,} labelled; + {source['labels_only_rows']:,} labels-only rows); "
        f"{source['users']:,} base users; changed users {m['incremental']['changed_users']:,.0f}. "
        f"Order: {summary['order']}"
        + (f", median of {repeats}" if repeats > 1 else ", one run")
        + f"; warm Spark session (start-up {summary['spark_startup_seconds']} s, not counted).",
        f"Identical: {'yes' if summary['identical'] else 'NO'} (every table: counts and exceptAll both ways; "
        f"Valkey key by key: {online['full']['keys']:,} keys after the full rebuild, "
        f"{compared['keys_with_different_content']} with different content, "
        f"{compared['keys_only_after_full']} only after the full rebuild, "
        f"{compared['keys_only_after_incremental']} only after the incremental run, of which "
        f"{len(compared['expired_in_wall_time'])} expired in wall time before the check (simulated expiry "
        f"{_expiry_range(compared['expired_in_wall_time'])} s after T1, within the "
        f"{compared['wall_window_s']} s from the full run's start to the check))"
        + ("" if summary["identical"] else f": {summary['problems']}"),
        "",
        f"machine: {summary['machine']}; load average before {summary['load_average_before']}, "
        f"after {summary['load_average_after']}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--batch-share", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=1, help="repeats; the median is reported")
    parser.add_argument(
        "--profile", action="store_true", help="then one more incremental run under cProfile (not timed)"
    )
    parser.add_argument("--child", choices=["setup"])
    args = parser.parse_args()
    if args.child == "setup":
        setup_child(args.records, args.batch_share, Path(os.environ["BENCH_SOURCE"]))
        return
    summary = run(args.records, args.batch_share, args.repeat, args.profile)
    print(report(summary))
    if not summary["identical"]:
        raise SystemExit("the incremental version differs from the full rebuild")


if __name__ == "__main__":
    main()
