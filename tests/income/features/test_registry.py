"""Feast's SQL registry: where FEAST_REGISTRY_PATH points, and two writers at once lose nothing."""

from __future__ import annotations

import multiprocessing
import os
from datetime import UTC, datetime, timedelta

import pytest

from income.platform.settings import registry_config

WRITES = 40


def test_the_registry_location_chooses_the_registry():
    assert registry_config("/srv/feast/registry.sqlite") == ("sql", "sqlite:////srv/feast/registry.sqlite")
    assert registry_config("relative/registry.sqlite") == (
        "sql",
        f"sqlite:///{os.path.abspath('relative/registry.sqlite')}",
    )
    url = "postgresql+psycopg://feast@postgres:5432/feast"
    assert registry_config(url) == ("sql", url)
    assert registry_config("s3://bucket/registry.db") == ("file", "s3://bucket/registry.db")


def test_an_old_file_registry_is_named_with_what_to_do(tmp_path):
    old = tmp_path / "registry.db"
    old.write_bytes(b"\n\x0bproto bytes of a file registry")

    with pytest.raises(ValueError, match=r"registry.db is a Feast file registry.*make up"):
        registry_config(str(old))


def _record_intervals(registry: str, offline_store: str, view: str, queue, barrier) -> None:
    """In a process of its own: apply the definitions, then, when the other writer is ready too,
    record WRITES materialization intervals."""
    os.environ["FEAST_REGISTRY_PATH"] = registry
    os.environ["INCOME_OFFLINE_STORE"] = offline_store
    try:
        from income.features.feature_store import apply_definitions, get_store

        store = get_store()
        apply_definitions(store)
        barrier.wait(timeout=300)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for day in range(WRITES):
            fresh = get_store()  # each write from a store that read the registry before it
            feature_view = fresh.get_feature_view(view)
            fresh.registry.apply_materialization(
                feature_view, fresh.project, start + timedelta(days=day), start + timedelta(days=day + 1)
            )
        queue.put((view, None))
    except Exception as error:  # noqa: BLE001 - reported to the test
        queue.put((view, repr(error)))


@pytest.mark.integration
def test_two_workflows_writing_at_once_lose_none_of_each_others_changes(tmp_path, monkeypatch):
    registry = str(tmp_path / "feast" / "registry.sqlite")
    offline_store = str(tmp_path / "offline_store")
    context = multiprocessing.get_context("spawn")
    queue, barrier = context.Queue(), context.Barrier(2)
    writers = [
        context.Process(target=_record_intervals, args=(registry, offline_store, view, queue, barrier))
        for view in ("demographic", "occupation")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=400)
    outcomes = dict(queue.get(timeout=5) for _ in writers)
    assert outcomes == {"demographic": None, "occupation": None}

    monkeypatch.setenv("FEAST_REGISTRY_PATH", registry)
    monkeypatch.setenv("INCOME_OFFLINE_STORE", offline_store)
    from income.features.feature_store import get_store

    store = get_store()
    assert store.config.registry.registry_type == "sql"
    last = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=WRITES)
    for view in ("demographic", "occupation"):
        intervals = store.get_feature_view(view).materialization_intervals
        assert len(intervals) == WRITES, view  # every write of both writers
        assert max(end for _, end in intervals) == last
