"""The search asks in rounds, learns from what it is told, and resumes where a run left off."""

from __future__ import annotations

import json

import optuna
import pytest

from income.training.search import SEARCH_SPACES, SearchConfig, ask_round, open_study, tell_round


def _storage(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


def _score(spec) -> float | None:
    """A made-up objective: XGBoost best, deeper better; a logistic regression with C < 0.1 fails."""
    if spec.model_family == "logistic_regression" and spec.params["C"] < 0.1:
        return None
    bonus = spec.params.get("max_depth", 0) / 100 if spec.model_family == "xgboost" else 0
    base = {"xgboost": 0.9, "random_forest": 0.85, "logistic_regression": 0.8, "decision_tree": 0.75}
    return base[spec.model_family] + bonus


def _search(cfg: SearchConfig, storage) -> list:
    asked = []
    for round_index in range(cfg.rounds()):
        specs = ask_round(open_study("s", cfg, storage), cfg, round_index)
        tell_round(open_study("s", cfg, storage), specs, [_score(s) for s in specs])
        asked += specs
    return asked


def test_every_family_first_then_the_sampler_learns_which_is_best(tmp_path):
    cfg = SearchConfig(n_trials=24, round_size=4, seed=3)

    asked = _search(cfg, _storage(tmp_path))

    assert [s.model_family for s in asked[:4]] == list(cfg.families)
    assert [s.trial_id for s in asked] == list(range(24))
    late = [s.model_family for s in asked[12:]]
    assert late.count("xgboost") >= 8  # TPE turns to the family that scores best
    for spec in asked:
        assert set(spec.params) == set(SEARCH_SPACES[spec.model_family])
    study = open_study("s", cfg, _storage(tmp_path))
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert all(t.params["logistic_regression.C"] < 0.1 for t in failed)
    assert study.best_trial.params["model_family"] == "xgboost"


def test_the_same_seed_asks_the_same_trials_and_random_search_is_a_choice(tmp_path):
    cfg = SearchConfig(n_trials=8, round_size=4, seed=5)
    for folder in "abc":
        (tmp_path / folder).mkdir()
    first = _search(cfg, _storage(tmp_path / "a"))
    assert _search(cfg, _storage(tmp_path / "b")) == first
    random_cfg = SearchConfig(n_trials=8, round_size=4, seed=5, sampler="random")
    assert len(_search(random_cfg, _storage(tmp_path / "c"))) == 8
    assert isinstance(
        open_study("s", random_cfg, _storage(tmp_path / "c")).sampler, optuna.samplers.RandomSampler
    )
    assert isinstance(open_study("s", cfg, _storage(tmp_path / "a")).sampler, optuna.samplers.TPESampler)


def test_a_retried_round_gets_its_trials_again_and_a_repeated_tell_changes_nothing(tmp_path):
    cfg = SearchConfig(n_trials=6, round_size=4, seed=1)
    storage = _storage(tmp_path)
    first = ask_round(open_study("s", cfg, storage), cfg, 0)
    assert ask_round(open_study("s", cfg, storage), cfg, 0) == first  # the task retried before telling
    assert tell_round(open_study("s", cfg, storage), first, [_score(s) for s in first]) == 4
    assert tell_round(open_study("s", cfg, storage), first, [0.0] * 4) == 4  # told already: kept
    last = ask_round(open_study("s", cfg, storage), cfg, 1)
    assert len(last) == 2 and [s.trial_id for s in last] == [4, 5]  # the budget's remainder
    values = {t.number: t.value for t in open_study("s", cfg, storage).trials if t.value is not None}
    assert values[0] == pytest.approx(_score(first[0]))


def test_pinned_parameters_are_used_and_not_searched(tmp_path):
    cfg = SearchConfig(n_trials=4, seed=1, fixed_params_json=json.dumps({"xgboost": {"max_depth": 2}}))

    specs = ask_round(open_study("s", cfg, _storage(tmp_path)), cfg, 0)

    xgboost = next(s for s in specs if s.model_family == "xgboost")
    assert xgboost.params["max_depth"] == 2


def test_unknown_families_and_samplers_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown model families"):
        open_study("s", SearchConfig(families=["catboost"]), _storage(tmp_path))
    with pytest.raises(ValueError, match="sampler"):
        open_study("s", SearchConfig(sampler="grid"), _storage(tmp_path))
