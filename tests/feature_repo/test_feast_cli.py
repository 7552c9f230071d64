"""Feast's own CLI works from feature_repo/ with nothing but `.runtime/env` sourced, as the README says."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from income.data.schema import ENTITY_KEY, FEATURE_TABLES

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def env_file(feature_run, valkey_server) -> Path:
    """`.runtime/env` for the session's runtime folder, written the way `make up` writes it."""
    from income.platform.java import ensure_java
    from income.platform.valkey_server import write_env

    return write_env(valkey_server, ensure_java())


def feast(env_file: Path, *args: str, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    """`feast ARGS` in feature_repo/, in a shell that has only PATH, HOME and `.runtime/env`."""
    command = f"set -a; . {env_file}; set +a; cd {PROJECT / 'feature_repo'} && exec feast {' '.join(args)}"
    clean = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    if popen:
        return subprocess.Popen(["bash", "-c", command], env=clean, **popen)
    return subprocess.run(["bash", "-c", command], env=clean, capture_output=True, text=True, timeout=300)


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


def test_env_file_names_everything_feature_store_yaml_reads(env_file):
    text = env_file.read_text()
    for variable in (
        "FEAST_REGISTRY_TYPE",
        "FEAST_REGISTRY_URL",
        "FEAST_VALKEY_CONNECTION",
        "INCOME_OFFLINE_ENGINE",
    ):
        assert f"export {variable}=" in text


def test_feature_views_and_services_are_listed(env_file):
    views = succeeded(feast(env_file, "feature-views", "list"))
    assert all(view in views for view in FEATURE_TABLES)
    described = succeeded(feast(env_file, "feature-services", "describe", "income_v1"))
    assert "income_v1" in described and "hours_per_week_mean_365d" in described


def test_materialize_incremental_writes_what_the_pipeline_wrote(env_file):
    from income.features.feature_store import get_store

    store = get_store()
    users = [{ENTITY_KEY: u} for u in range(1, 60)]
    before = store.get_online_features(features=store.get_feature_service("income_v1"), entity_rows=users)

    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    output = succeeded(feast(env_file, "materialize-incremental", now))

    assert "Materializing" in output
    after = get_store().get_online_features(
        features=store.get_feature_service("income_v1"), entity_rows=users
    )
    assert after.to_dict() == before.to_dict()
    assert any(value is not None for value in after.to_dict()["age"])


def test_feast_ui_serves_the_registry(env_file):
    from income.platform.valkey_server import free_port

    port = free_port()
    server = feast(
        env_file, "ui", "--host", "127.0.0.1", "--port", str(port),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline, last_error = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            assert server.poll() is None, f"feast ui exited: {server.stderr.read()}"
            try:
                url = f"http://127.0.0.1:{port}/api/v1/feature_views?project=income"
                with urllib.request.urlopen(url, timeout=5) as answer:
                    body = answer.read().decode()
                assert all(f'"{view}"' in body for view in FEATURE_TABLES), body[:500]
                return
            except OSError as error:
                last_error = error
                time.sleep(0.5)
        pytest.fail(f"feast ui did not answer on port {port}: {last_error}")
    finally:
        server.terminate()
        server.wait(timeout=30)
