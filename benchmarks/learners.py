"""Other learners beside the pipeline's XGBoost, on the same training set, split and protocol.

    make adult                                 # the Adult training set this compares on
    python -m benchmarks.learners              # newest training set (INCOME_RUNTIME's, or --training-set)

Each model is fitted the way the pipeline fits its final model (income.training.final): early
stopping on the validation rows, a refit on training + validation rows with the rounds scaled
by the rows (refit_params), the decision threshold chosen for accuracy on the validation
scores, then one score on the test rows. Models:
- XGBoost, one hand-set configuration (depth 5, colsample 0.6, subsample 0.8), at four learning
  rates (more rounds allowed: MAX_ROUNDS 5,000);
- scikit-learn's HistGradientBoostingClassifier with native categoricals, its iterations
  chosen by validation ROC AUC (staged predictions);
- the mean of the 0.05 XGBoost and HistGradientBoosting;
- CatBoost at three settings, only when `catboost` is importable (not a project dependency:
  `pip install catboost` into a throwaway venv to include it).
Test ROC AUC and accuracy per model. No Flyte, no MLflow: this measures the learners.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score

import income.training.model as model_module
from benchmarks.common import bench_dir, load_average, machine
from benchmarks.search import newest_training_set
from income.data.schema import LABEL, MISSING_CATEGORY
from income.platform.settings import load_runtime_env
from income.training.calibration import choose_threshold
from income.training.final import refit_params, scaled_rounds
from income.training.model import FEATURES, as_model_input, fit, kinds
from income.training.splits import split_by_time

XGBOOST = {
    "max_depth": 5,
    "subsample": 0.8,
    "colsample_bytree": 0.6,
    "min_child_weight": 3.0,
    "reg_lambda": 1.0,
}
LEARNING_RATES = (0.1, 0.05, 0.02, 0.01)
CATBOOST = ((0.05, 6), (0.03, 6), (0.05, 8))  # (learning rate, depth)


def xgboost(train, valid, test, learning_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(validation scores of the early-stopped fit, test scores of its refit), as the pipeline fits."""
    params = {**XGBOOST, "learning_rate": learning_rate}
    stopped = fit("xgboost", params, train, valid=valid)
    rounds = refit_params("xgboost", params, stopped.boosting_rounds, len(train), len(valid))
    refit = fit("xgboost", rounds, pd.concat([train, valid], ignore_index=True))
    return stopped.predict_proba(valid), refit.predict_proba(test)


def _categorical_frame(df: pd.DataFrame, categories: dict | None = None) -> pd.DataFrame:
    categorical, _ = kinds(FEATURES)
    out = as_model_input(df, FEATURES)
    for column in categorical:
        values = out[column].fillna(MISSING_CATEGORY)
        out[column] = pd.Categorical(values, categories=None if categories is None else categories[column])
    return out


def hist_gradient_boosting(train, valid, test) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    params = {"learning_rate": 0.05, "max_leaf_nodes": 31, "l2_regularization": 1.0, "max_features": 0.6}
    x_train, x_valid = _categorical_frame(train), _categorical_frame(valid)
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype", max_iter=3000, early_stopping=False, random_state=0, **params
    ).fit(x_train, train[LABEL])
    staged = [p[:, 1] for p in model.staged_predict_proba(x_valid)]
    best = int(np.argmax([roc_auc_score(valid[LABEL], p) for p in staged]))
    both = pd.concat([train, valid], ignore_index=True)
    x_both = _categorical_frame(both)
    categories = {c: x_both[c].cat.categories for c in x_both.select_dtypes("category")}
    refit = HistGradientBoostingClassifier(
        categorical_features="from_dtype",
        max_iter=scaled_rounds(best + 1, len(train), len(valid)),
        early_stopping=False,
        random_state=0,
        **params,
    ).fit(x_both, both[LABEL])
    return staged[best], refit.predict_proba(_categorical_frame(test, categories))[:, 1]


