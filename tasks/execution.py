"""Which Flyte execution a task runs in: the id every lineage record and MLflow run carries."""

from __future__ import annotations

from flytekit import current_context


def execution_id() -> str:
    """The Flyte execution id, or "local" outside a registered execution."""
    try:
        return current_context().execution_id.name or "local"
    except Exception:  # noqa: BLE001 - outside a Flyte execution
        return "local"
