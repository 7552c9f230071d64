"""Which Flyte execution a task runs in, and the runtime folder it runs with.

`execution_id()` is the id every lineage record and MLflow run carries.

Every task of the project runs through `own_runtime` (tasks.resources.task declares them so).
Normally it changes nothing. With INCOME_ISOLATED_RUNTIME=1, a test mode, each task run gets
what a pod of its own would have on a cluster: a new, empty INCOME_RUNTIME folder, removed
when the task ends, and an environment whose changes do not outlive the task. Whatever a later
task needs must then reach it through its Flyte inputs or the configured stores (the offline
store, the Feast registry, MLflow and the Optuna studies, Valkey), as on a cluster. A store
left unset would default into the task's folder and vanish with it: the task refuses to start
and names the variable to set. The connection settings come from the environment only (a
fresh folder holds no `env` file): export them first, e.g. `set -a; . .runtime/env; set +a`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from flytekit import current_context

ISOLATED_RUNTIME = "INCOME_ISOLATED_RUNTIME"

log = logging.getLogger(__name__)


def execution_id() -> str:
    """The Flyte execution id, or "local" outside a registered execution."""
    try:
        return current_context().execution_id.name or "local"
    except Exception:  # noqa: BLE001 - outside a Flyte execution
        return "local"


def own_runtime(fn):
    """`fn` run in a runtime folder of its own when INCOME_ISOLATED_RUNTIME is set (see the module)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if os.environ.get(ISOLATED_RUNTIME, "") in ("", "0"):
            return fn(*args, **kwargs)
        with isolated_runtime(fn.__name__):
            return fn(*args, **kwargs)

    return run


@contextlib.contextmanager
def isolated_runtime(task_name: str) -> Iterator[Path]:
    """A new empty INCOME_RUNTIME for the duration, as a pod of its own would have; removed after,
    with every change to the environment undone."""
    saved = dict(os.environ)
    folder = Path(tempfile.mkdtemp(prefix=f"income-{task_name}-")).resolve()
    os.environ["INCOME_RUNTIME"] = str(folder)
    log.info("task %s runs with INCOME_RUNTIME=%s", task_name, folder)
    try:
        inside = stores_inside(folder)
        if inside:
            raise RuntimeError(
                f"{', '.join(inside)} not set: with {ISOLATED_RUNTIME} each task's runtime folder is "
                "its own and is removed when the task ends, so a store there would be lost; point "
                "these at a place every task reaches"
            )
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


def stores_inside(folder: Path) -> list[str]:
    """The variables naming the stores whose location falls inside `folder` (unset, they default
    into the runtime folder)."""
    from income.platform.settings import feast_registry_location, offline_store_uri
    from income.platform.tracking import artifact_location, tracking_uri
    from income.training.search import study_storage

    locations = {
        "INCOME_OFFLINE_STORE": offline_store_uri(),
        "FEAST_REGISTRY_PATH": feast_registry_location(),
        "MLFLOW_TRACKING_URI": tracking_uri(),
        "MLFLOW_ARTIFACTS_DESTINATION": artifact_location() or "",
        "INCOME_OPTUNA_STORAGE": study_storage(),
    }
    return [name for name, location in locations.items() if str(folder) in location]
