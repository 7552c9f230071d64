"""Batch scoring: champion + Feast (offline, as of T) -> Spark scoring -> predictions parquet + drift report.

pyflyte run workflows/batch_scoring.py batch_scoring
pyflyte run workflows/batch_scoring.py batch_scoring --cfg '{"as_of": "2026-01-01T00:00:00Z"}'
pyflyte run workflows/batch_scoring.py batch_scoring --cfg '{"population_uri": "users.csv"}'
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from flytekit import workflow

from income.inference.drift import DriftSummary
from tasks.inference import ScoringConfig, ScoringSummary, report_drift, score_batch


class BatchScoringOutcome(NamedTuple):
    scoring: ScoringSummary
    drift: DriftSummary


@workflow
def batch_scoring(
    run_time: datetime | None = None, cfg: ScoringConfig = ScoringConfig()
) -> BatchScoringOutcome:
    """Score as of `run_time` (the schedule's kickoff time) or cfg.as_of, then report drift."""
    scored = score_batch(cfg=cfg, run_time=run_time)
    drift = report_drift(scoring=scored.summary, features=scored.features)
    return BatchScoringOutcome(scoring=scored.summary, drift=drift)
