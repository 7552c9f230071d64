"""Materialization of N users into Valkey: the project's writer vs `feast materialize`, default and tuned.

    python -m benchmarks.materialization --users 1000000

All writers run on the same parquet tables (the four views of `income_v1`, two rows per
user per view), each in a fresh process against the same fresh Valkey (flushed in between),
and every result is read back through Feast and compared with ours for a sample of users.
Reports wall time and peak resident memory of each, and the ratios against the best Feast
configuration (fastest, and smallest peak, which need not be the same one); next to each,
the load average before it and the cores other processes kept busy during it (each run
first waits, up to two minutes, for other processes to go quiet).

Feast is run in the configurations given by --feast (default: all of FEAST_CONFIGS). Each
is the project's feature_repo/feature_store.yaml plus a few documented Feast 0.67 options,
written to a copy in the benchmark's folder, so the product configuration is not touched:
- `default`: the file as the project ships it (every row in one online write per view),
- `batched`: `materialization.online_write_batch_size: 10000`, which streams the online
  writes in batches of 10,000 rows (bounded memory) instead of one write of every row,
- `latest`: `batched` plus `materialization.pull_latest_features: true` (the offline store
  hands over only each user's latest row) and the redis store's `skip_dedup: true` (no read
  of the stored timestamps before writing; safe here, on an empty store and latest rows only),
- `latest_duckdb`: `latest` with Feast's DuckDB offline store instead of its file (Dask) one.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import (
    OtherCpu,
    bench_dir,
    load_average,
    machine,
    peak_rss_mib,
    private_valkey,
    random_column,
    run_child,
    wait_until_quiet,
)
from income.features.offline_store import publish_pandas_tables

# Options added to feature_repo/feature_store.yaml, per Feast configuration (see the docstring).
FEAST_CONFIGS: dict[str, dict] = {
    "default": {},
    "batched": {"materialization": {"online_write_batch_size": 10_000}},
    "latest": {
        "materialization": {"online_write_batch_size": 10_000, "pull_latest_features": True},
        "online_store": {"skip_dedup": True},
    },
    "latest_duckdb": {
        "materialization": {"online_write_batch_size": 10_000, "pull_latest_features": True},
        "online_store": {"skip_dedup": True},
        "offline_store": {"type": "duckdb"},
    },
}
FEAST_YAML = "BENCH_FEAST_YAML"  # the child's feature_store.yaml, when not the project's

VIEW_COLUMNS = {
    "demographic": {
        "age": "int",
        "sex": ["Female", "Male"],
        "race": ["White", "Black", "Other"],
        "native_country": ["United-States", "Mexico", None],
    },
    "relationship": {
        "marital_status": ["Never-married", "Married-civ-spouse", "Divorced"],
        "relationship": ["Husband", "Wife", "Own-child", "Not-in-family"],
    },
    "occupation": {
        "workclass": ["Private", "Self-emp-inc", None],
        "education": ["Bachelors", "HS-grad"],
        "education_num": "int",
        "occupation": ["Sales", "Tech-support", None],
        "hours_per_week": "int",
        "capital_gain": "int",
        "capital_loss": "int",
    },
    "history": {
        "capital_net": "int",
        "records_365d": "int",
        "job_changes_365d": "int",
        "marital_changes_365d": "int",
        "hours_per_week_mean_365d": "float",
    },
}


def make_tables(root, users: int, rows_per_user: int = 2, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    n = users * rows_per_user
    user_id = np.repeat(np.arange(1, users + 1, dtype=np.int64), rows_per_user)
    tables = {}
    for view, columns in VIEW_COLUMNS.items():
        offsets = rng.integers(0, 600 * 86_400, n)
        ts = pd.to_datetime("2025-01-01", utc=True) + pd.to_timedelta(offsets, unit="s")
        data = {"user_id": user_id, "event_timestamp": ts.astype("datetime64[us, UTC]")}
        for name, kind in columns.items():
            data[name] = random_column(rng, kind, n)
        tables[view] = pd.DataFrame(data)
    publish_pandas_tables(str(root), tables)


def feast_yaml(folder: Path, config: str) -> Path:
    """A copy of the project's feature_store.yaml with the options of FEAST_CONFIGS[config]."""
    import yaml

    from income.features.feature_store import FEATURE_REPO

    settings = yaml.safe_load((FEATURE_REPO / "feature_store.yaml").read_text())
    for section, options in FEAST_CONFIGS[config].items():
        settings[section] = {**settings.get(section, {}), **options}
    path = folder / f"feature_store.{config}.yaml"
    # ${...} placeholders stay as they are: Feast expands them from the environment.
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def describe(options: dict) -> str:
    """'online_write_batch_size=10000, skip_dedup=True' for a FEAST_CONFIGS entry."""
    pairs = [f"{key}={value}" for section in options.values() for key, value in section.items()]
    return ", ".join(pairs) or "the project's feature_store.yaml"


