"""Training pipeline: Feast point-in-time training set -> search in rounds -> refit -> registry gate.

pyflyte run workflows/training_pipeline.py training_pipeline

The search (income/training/search.py) runs as rounds of a Flyte dynamic workflow: each round
asks the Optuna study for `round_size` trials, fits them in parallel with a map task, and
tells the results back before the next round asks.
"""

from __future__ import annotations

import functools
from datetime import datetime

from flytekit import dynamic, map_task, workflow

from income.training.trials import TrialResult
from tasks.resources import LONG, SMALL
from tasks.training import (
    TrainingConfig,
    TrainingOutcome,
    TrainingSet,
    ask_trials,
    build_training_set,
    gather_trials,
    refit_best,
    select_and_register,
    tell_trials,
    train_trial,
)

# Up to a quarter of a round's trials may fail (and are recorded as failed in MLflow and Optuna).
MIN_SUCCESS_RATIO = 0.75


# The timeout covers the whole search; a retry resumes it (the study keeps what was asked and told).
@dynamic(requests=SMALL, limits=SMALL, timeout=LONG, retries=2)
def search(cfg: TrainingConfig, training_set: TrainingSet) -> list[TrialResult | None]:
    """cfg.search.rounds() rounds: ask -> fit the trials in parallel -> tell, one after the other."""
    told, rounds = 0, []
    for round_index in range(cfg.search.rounds()):
        specs = ask_trials(cfg=cfg, training_set=training_set, round_index=round_index, told=told)
        results = map_task(
            functools.partial(train_trial, training_set=training_set), min_success_ratio=MIN_SUCCESS_RATIO
        )(spec=specs)
        told = tell_trials(cfg=cfg, training_set=training_set, specs=specs, results=results)
        rounds.append(results)
    return gather_trials(rounds=rounds)


@workflow
def training_pipeline(
    as_of: datetime | None = None, cfg: TrainingConfig = TrainingConfig()
) -> TrainingOutcome:
    """Train on the labels known by `as_of` (default: all): search, refit the best, register and gate it."""
    training_set = build_training_set(cfg=cfg, as_of=as_of)
    results = search(cfg=cfg, training_set=training_set)
    final = refit_best(training_set=training_set, results=results, cfg=cfg)
    return select_and_register(training_set=training_set, results=results, final=final, cfg=cfg)
