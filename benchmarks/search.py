"""TPE against random search on the same budget, spaces and seeds: best validation ROC AUC so far.

    make adult        # or make demo: a training set to search on
    python -m benchmarks.search --trials 48 --seeds 3                          # newest training set
    python -m benchmarks.search --training-set .runtime/adult/training_sets/training_set-....parquet

Both samplers run the project's search (income/training/search.py) in rounds of
`round_size` trials, exactly as the training workflow does (ask a round, fit it, tell it),
with the same first round (one trial per family), the same spaces and the same seeds; they
differ only in the sampler. Each trial is the project's `fit` (XGBoost stops early on the
validation rows) scored on the validation rows. The report gives the best validation ROC
AUC after 16 and after all trials per seed and on average, and, for each sampler's best
trial, the test ROC AUC of its refit on training + validation rows (what would be
registered). No Flyte and no MLflow: this measures the search, not the platform.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import optuna
import pandas as pd
from sklearn.metrics import roc_auc_score

from benchmarks.common import bench_dir, load_average, machine
from income.data.schema import LABEL
from income.platform.files import list_files
from income.platform.settings import load_runtime_env, training_sets_uri
from income.training.final import refit_params
from income.training.model import FEATURES, fit
from income.training.search import SearchConfig, TrialSpec, ask_round, open_study, tell_round
from income.training.splits import split_by_time

CHECKPOINTS = (16,)


def newest_training_set() -> str:
    found = sorted(list_files(training_sets_uri(), ".parquet"), key=lambda f: f[1], reverse=True)
    if not found:
        raise SystemExit(f"no training set under {training_sets_uri()}: run make demo or make adult")
    return found[0][0]


def run_search(
    cfg: SearchConfig, train: pd.DataFrame, valid: pd.DataFrame
) -> tuple[list[tuple[TrialSpec, float | None]], dict[int, int | None]]:
    """(spec, validation ROC AUC or None) per trial in order, and XGBoost's kept rounds by trial id."""
    rounds: dict[int, int | None] = {}
    study = open_study(f"{cfg.sampler}-{cfg.seed}", cfg, optuna.storages.InMemoryStorage())
    history: list[tuple[TrialSpec, float | None]] = []
    labels = valid[LABEL].to_numpy()
    for round_index in range(cfg.rounds()):
        specs = ask_round(study, cfg, round_index)
        scores = []
        for spec in specs:
            try:
                model = fit(spec.model_family, spec.params, train, seed=0, valid=valid)
                rounds[spec.trial_id] = model.boosting_rounds
                scores.append(float(roc_auc_score(labels, model.predict_proba(valid[FEATURES]))))
            except ValueError:
                scores.append(None)
        tell_round(study, specs, scores)
        history += list(zip(specs, scores, strict=True))
        best = max((s for _, s in history if s is not None), default=float("nan"))
        print(
            f"  {cfg.sampler} seed {cfg.seed}: {len(history)} trials, best validation ROC AUC {best:.4f}",
            flush=True,
        )
    return history, rounds


def best_of(history: list[tuple[TrialSpec, float | None]], n: int) -> tuple[TrialSpec, float]:
    return max(((spec, s) for spec, s in history[:n] if s is not None), key=lambda pair: pair[1])


def refit_test_auc(
    spec: TrialSpec, rounds: int | None, train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame
) -> float:
    """The test ROC AUC of the trial refit on train + validation rows, as the pipeline refits it."""
    params = refit_params(spec.model_family, spec.params, rounds, len(train), len(valid))
    model = fit(spec.model_family, params, pd.concat([train, valid], ignore_index=True), seed=0)
    return float(roc_auc_score(test[LABEL].to_numpy(), model.predict_proba(test[FEATURES])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-set", type=Path, default=None)
    parser.add_argument("--trials", type=int, default=48)
    parser.add_argument("--round-size", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    load_runtime_env()
    source = args.training_set or newest_training_set()
    train, valid, test = split_by_time(pd.read_parquet(source), 0.15, 0.15)
    print(f"{source}: {len(train):,} training, {len(valid):,} validation, {len(test):,} test rows")

    rows, load_before, started = [], load_average(), time.perf_counter()
    for seed in range(args.seeds):
        for sampler in ("random", "tpe"):
            cfg = SearchConfig(n_trials=args.trials, round_size=args.round_size, seed=seed, sampler=sampler)
            began = time.perf_counter()
            history, rounds = run_search(cfg, train, valid)
            row = {"sampler": sampler, "seed": seed, "seconds": round(time.perf_counter() - began, 1)}
            for n in (*CHECKPOINTS, args.trials):
                spec, score = best_of(history, n)
                row[f"best_val_{n}"] = round(score, 4)
                row[f"family_{n}"] = spec.model_family
                row[f"refit_test_{n}"] = round(
                    refit_test_auc(spec, rounds[spec.trial_id], train, valid, test), 4
                )
            row["xgboost_trials"] = sum(spec.model_family == "xgboost" for spec, _ in history)
            rows.append(row)
    table = pd.DataFrame(rows)
    means = table.groupby("sampler")[
        [c for c in table.columns if c.startswith(("best_val", "refit_test"))]
    ].mean()
    result = {
        "machine": machine(),
        "load_before": load_before,
        "training_set": str(source),
        "trials": args.trials,
        "round_size": args.round_size,
        "seconds": round(time.perf_counter() - started, 1),
        "runs": rows,
        "means": json.loads(means.round(4).to_json(orient="index")),
    }
    (bench_dir("search") / "search.json").write_text(json.dumps(result, indent=2))
    print(f"\n{machine()}; load before {load_before}\n")
    print(table.to_markdown(index=False))
    print("\nmeans per sampler\n")
    print(means.round(4).to_markdown())


if __name__ == "__main__":
    main()