def child(kind: str) -> None:
    """One materialization in this process; prints a JSON line with time and peak memory."""
    from feast import FeatureStore

    from income.features.feature_store import FEATURE_REPO, apply_definitions, configure_environment
    from income.features.materialize import latest_event_time, materialize_latest
    from income.platform.settings import ValkeySettings

    valkey = ValkeySettings.from_env()
    configure_environment(valkey)
    yaml_path = os.environ.get(FEAST_YAML)
    store = FeatureStore(repo_path=str(FEATURE_REPO), fs_yaml_file=Path(yaml_path) if yaml_path else None)
    apply_definitions(store)
    end = latest_event_time(store, "income_v1")
    started = time.perf_counter()
    if kind == "ours":
        materialize_latest(store, valkey.client(), "income_v1", end=end, show_progress=False)
    else:
        views = [p.name for p in store.get_feature_service("income_v1").feature_view_projections]
        store.materialize(end - timedelta(days=730), end, feature_views=views)
    seconds = time.perf_counter() - started
    print(json.dumps({"kind": kind, "seconds": round(seconds, 1), "peak_rss_mib": peak_rss_mib()}))


def sample_online(users: list[int]) -> dict:
    from income.features.feature_store import get_store

    store = get_store()
    return store.get_online_features(
        features=store.get_feature_service("income_v1"), entity_rows=[{"user_id": u} for u in users]
    ).to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument(
        "--feast", action="append", choices=list(FEAST_CONFIGS), help="repeat to pick; default: all"
    )
    parser.add_argument("--child", choices=["ours", "feast"])
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    feast_configs = args.feast or list(FEAST_CONFIGS)

    folder = bench_dir(f"materialization-{args.users}")
    offline = folder / "offline_store"
    load_before = load_average()
    print(f"machine: {machine()}; load average {load_before}")
    print(f"writing {args.users:,} users x 4 views x 2 rows to {offline} ...", flush=True)
    make_tables(offline, args.users)
    server = private_valkey(folder)
    env = {
        "INCOME_RUNTIME": str(folder),
        "INCOME_OFFLINE_STORE": str(offline),
        "FEAST_REGISTRY_PATH": str(folder / "registry.db"),
        "VALKEY_HOST": server.bind,
        "VALKEY_PORT": str(server.port),
        "VALKEY_PASSWORD": server.password,
    }
    os.environ.update(env)
    runs = {"ours": ("ours", {})}
    for config in feast_configs:
        runs[f"feast_{config}"] = ("feast", {FEAST_YAML: str(feast_yaml(folder, config))})
    sample = np.random.default_rng(0).choice(np.arange(1, args.users + 1), 200, replace=False).tolist()
    results, online = {}, {}
    try:
        for name, (kind, extra_env) in runs.items():
            server.settings.client().flushall()
            waited = wait_until_quiet(pids=[server.pid()])
            load = load_average()
            print(f"running {name} (load {load}) ...", flush=True)
            with OtherCpu([server.pid()]) as others:
                results[name] = run_child(
                    "benchmarks.materialization", ["--child", kind], {**env, **extra_env}
                )
            results[name]["load_average_before"] = load
            results[name]["other_cores"] = others.cores
            results[name]["waited_for_quiet_seconds"] = waited
            online[name] = sample_online(sample)
            print(f"  {results[name]}", flush=True)
    finally:
        server.stop()
    same = {name: online[name] == online["ours"] for name in results}
    feast_runs = [name for name in results if name != "ours"]
    fastest = min(feast_runs, key=lambda n: results[n]["seconds"])
    leanest = min(feast_runs, key=lambda n: results[n]["peak_rss_mib"])
    ours = results["ours"]
    labels = {"ours": "income.features.materialize"} | {
        f"feast_{c}": f"feast materialize, `{c}` ({describe(FEAST_CONFIGS[c])})" for c in feast_configs
    }
    print(f"\nload average before {load_before}, after {load_average()}\n")
    print(
        "| users | writer | seconds | peak RSS (MiB) | load before | other processes (cores) | same as ours |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {args.users:,} | {labels[name]} | {r['seconds']} | {r['peak_rss_mib']:,} "
            f"| {r['load_average_before'][0]} | {r['other_cores']} | {same[name]} |"
        )
    print(
        f"\nvs the fastest Feast ({fastest}): {results[fastest]['seconds'] / ours['seconds']:.1f}x faster; "
        f"peak memory: the leanest Feast ({leanest}) {results[leanest]['peak_rss_mib']:,} MiB, ours "
        f"{ours['peak_rss_mib'] / results[leanest]['peak_rss_mib']:.2f}x that; "
        f"online values identical for {len(sample)} sampled users: {all(same.values())}"
    )
    (folder / "result.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "users": args.users,
                "feast_configs": {c: FEAST_CONFIGS[c] for c in feast_configs},
                "load_average_before": load_before,
                "results": results,
                "identical_to_ours": same,
            },
            indent=2,
        )
    )
    if not all(same.values()):
        raise SystemExit(f"online values differ from ours: {same}")


if __name__ == "__main__":
    main()
