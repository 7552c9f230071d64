"""Training pipeline: Feast point-in-time training set -> trials fan-out -> MLflow -> registry gate.

pyflyte run workflows/training_pipeline.py training_pipeline
"""

from __future__ import annotations

import functools
from datetime import datetime

from flytekit import map_task, workflow

from tasks.training import (
    TrainingConfig,
    TrainingOutcome,
    build_training_set,
    make_trials,
    select_and_register,
    train_trial,
)

# Up to a quarter of the trials may fail (and are recorded as failed in MLflow).
MIN_SUCCESS_RATIO = 0.75


@workflow
def training_pipeline(
    as_of: datetime | None = None, cfg: TrainingConfig = TrainingConfig()
) -> TrainingOutcome:
    """Train on the labels known by `as_of` (default: all), fan out the trials, register and gate the best."""
    training_set = build_training_set(cfg=cfg, as_of=as_of)
    specs = make_trials(cfg=cfg)
    results = map_task(
        functools.partial(train_trial, training_set=training_set), min_success_ratio=MIN_SUCCESS_RATIO
    )(spec=specs)
    return select_and_register(training_set=training_set, results=results, cfg=cfg)
