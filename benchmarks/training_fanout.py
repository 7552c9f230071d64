"""Wall time of the training pipeline's fan-out on the demo data, and where it goes.

    make demo            # or at least the feature pipeline, so the offline store has data
    python -m benchmarks.training_fanout --trials 16

Runs `training_pipeline` through Flyte's local executor with N trials and splits the wall
time into: process start (imports, Flyte), the point-in-time training set (Feast), the trials
(model fitting vs MLflow logging, from each trial's fit time and its MLflow run's duration),
the final run (refit, calibration, SHAP), and the rest (Flyte, the search's ask/tell,
selection, registration). The training pipeline starts no Spark session (the default
training-set engine runs in-process); Spark start-up is measured by the feature benchmarks.
"""

from __future__ import annotations

import argparse
import json
import time

STARTED = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    args = parser.parse_args()

    import mlflow

    from benchmarks.common import bench_dir, machine
    from income.platform.settings import load_runtime_env
    from income.training.search import SearchConfig
    from tasks.training import TrainingConfig
    from workflows.training_pipeline import training_pipeline

    load_runtime_env()
    imported = time.perf_counter()
    outcome = training_pipeline(cfg=TrainingConfig(search=SearchConfig(n_trials=args.trials)))
    finished = time.perf_counter()

    client = mlflow.MlflowClient()
    parent = client.get_run(outcome.parent_run_id)
    children = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'", output_format="list"
    )
    trials = [r for r in children if r.data.tags.get("run_role") == "trial"]
    final = client.get_run(outcome.final_run_id)
    trial_seconds = sum((r.info.end_time - r.info.start_time) / 1000 for r in trials)
    fit_seconds = sum(r.data.metrics.get("fit_seconds", 0.0) for r in trials)
    final_seconds = (final.info.end_time - final.info.start_time) / 1000
    # The parent run is resumed at the end to record the decision, so its own span covers
    # the whole pipeline; its first part runs until the first trial starts.
    parent_seconds = (min(r.info.start_time for r in trials) - parent.info.start_time) / 1000
    training_set = parent.data.metrics["training_set_seconds"]
    total = finished - imported
    phases = {
        "imports (flytekit, feast, mlflow, ...)": imported - STARTED,
        "training set: Feast point-in-time join": training_set,
        "parent run: exploration plots, MLflow logging": parent_seconds,
        f"{len(trials)} trials: model fitting": fit_seconds,
        f"{len(trials)} trials: evaluation, plots, MLflow logging": trial_seconds - fit_seconds,
        "final run: refit, calibration, threshold, SHAP, model logging": final_seconds,
        "Flyte, Optuna ask/tell, saving the set, selection, registration, gate": total
        - training_set
        - parent_seconds
        - trial_seconds
        - final_seconds,
    }
    print(f"machine: {machine()}")
    print("\n| phase | seconds | share of the run |\n|---|---|---|")
    for phase, seconds in phases.items():
        print(f"| {phase} | {seconds:.1f} | {seconds / total:.0%} |")
    print(f"| **training_pipeline wall time ({args.trials} trials)** | **{total:.1f}** | |")
    print(f"\nbest: {outcome.best_family}, {outcome.decision.reason}")
    (bench_dir("training_fanout") / "result.json").write_text(
        json.dumps({"machine": machine(), "trials": args.trials, "phases": phases, "total": total}, indent=2)
    )


if __name__ == "__main__":
    main()
