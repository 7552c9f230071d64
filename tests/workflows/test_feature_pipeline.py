"""End to end: the feature pipeline through Flyte on synthetic data, against a real Valkey."""

from __future__ import annotations

import glob

import pandas as pd
import pytest

from income.data.schema import ENTITY_KEY, FEATURE_TABLES, LABEL_TABLE, TIMESTAMP

pytestmark = pytest.mark.integration


def read_table(uri: str) -> pd.DataFrame:
    files = sorted(glob.glob(f"{uri}/**/*.parquet", recursive=True))
    assert files, f"no parquet files under {uri}"
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return df.sort_values([ENTITY_KEY, TIMESTAMP]).reset_index(drop=True)


def fresh_users(snapshot: dict[str, pd.DataFrame], published) -> list[int]:
    """Users with a record inside the materialization window (the views' TTL before its end)."""
    latest = snapshot["demographic"].groupby(ENTITY_KEY)[TIMESTAMP].max()
    return sorted(latest[latest >= pd.Timestamp(published.window_start)].index)


@pytest.fixture(scope="module")
def first_run(feature_run):
    cfg, published = feature_run
    snapshot = {name: read_table(uri) for name, uri in published.tables.uris.items()}
    return cfg, published, snapshot


def test_pipeline_writes_every_table_and_fills_the_online_store(first_run):
    _, published, snapshot = first_run
    assert set(published.tables.uris) == {*FEATURE_TABLES, LABEL_TABLE}
    for name, df in snapshot.items():
        assert len(df) == published.tables.rows[name] > 0
        assert not df.duplicated([ENTITY_KEY, TIMESTAMP]).any(), name
    assert published.online_users == len(fresh_users(snapshot, published))
    assert published.feature_service == "income_v1"


def test_invalid_rows_never_reach_the_offline_store(first_run, pipeline_env):
    _, _, snapshot = first_run
    quarantine = pd.read_parquet(glob.glob(f"{pipeline_env}/quarantine/**/*.parquet", recursive=True)[0])
    assert len(quarantine) > 0 and quarantine["reason"].str.len().min() > 0
    demographic = snapshot["demographic"]
    assert demographic["age"].between(16, 100).all()
    assert demographic["sex"].isin(["Female", "Male"]).all()


def test_online_features_equal_the_latest_offline_rows(first_run):
    from income.features.feature_store import get_store

    _, published, snapshot = first_run
    store = get_store()
    users = pd.Series(fresh_users(snapshot, published)).sample(25, random_state=3).tolist()
    online = store.get_online_features(
        # income_v2: every feature of every view, as the tables hold them
        features=store.get_feature_service("income_v2"),
        entity_rows=[{ENTITY_KEY: u} for u in users],
    ).to_dict()
    for view in FEATURE_TABLES:
        latest = snapshot[view].groupby(ENTITY_KEY).tail(1).set_index(ENTITY_KEY)
        for feature in latest.columns.drop([TIMESTAMP, "event_month"], errors="ignore"):
            expected = [latest.at[u, feature] for u in users]
            expected = [None if pd.isna(v) else v for v in expected]
            got = online[feature]
            if latest[feature].dtype.kind == "f":
                assert got == pytest.approx(expected), (view, feature)
            else:
                assert got == expected, (view, feature)


def test_rerun_gives_identical_offline_tables(first_run):
    from workflows.feature_pipeline import feature_pipeline

    cfg, _, snapshot = first_run
    again = feature_pipeline(cfg=cfg)
    for name, uri in again.tables.uris.items():
        pd.testing.assert_frame_equal(read_table(uri), snapshot[name], check_like=True)


def test_users_older_than_the_ttl_are_not_served_online(first_run):
    from income.features.feature_store import get_store

    _, published, snapshot = first_run
    stale = sorted(set(snapshot["demographic"][ENTITY_KEY]) - set(fresh_users(snapshot, published)))
    assert stale, "the synthetic history should span more than the 730-day TTL"
    online = (
        get_store()
        .get_online_features(features=["demographic:age"], entity_rows=[{ENTITY_KEY: u} for u in stale[:10]])
        .to_dict()
    )
    assert online["age"] == [None] * len(stale[:10])
