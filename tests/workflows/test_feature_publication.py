"""A feature run publishes all its tables together or not at all, whatever its input and wherever it fails."""

from __future__ import annotations

import pandas as pd
import pytest

from income.data.schema import FEATURE_TABLES, LABEL_SOURCE, LABEL_TABLE
from income.features.offline_store import current, versions

pytestmark = pytest.mark.integration

SCORING_DB = 3  # a Valkey database of its own: the session's feature run keeps db 0


@pytest.fixture(scope="module")
def own_store(pipeline_env, tmp_path_factory):
    """An offline store, registry and Valkey database apart from the session's feature run."""
    root = tmp_path_factory.mktemp("publication")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INCOME_OFFLINE_STORE", str(root / "offline_store"))
        mp.setenv("FEAST_REGISTRY_PATH", str(root / "registry.db"))
        mp.setenv("VALKEY_DB", str(SCORING_DB))
        yield root


@pytest.fixture(scope="module")
def label_less_run(own_store):
    """The feature pipeline on an Adult-format CSV of people to score: no `class` column."""
    from income.data.synthetic import generate_records
    from tasks.config import FeaturePipelineConfig
    from workflows.feature_pipeline import feature_pipeline

    records = generate_records(150, seed=5, start="2025-01-01", end="2026-06-30", invalid_share=0.0)
    csv = own_store / "people_to_score.csv"
    records.drop(columns=[LABEL_SOURCE]).to_csv(csv, index=False)
    return feature_pipeline(batch_file=str(csv), cfg=FeaturePipelineConfig())


def test_a_csv_without_labels_publishes_features_and_an_empty_label_table(label_less_run, own_store, spark):
    from income.training.labels import read_labels

    published = current(str(own_store / "offline_store"))
    assert published.version == label_less_run.tables.version
    assert published.tables[LABEL_TABLE].rows == 0
    assert all(published.tables[name].rows > 0 for name in FEATURE_TABLES)
    assert read_labels(str(own_store / "offline_store")).empty  # readable, with its columns
    assert label_less_run.online_users > 0


def test_one_setting_moves_every_table_and_every_feast_source(label_less_run, own_store):
    from income.features.feature_store import get_store

    root = str(own_store / "offline_store")
    published = current(root)
    assert all(info.uri.startswith(root) for info in published.tables.values())
    sources = {view.name: view.batch_source.path for view in get_store().list_feature_views()}
    assert sources == {name: published.uri(name) for name in FEATURE_TABLES}


def test_a_run_that_fails_between_two_tables_leaves_the_published_set_as_it_was(
    label_less_run, own_store, monkeypatch
):
    import tasks.features
    from income.features.feature_store import get_store, published_feature_set
    from tasks.config import FeaturePipelineConfig
    from workflows.feature_pipeline import feature_pipeline

    root = str(own_store / "offline_store")
    before = current(root)
    snapshot = {name: pd.read_parquet(before.uri(name)) for name in before.tables}
    write_table = tasks.features.write_table

    def dies_at_history(df, root, version, name, **kwargs):
        if name == "history":  # after demographic, relationship and occupation were written
            raise RuntimeError("killed between two table writes")
        return write_table(df, root, version, name, **kwargs)

    monkeypatch.setattr(tasks.features, "write_table", dies_at_history)
    with pytest.raises(Exception, match="killed between two table writes"):
        feature_pipeline(cfg=FeaturePipelineConfig(users=100, seed=3))

    after = current(root)
    assert after == before
    for name, df in snapshot.items():
        pd.testing.assert_frame_equal(pd.read_parquet(after.uri(name)), df)
    assert published_feature_set(get_store()).version == before.version  # Feast reads the same set
    assert len(versions(root)) > 1  # the failed attempts' folders stay until they are abandoned


def test_readers_refuse_a_registry_that_serves_another_version(label_less_run, own_store):
    from income.features.feature_store import (
        RegistryOutOfDateError,
        apply_definitions,
        get_store,
        published_feature_set,
    )
    from income.features.offline_store import publish_pandas_tables

    root = str(own_store / "offline_store")
    tables = {name: pd.read_parquet(current(root).uri(name)) for name in current(root).tables}
    newer = publish_pandas_tables(root, tables)  # published, but `feast apply` did not follow yet
    store = get_store()
    with pytest.raises(RegistryOutOfDateError, match="feast apply"):
        published_feature_set(store)
    apply_definitions(store)
    assert published_feature_set(get_store()).version == newer.version
