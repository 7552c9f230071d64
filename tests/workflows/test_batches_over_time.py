"""The feature pipeline over time: batches append, re-runs change nothing, features stay true when read.

Every run here goes through the Flyte workflow on a store of its own (offline store,
registry, Valkey database), and Valkey keeps what the previous run wrote.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from income.data.schema import (
    ENTITY_KEY,
    FEATURE_TABLES,
    FEATURE_VIEWS,
    HISTORY_FEATURES,
    LABEL_SOURCE,
    LABEL_TABLE,
    PARTITION_COLUMN,
    TIMESTAMP,
)
from income.features.offline_store import current

pytestmark = pytest.mark.integration

RUN_TIME = "2026-07-01T02:00:00+00:00"
SPLIT, LATE = pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-05-01", tz="UTC")


ALL_FEATURES = "income_v2"  # the feature service with every feature of every view


def _own_store(tmp_path_factory, name: str, db: int):
    root = tmp_path_factory.mktemp(name)
    mp = pytest.MonkeyPatch()
    mp.setenv("INCOME_OFFLINE_STORE", str(root / "offline_store"))
    mp.setenv("FEAST_REGISTRY_PATH", str(root / "registry.db"))
    mp.setenv("VALKEY_DB", str(db))
    return root, mp


def _tables(root) -> dict[str, pd.DataFrame]:
    published = current(str(root / "offline_store"))
    out = {}
    for name in [*FEATURE_TABLES, LABEL_TABLE]:
        df = pd.read_parquet(published.uri(name)).drop(columns=[PARTITION_COLUMN], errors="ignore")
        out[name] = df.sort_values([ENTITY_KEY, TIMESTAMP]).reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def batch_files(pipeline_env, tmp_path_factory):
    """A: early records; B: later records of some of A's users (parquet), some labels held back;
    C: the held-back labels (labels-only); D: the latest records, without a `class` column."""
    from income.data.synthetic import generate_records, write_parquet

    folder = tmp_path_factory.mktemp("batches")
    world = generate_records(250, seed=21, start="2025-01-01", end="2026-06-30", invalid_share=0.0)
    world = world.rename(columns={LABEL_SOURCE: "class"})
    early, later = world[world[TIMESTAMP] < SPLIT], world[world[TIMESTAMP] >= SPLIT]
    b, d = later[later[TIMESTAMP] < LATE].copy(), later[later[TIMESTAMP] >= LATE].copy()
    held_back = b.index[b["class"].notna()][::2]
    c = pd.concat([b.loc[held_back], d[d["class"].notna()]])[[ENTITY_KEY, TIMESTAMP, "class"]]
    b.loc[held_back, "class"] = None
    files = {
        "A": folder / "a.csv",
        "B": folder / "b.parquet",
        "C": folder / "c_labels.csv",
        "D": folder / "d_no_class.csv",
        "all": folder / "all.csv",
    }
    early.to_csv(files["A"], index=False)
    write_parquet(b.rename(columns={"class": LABEL_SOURCE}), files["B"])
    c.to_csv(files["C"], index=False)
    d.drop(columns=["class"]).to_csv(files["D"], index=False)
    world.to_csv(files["all"], index=False)
    assert set(b[ENTITY_KEY]) & set(early[ENTITY_KEY]), "B must hold new records of A's users"
    return files


@pytest.fixture(scope="module")
def one_by_one(batch_files, tmp_path_factory):
    """A, B, C, D through the pipeline one after another; then B again. (root, outcomes)."""
    from tasks.config import FeaturePipelineConfig
    from workflows.feature_pipeline import feature_pipeline

    root, mp = _own_store(tmp_path_factory, "one_by_one", db=4)
    outcomes = {}
    try:
        for name in ["A", "B", "C", "D", "B"]:
            key = name if name not in outcomes else f"{name} again"
            outcomes[key] = feature_pipeline(
                run_time=pd.Timestamp(RUN_TIME).to_pydatetime(),
                batch_file=str(batch_files[name]),
                cfg=FeaturePipelineConfig(),
            )
        yield root, outcomes
    finally:
        mp.undo()


def test_batches_one_by_one_give_the_tables_of_one_run_on_all_of_them(
    one_by_one, batch_files, tmp_path_factory
):
    from tasks.config import FeaturePipelineConfig
    from workflows.feature_pipeline import feature_pipeline

    root, outcomes = one_by_one
    assert all(outcomes[n].tables.previous for n in "BCD"), "B, C and D are incremental"
    all_root, mp = _own_store(tmp_path_factory, "all_at_once", db=5)
    try:
        feature_pipeline(
            run_time=pd.Timestamp(RUN_TIME).to_pydatetime(),
            batch_file=str(batch_files["all"]),
            cfg=FeaturePipelineConfig(),
        )
    finally:
        mp.undo()
    incremental, full = _tables(root), _tables(all_root)
    for name in full:
        pd.testing.assert_frame_equal(incremental[name], full[name], check_dtype=False, obj=name)
    assert len(full[LABEL_TABLE]) > 0 and len(full["history"]) > len(full["demographic"])


def test_the_same_batch_twice_changes_nothing(one_by_one):
    root, outcomes = one_by_one
    again = outcomes["B again"]
    assert again.tables.unchanged
    assert (
        again.tables.version == outcomes["D"].tables.version == current(str(root / "offline_store")).version
    )


# --- features true as of the moment they are read ------------------------------------------

DAY = pd.Timedelta(days=1)
WINDOW = pd.Timedelta(days=365)


def _oracle(records: pd.DataFrame, user: int, t: pd.Timestamp) -> dict:
    """What a user's features are at t, straight from the raw records (None: nothing within the TTL)."""
    mine = records[(records[ENTITY_KEY] == user) & (records[TIMESTAMP] <= t)].sort_values(TIMESTAMP)
    if mine.empty or mine[TIMESTAMP].iloc[-1] < t - FEATURE_VIEWS["demographic"].ttl:
        return {}
    latest = mine.iloc[-1]
    job_change = (mine["occupation"].fillna("\0") != mine["occupation"].fillna("\0").shift()).astype(int)
    marital_change = (mine["marital_status"] != mine["marital_status"].shift()).astype(int)
    job_change.iloc[0] = marital_change.iloc[0] = 0
    window = mine[TIMESTAMP] > t - WINDOW
    expected = {
        name: latest[name]
        for view in ("demographic", "occupation")
        for name in FEATURE_VIEWS[view].feature_names
    }
    expected.update(
        capital_net=latest["capital_gain"] - latest["capital_loss"],
        records_365d=int(window.sum()),
        job_changes_365d=int(job_change[window].sum()),
        marital_changes_365d=int(marital_change[window].sum()),
        hours_per_week_mean_365d=mine.loc[window, "hours_per_week"].mean() if window.any() else None,
        records_total=len(mine),
    )
    return expected


