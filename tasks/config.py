"""Typed configuration of the pipelines: frozen dataclasses with their defaults in code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeaturePipelineConfig:
    # The synthetic world a run without a batch file draws its day from (income.data.synthetic).
    users: int = 20_000  # synthetic users (~3 records each)
    seed: int = 7
    # The synthetic world's survey period. It runs past today: a run ingests what happened
    # before its run time (the backfill on the first run, then one day per run), so features
    # "as of now" describe a living population, as they would in production.
    start: str = "2024-01-01"
    end: str = "2027-12-31"
    label_share: float = 0.6  # share of records whose income is ever observed
    label_lag_days: int = 28  # outcomes arrive this long after the record they belong to
    drift_start: str = ""  # ISO date from which the world drifts (occupation mix, hours); "" none
    invalid_share: float = 0.002  # synthetic rows corrupted on purpose, to exercise the quarantine
    max_invalid_share: float = 0.05  # fail the run when more of the input is invalid
    keep_versions: int = 3  # published feature sets kept for rebuilds and rollbacks
    full_rebuild: bool = False  # rebuild every table from the raw history instead of incrementally
    # A folder (or URI) where daily files land, named by their day: a run without a batch file
    # ingests the files of the day before its run time (2026-11-25*.csv|parquet); "" = synthetic.
    landing_folder: str = ""

    def world(self):
        """The synthetic world of this configuration."""
        from income.data.synthetic import Drift, SyntheticWorld

        return SyntheticWorld(
            users=self.users,
            seed=self.seed,
            start=self.start,
            end=self.end,
            label_share=self.label_share,
            label_lag_days=self.label_lag_days,
            drift=Drift(start=self.drift_start) if self.drift_start else None,
            invalid_share=self.invalid_share,
        )