def catboost(train, valid, test, learning_rate: float, depth: int) -> tuple[np.ndarray, np.ndarray]:
    from catboost import CatBoostClassifier

    categorical, _ = kinds(FEATURES)

    def frame(df):
        out = as_model_input(df, FEATURES)
        for column in categorical:
            out[column] = out[column].fillna(MISSING_CATEGORY).astype(str)
        return out

    common = {
        "learning_rate": learning_rate,
        "depth": depth,
        "random_seed": 0,
        "verbose": False,
        "thread_count": 2,
        "cat_features": categorical,
        "allow_writing_files": False,  # else CatBoost leaves catboost_info/ in the working directory
    }
    stopped = CatBoostClassifier(iterations=5000, od_type="Iter", od_wait=100, **common)
    stopped.fit(frame(train), train[LABEL], eval_set=(frame(valid), valid[LABEL]), use_best_model=True)
    both = pd.concat([train, valid], ignore_index=True)
    iterations = scaled_rounds(stopped.get_best_iteration() + 1, len(train), len(valid))
    refit = CatBoostClassifier(iterations=iterations, **common).fit(frame(both), both[LABEL])
    return stopped.predict_proba(frame(valid))[:, 1], refit.predict_proba(frame(test))[:, 1]


def scored(name: str, valid, test, scores: tuple[np.ndarray, np.ndarray], seconds: float) -> dict:
    valid_scores, test_scores = scores
    threshold = choose_threshold(valid[LABEL].to_numpy(), valid_scores, "accuracy")
    row = {
        "model": name,
        "val_roc_auc": round(float(roc_auc_score(valid[LABEL], valid_scores)), 4),
        "test_roc_auc": round(float(roc_auc_score(test[LABEL], test_scores)), 4),
        "test_accuracy": round(float(accuracy_score(test[LABEL], test_scores >= threshold)), 4),
        "threshold": round(threshold, 3),
        "seconds": round(seconds, 1),
    }
    print(f"  {row}", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training-set", type=Path, default=None)
    args = parser.parse_args()
    load_runtime_env()
    source = args.training_set or newest_training_set()
    train, valid, test = split_by_time(pd.read_parquet(source), 0.15, 0.15)
    print(f"{source}: {len(train):,} training, {len(valid):,} validation, {len(test):,} test rows")
    load_before = load_average()
    model_module.MAX_ROUNDS = 5000  # room for the lowest learning rate to stop on its own
    rows, kept = [], {}

    def run(name: str, make):
        started = time.perf_counter()
        kept[name] = make()
        rows.append(scored(name, valid, test, kept[name], time.perf_counter() - started))

    for rate in LEARNING_RATES:
        run(f"XGBoost, learning rate {rate}", lambda rate=rate: xgboost(train, valid, test, rate))
    run("HistGradientBoosting, native categoricals", lambda: hist_gradient_boosting(train, valid, test))
    xgb, hgb = kept["XGBoost, learning rate 0.05"], kept["HistGradientBoosting, native categoricals"]
    averaged = ((xgb[0] + hgb[0]) / 2, (xgb[1] + hgb[1]) / 2)
    run("mean of XGBoost (0.05) and HistGradientBoosting", lambda: averaged)
    try:
        import catboost as _  # noqa: F401
    except ImportError:
        print("  CatBoost: not installed (not a project dependency), skipped")
    else:
        for rate, depth in CATBOOST:
            run(
                f"CatBoost, learning rate {rate}, depth {depth}",
                lambda r=rate, d=depth: catboost(train, valid, test, r, d),
            )
    table = pd.DataFrame(rows)
    result = {"machine": machine(), "load_before": load_before, "training_set": str(source), "runs": rows}
    (bench_dir("learners") / "learners.json").write_text(json.dumps(result, indent=2))
    print(f"\n{machine()}; load before {load_before}\n")
    print(table.to_markdown(index=False))


if __name__ == "__main__":
    main()
