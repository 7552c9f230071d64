"""Materialization of N users into Valkey: the project's writer vs `feast materialize`.

    python -m benchmarks.materialization --users 1000000

Both run on the same parquet tables (the four views of `income_v1`, two rows per user
per view), each in a fresh process against the same fresh Valkey (flushed in between),
and both results are read back through Feast and compared for a sample of users.
Reports wall time and peak resident memory of each, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta

import numpy as np
import pandas as pd

from benchmarks.common import bench_dir, machine, peak_rss_mib, private_valkey, random_column, run_child
from income.features.offline_store import publish_pandas_tables

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


def child(kind: str) -> None:
    """One materialization in this process; prints a JSON line with time and peak memory."""
    from income.features.feature_store import apply_definitions, get_store
    from income.features.materialize import latest_event_time, materialize_latest
    from income.platform.settings import ValkeySettings

    valkey = ValkeySettings.from_env()
    store = get_store(valkey)
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
    parser.add_argument("--child", choices=["ours", "feast"])
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    folder = bench_dir(f"materialization-{args.users}")
    offline = folder / "offline_store"
    print(f"machine: {machine()}")
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
    import os

    os.environ.update(env)
    sample = np.random.default_rng(0).choice(np.arange(1, args.users + 1), 200, replace=False).tolist()
    results, online = {}, {}
    try:
        for kind in ("ours", "feast"):
            server.settings.client().flushall()
            print(f"running {kind} ...", flush=True)
            results[kind] = run_child("benchmarks.materialization", ["--child", kind], env)
            online[kind] = sample_online(sample)
            print(f"  {results[kind]}", flush=True)
    finally:
        server.stop()
    same = online["ours"] == online["feast"]
    speedup = results["feast"]["seconds"] / results["ours"]["seconds"]
    memory = results["feast"]["peak_rss_mib"] / results["ours"]["peak_rss_mib"]
    print("\n| users | writer | seconds | peak RSS (MiB) |\n|---|---|---|---|")
    for kind, label in (("ours", "income.features.materialize"), ("feast", "feast materialize")):
        r = results[kind]
        print(f"| {args.users:,} | {label} | {r['seconds']} | {r['peak_rss_mib']:,} |")
    print(
        f"\nspeed-up {speedup:.1f}x, peak memory {memory:.1f}x lower; "
        f"online values identical for {len(sample)} sampled users: {same}"
    )
    (folder / "result.json").write_text(
        json.dumps(
            {"machine": machine(), "users": args.users, "results": results, "identical": same}, indent=2
        )
    )
    if not same:
        raise SystemExit("online values differ between the two writers")


if __name__ == "__main__":
    main()
