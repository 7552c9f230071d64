"""Hyperparameter search that learns from its own results: an Optuna study asked and told in rounds.

The training workflow runs the search as rounds (tasks/training.py): `ask_round` asks the study
for a batch of trials, a Flyte map task fits them in parallel, `tell_round` tells the results
back, and the next round's ask sees them. The study lives in a database beside MLflow's
(`study_storage`), named after the training run's MLflow parent run, so a retried or resumed
run finds the trials it already asked for and told.

Every family is tried once first (enqueued), then the sampler picks the family and its
parameters: TPE (seeded, multivariate, with a constant liar so that the trials of one round
differ) or, for comparison, random search over the same spaces.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from income.training.model import FAMILIES

# The search space of every family, in one place: names and ranges as in the family's library.
# XGBoost's number of rounds is not searched: it stops early on the validation rows (model.py).
SEARCH_SPACES: dict[str, dict[str, optuna.distributions.BaseDistribution]] = {
    "xgboost": {
        "max_depth": IntDistribution(3, 8),
        "learning_rate": FloatDistribution(0.03, 0.3, log=True),
        "subsample": FloatDistribution(0.6, 1.0),
        "colsample_bytree": FloatDistribution(0.4, 1.0),
        "min_child_weight": FloatDistribution(1.0, 20.0, log=True),
        "reg_lambda": FloatDistribution(0.1, 10.0, log=True),
    },
    "random_forest": {
        "n_estimators": IntDistribution(100, 300),
        "max_depth": IntDistribution(8, 24),
        "min_samples_leaf": IntDistribution(1, 10),
        "max_features": CategoricalDistribution(["sqrt", 0.3, 0.5]),
    },
    "decision_tree": {
        "max_depth": IntDistribution(4, 14),
        "min_samples_leaf": IntDistribution(5, 100),
    },
    "logistic_regression": {"C": FloatDistribution(0.01, 10.0, log=True)},
}
SAMPLERS = ("tpe", "random")
OBJECTIVE = "val_roc_auc"  # maximized


@dataclass(frozen=True)
class SearchConfig:
    n_trials: int = 16
    round_size: int = 4  # trials asked at once and fitted in parallel (one map task per round)
    seed: int = 42
    sampler: str = "tpe"  # "tpe", or "random" (the same spaces, drawn at random)
    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    # Pin parameters of a family, e.g. '{"xgboost": {"max_depth": 6}}' (JSON).
    fixed_params_json: str = "{}"

    def rounds(self) -> int:
        return -(-self.n_trials // self.round_size)

    def round_trials(self, round_index: int) -> int:
        return min(self.round_size, self.n_trials - round_index * self.round_size)


@dataclass(frozen=True)
class TrialSpec:
    trial_id: int  # the Optuna trial number
    model_family: str
    params_json: str

    @property
    def params(self) -> dict:
        return json.loads(self.params_json)


def study_storage() -> str:
    """Where studies live: $INCOME_OPTUNA_STORAGE (an RDB URL, e.g. PostgreSQL on a cluster), else
    optuna.db beside a sqlite MLflow store, else optuna.db in the runtime folder."""
    from income.platform.settings import runtime_dir

    if os.environ.get("INCOME_OPTUNA_STORAGE"):
        return os.environ["INCOME_OPTUNA_STORAGE"]
    tracking = os.environ.get("MLFLOW_TRACKING_URI", "")
    folder = Path(tracking.removeprefix("sqlite:///")).parent if tracking.startswith("sqlite:///") else None
    folder = folder or runtime_dir() / "mlflow"
    return f"sqlite:///{folder / 'optuna.db'}"


def _sampler(cfg: SearchConfig, told: int) -> optuna.samplers.BaseSampler:
    """A sampler seeded by the search seed and the number of trials so far: each round is reproducible."""
    seed = cfg.seed * 1000 + told
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=max(len(cfg.families), min(8, cfg.n_trials // 2)),
            multivariate=True,
            group=True,  # the families' parameters are conditional on the family
            constant_liar=True,  # trials asked together, before any is told, should differ
        )


def open_study(name: str, cfg: SearchConfig, storage: str | None = None) -> optuna.Study:
    """The study `name`, created with one enqueued trial per family when it is new."""
    unknown = set(cfg.families) - set(FAMILIES)
    if unknown or cfg.sampler not in SAMPLERS:
        raise ValueError(
            f"unknown model families {sorted(unknown)} or sampler {cfg.sampler!r}; "
            f"choose from {', '.join(FAMILIES)} and {', '.join(SAMPLERS)}"
        )
    storage = storage or study_storage()
    if isinstance(storage, str) and storage.startswith("sqlite:///"):
        Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    if not study.trials:  # new: every family first
        for family in cfg.families:
            study.enqueue_trial({"model_family": family})
    told = sum(t.state.is_finished() for t in study.trials)
    study.sampler = _sampler(cfg, told)
    return study


def _suggest(trial: optuna.Trial, name: str, distribution) -> object:
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log)
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)
    return trial.suggest_categorical(name, distribution.choices)


def _spec(trial: optuna.trial.FrozenTrial | optuna.Trial, fixed: dict) -> TrialSpec:
    family = trial.params["model_family"]
    prefix = f"{family}."
    params = {k.removeprefix(prefix): v for k, v in trial.params.items() if k.startswith(prefix)}
    params.update(fixed.get(family, {}))
    return TrialSpec(trial.number, family, json.dumps(params, sort_keys=True))


def ask_round(study: optuna.Study, cfg: SearchConfig, round_index: int) -> list[TrialSpec]:
    """The trials of round `round_index`: asked now, or the ones asked before (a retried task)."""
    fixed = json.loads(cfg.fixed_params_json)
    asked = [t for t in study.trials if t.user_attrs.get("round") == round_index]
    if asked:
        return [_spec(t, fixed) for t in asked]
    specs = []
    for _ in range(cfg.round_trials(round_index)):
        trial = study.ask()
        family = trial.suggest_categorical("model_family", cfg.families)
        for name, distribution in SEARCH_SPACES[family].items():
            if name not in fixed.get(family, {}):
                _suggest(trial, f"{family}.{name}", distribution)
        trial.set_user_attr("round", round_index)
        specs.append(_spec(trial, fixed))
    return specs


def tell_round(study: optuna.Study, specs: list[TrialSpec], scores: list[float | None]) -> int:
    """Tell each trial its validation score (None: failed); returns how many trials are finished."""
    running = {t.number for t in study.trials if t.state == optuna.trial.TrialState.RUNNING}
    for spec, score in zip(specs, scores, strict=True):
        if spec.trial_id not in running:
            continue  # told by an earlier attempt
        if score is None:
            study.tell(spec.trial_id, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(spec.trial_id, score)
    return sum(t.state.is_finished() for t in study.trials)