def _same(a, b) -> bool:
    if a is None or (isinstance(a, float) and np.isnan(a)) or a is pd.NA:
        return b is None or (isinstance(b, float) and np.isnan(b)) or b is pd.NA
    return a == pytest.approx(b) if isinstance(a, float) else a == b


@pytest.fixture(scope="module")
def daily_runs(pipeline_env, tmp_path_factory):
    """A backfill, two daily runs and one after a 40-day gap, on one store and one Valkey database."""
    from tasks.config import FeaturePipelineConfig
    from workflows.feature_pipeline import feature_pipeline

    root, mp = _own_store(tmp_path_factory, "daily", db=6)
    cfg = FeaturePipelineConfig(users=300, seed=5, start="2025-01-01", end="2026-12-31", invalid_share=0.0)
    times = ["2026-03-01T02:00:00Z", "2026-03-02T02:00:00Z", "2026-03-03T02:00:00Z", "2026-04-13T02:00:00Z"]
    yield (
        root,
        cfg,
        [pd.Timestamp(t) for t in times],
        lambda t: feature_pipeline(run_time=t.to_pydatetime(), cfg=cfg),
    )
    mp.undo()


def test_features_are_true_when_read_offline_online_and_in_batch(daily_runs):
    from income.data import batches
    from income.features.feature_store import get_store
    from income.features.point_in_time import point_in_time_features
    from income.inference.batch_features import features_as_of
    from income.training.fingerprint import fingerprint
    from income.training.labels import read_labels
    from income.training.training_set import join_training_set, rebuild_training_set

    root, cfg, times, run = daily_runs
    rng = np.random.default_rng(3)
    features = [n for view in FEATURE_VIEWS.values() for n in view.feature_names]
    checked, training_sets = 0, {}
    for t in times:
        outcome = run(t)
        store = get_store()
        labels = read_labels(str(root / "offline_store"))
        training_sets[outcome.tables.version] = fingerprint(join_training_set(store, labels))["sha256"]
        as_of = pd.Timestamp(outcome.tables.as_of)
        records = batches.read_bronze(str(root / "offline_store"), batches.RECORDS)
        users = np.sort(records[ENTITY_KEY].unique())

        # Offline, at random moments up to as_of: the point-in-time join equals the raw records' truth.
        sample = pd.DataFrame(
            {
                ENTITY_KEY: rng.choice(users, 150),
                TIMESTAMP: as_of - pd.to_timedelta(rng.integers(0, 800 * 24 * 3600, 150), unit="s"),
            }
        ).drop_duplicates([ENTITY_KEY, TIMESTAMP])
        # income_v2: every feature of every view (income_v1 reads the same rows, fewer columns).
        joined = point_in_time_features(store, sample, engine="asof", service_name=ALL_FEATURES)
        for row in joined.itertuples(index=False):
            row = row._asdict()
            truth = _oracle(records, row[ENTITY_KEY], row[TIMESTAMP])
            if not truth:
                continue  # nothing within the TTL: such users are never scored (test_scoreable)
            wrong = {f: (row[f], truth[f]) for f in truth if not _same(row[f], truth[f])}
            assert not wrong, f"user {row[ENTITY_KEY]} at {row[TIMESTAMP]}: (join, truth) {wrong}"
            checked += 1

        # Online after the run, batch scoring as of the run, and the join at as_of: one answer.
        at_as_of = features_as_of(
            store, pd.DataFrame({ENTITY_KEY: users}), as_of, service_name=ALL_FEATURES
        ).set_index(ENTITY_KEY)
        online = (
            store.get_online_features(
                features=store.get_feature_service(ALL_FEATURES),
                entity_rows=[{ENTITY_KEY: int(u)} for u in users],
            )
            .to_df()
            .set_index(ENTITY_KEY)
        )
        scoreable = at_as_of[FEATURE_VIEWS["demographic"].feature_names[0]].notna()
        assert online["age"].notna().equals(scoreable.reindex(online.index)), (
            "Valkey holds exactly the scoreable users"
        )
        for user in at_as_of.index[scoreable]:
            wrong = {
                f: (online.at[user, f], at_as_of.at[user, f])
                for f in features
                if not _same(online.at[user, f], at_as_of.at[user, f])
            }
            assert not wrong, f"user {user} at {as_of}: (online, batch) {wrong}"
        assert at_as_of.loc[scoreable, HISTORY_FEATURES].notna().any().all()
    assert checked > 100

    # A training set can be rebuilt from a retained version (the newest 3 are kept), not from a removed one.
    versions = list(training_sets)
    for version in versions[-3:]:
        rebuilt = rebuild_training_set(store, str(root / "offline_store"), version)
        assert fingerprint(rebuilt)["sha256"] == training_sets[version], version
    with pytest.raises(FileNotFoundError):
        rebuild_training_set(store, str(root / "offline_store"), versions[0])


def test_a_scheduled_run_ingests_its_day_from_the_landing_folder_once(batch_files, tmp_path_factory):
    from tasks.config import FeaturePipelineConfig
    from workflows.feature_pipeline import feature_pipeline

    root, mp = _own_store(tmp_path_factory, "landing", db=9)
    landing = root / "landing"
    landing.mkdir()
    (landing / "2026-06-30.csv").write_bytes(batch_files["A"].read_bytes())
    (landing / "2026-06-29.csv").write_bytes(batch_files["D"].read_bytes())  # another day's: not taken
    cfg = FeaturePipelineConfig(landing_folder=str(landing))
    try:
        first = feature_pipeline(run_time=pd.Timestamp(RUN_TIME).to_pydatetime(), cfg=cfg)
        again = feature_pipeline(run_time=pd.Timestamp(RUN_TIME).to_pydatetime(), cfg=cfg)
    finally:
        mp.undo()
    assert first.tables.rows["demographic"] == len(pd.read_csv(batch_files["A"]))
    assert again.tables.unchanged and again.tables.version == first.tables.version
