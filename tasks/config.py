"""Typed configuration of the pipelines: frozen dataclasses with their defaults in code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeaturePipelineConfig:
    users: int = 20_000  # synthetic users when no CSV is given (~3 records each)
    seed: int = 7
    start: str = "2023-07-01"  # synthetic survey period: recent enough that most users are
    end: str = "2026-06-30"  # within the views' 730-day TTL when scoring "as of now"
    invalid_share: float = 0.002  # synthetic rows corrupted on purpose, to exercise the quarantine
    max_invalid_share: float = 0.05  # fail the run when more of the input is invalid
    keep_versions: int = (
        3  # published feature sets kept for rebuilds and rollbacks (income.features.offline_store)
    )
