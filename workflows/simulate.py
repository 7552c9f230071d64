"""A simulated stretch of operation: the daily and weekly pipelines, day by day, on the synthetic world.

python -m workflows.simulate --days 90            (`make simulate DAYS=90`)

One process and one SparkSession (flytekit's local Spark tasks reuse the active session)
run the workflows as Python functions on a runtime of their own (<runtime>/simulation, a
Valkey database of its own, its own MLflow store), started clean each time. Day 0 backfills
the year before the start, trains a first champion and scores; every later day d runs the
feature pipeline at start + d days 02:00 (it ingests day d - 1 and the labels maturing
that day), training at 03:00 every `train_every` days (fewer trials than production; the
promotion gate decides) and batch scoring at 04:00. The world drifts from `drift_day` on.
What each day measured and the timeline report: income.timeline.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from income import timeline
from income.platform.files import write_text_atomically
from income.platform.settings import ValkeySettings, load_runtime_env, runtime_dir
from income.training.search import SearchConfig
from tasks.config import FeaturePipelineConfig
from tasks.inference import ScoringConfig
from tasks.training import TrainingConfig
from workflows.batch_scoring import batch_scoring
from workflows.feature_pipeline import feature_pipeline
from workflows.training_pipeline import training_pipeline

EXPERIMENT = "simulation"


@dataclass(frozen=True)
class SimulationConfig:
    days: int = 90
    start: str = "2026-01-01"  # day 0; the world begins a year earlier
    users: int = 20_000  # the demo's size
    seed: int = 7
    # The world drifts from this day on (< 0: never). Its labels arrive label_lag_days later,
    # and a retrain can only learn the new world once they make up much of its window.
    drift_day: int = 14
    label_lag_days: int = 28
    trials: int = 2  # per retraining (production default: SearchConfig.n_trials, 16)
    families: tuple[str, ...] = ("xgboost",)  # the production winner; the search draws depth, rate...
    trial_params_json: str = '{"xgboost": {"n_estimators": 150}}'  # pinned: a fit in seconds
    decks: bool = False  # flytekit's Decks (its Dependencies deck runs pip twice per task)
    train_every: int = 7  # retrain on days divisible by this (0: day 0 only)
    training_window_days: int = 90  # retrain on the labels of the last 90 days of records
    scoring_partitions: int = 0  # 0: Spark's default parallelism
    auc_window_days: int = 7  # the champion's AUC on the labels of this many days of records
    valkey_db: int = 2  # never the demo's 0

    def world(self) -> FeaturePipelineConfig:
        start = pd.Timestamp(self.start)
        return FeaturePipelineConfig(
            users=self.users,
            seed=self.seed,
            start=str((start - pd.Timedelta(days=365)).date()),
            end=str((start + pd.Timedelta(days=self.days + 1)).date()),
            label_lag_days=self.label_lag_days,
            drift_start=str((start + pd.Timedelta(days=self.drift_day)).date())
            if self.drift_day >= 0
            else "",
        )

    def training(self, day: int) -> TrainingConfig:
        """A lighter search than production's, seeded by the day so each week tries other parameters."""
        return TrainingConfig(
            search=SearchConfig(
                n_trials=self.trials,
                seed=self.seed + day,
                families=list(self.families),
                fixed_params_json=self.trial_params_json,
            ),
            window_days=self.training_window_days,
        )

    def trains_on(self, day: int) -> bool:
        return day == 0 or (self.train_every > 0 and day % self.train_every == 0)


@contextlib.contextmanager
def simulation_environment(root: Path, valkey_db: int):
    """Point every store at `root` and Valkey database `valkey_db`; restore the environment after."""
    if valkey_db == 0:
        raise ValueError("Valkey database 0 is the demo's: give the simulation another one")
    load_runtime_env()  # the Valkey connection (and Java) of this checkout, before INCOME_RUNTIME moves
    saved = dict(os.environ)
    os.environ.update(
        INCOME_RUNTIME=str(root),
        INCOME_OFFLINE_STORE=str(root / "offline_store"),
        FEAST_REGISTRY_PATH=str(root / "feast" / "registry.sqlite"),
        MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
        MLFLOW_ARTIFACTS_DESTINATION=str(root / "mlflow" / "artifacts"),
        VALKEY_DB=str(valkey_db),
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _tasks():
    from tasks import data, features, inference, training

    return [
        data.ingest_batch,
        features.build_features,
        features.publish_features,
        inference.score_batch,
        inference.report_drift,
        training.build_training_set,
        training.ask_trials,
        training.train_trial,
        training.tell_trials,
        training.gather_trials,
        training.refit_best,
        training.select_and_register,
    ]


@contextlib.contextmanager
def decks_disabled(disabled: bool = True):
    """Tasks without Flyte Decks for a while: locally each deck is a temporary file no one opens, and
    flytekit's Dependencies deck runs `pip list` and `pip freeze` for every task (~2.3 s each)."""
    tasks = _tasks()
    saved = [t._disable_deck for t in tasks]
    try:
        for t in tasks:
            t._disable_deck = t._disable_deck or disabled
        yield
    finally:
        for t, before in zip(tasks, saved, strict=True):
            t._disable_deck = before


class _Monitor:
    """The measurements that need state across days: day 0's predictions, loaded models and references."""

    def __init__(self, cfg: SimulationConfig):
        self.cfg = cfg
        self.day0_probabilities = None
        self.models: dict[str, object] = {}
        self.references: dict[str, pd.DataFrame] = {}

    def measure(self, day: int, run_time: pd.Timestamp, scored) -> dict:
        import mlflow

        from income.features.feature_store import get_store
        from income.inference.predictions import read_predictions
        from income.platform.settings import offline_store_uri
        from income.training.training_set import join_training_set

        root, summary, drift = offline_store_uri(), scored.scoring, scored.drift
        if summary.training_set_uri not in self.references:
            self.references[summary.training_set_uri] = pd.read_parquet(summary.training_set_uri)
        reference = self.references[summary.training_set_uri]
        probabilities = read_predictions(summary.predictions_root, pd.Timestamp(summary.as_of))["probability"]
        if self.day0_probabilities is None:
            self.day0_probabilities = probabilities.to_numpy()
        if summary.model_version not in self.models:
            uri = f"models:/{summary.model_name}/{summary.model_version}"
            self.models[summary.model_version] = mlflow.pyfunc.load_model(uri)
        as_of = pd.Timestamp(summary.as_of)
        labels = timeline.matured_labels(root, as_of, self.cfg.label_lag_days, self.cfg.auc_window_days)
        matured = join_training_set(get_store(), labels) if len(labels) else labels
        records = timeline.records_of(root, run_time.date())
        return {
            **timeline.ingested_on(root, run_time.date()),
            "scored": summary.rows,
            "unscored": summary.unscored_users,
            "champion_version": summary.model_version,
            "prediction_psi_vs_day0": timeline.prediction_psi(
                self.day0_probabilities, probabilities.to_numpy()
            ),
            "prediction_psi_vs_reference": drift.prediction_psi,
            "auc_matured": timeline.roc_auc(self.models[summary.model_version], matured),
            "auc_labels": len(matured),
            **{timeline.RECORD_PSI + f: v for f, v in timeline.record_psi(reference, records).items()},
            **{timeline.POPULATION_PSI + f: v for f, v in drift.psi.items()},
        }


def _timed(seconds: dict, step: str, call):
    started = time.perf_counter()
    out = call()
    seconds[f"seconds_{step}"] = round(time.perf_counter() - started, 2)
    return out


def _training_facts(outcome) -> dict:
    d = outcome.decision
    return {
        "trained": True,
        "promoted": d.promoted,
        "promotion_reason": d.reason,
        "challenger_version": d.model_version,
        "challenger_auc": d.challenger_test_roc_auc,
        "champion_gate_auc": d.champion_test_roc_auc,
        "trials_failed": outcome.trials_failed,
    }


def run_day(cfg: SimulationConfig, day: int, monitor: _Monitor) -> dict:
    """One simulated day: features at 02:00, training at 03:00 (on its days), scoring at 04:00, measured."""
    run_time = pd.Timestamp(cfg.start, tz="UTC") + pd.Timedelta(days=day, hours=2)
    seconds: dict[str, float] = {}
    row: dict[str, object] = {"day": day, "date": str(run_time.date()), "trained": False, "promoted": False}
    _timed(seconds, "features", lambda: feature_pipeline(run_time=run_time.to_pydatetime(), cfg=cfg.world()))
    if cfg.trains_on(day):
        as_of = (run_time + pd.Timedelta(hours=1)).to_pydatetime()
        outcome = _timed(seconds, "training", lambda: training_pipeline(as_of=as_of, cfg=cfg.training(day)))
        row.update(_training_facts(outcome))
    scoring = ScoringConfig(partitions=cfg.scoring_partitions)
    at = (run_time + pd.Timedelta(hours=2)).to_pydatetime()
    scored = _timed(seconds, "scoring", lambda: batch_scoring(run_time=at, cfg=scoring))
    row.update(_timed(seconds, "monitoring", lambda: monitor.measure(day, run_time, scored)))
    return {**row, **seconds, "seconds_total": round(sum(seconds.values()), 2)}


def _log_to_mlflow(cfg: SimulationConfig, table: pd.DataFrame, report: Path, csv: Path, wall: float) -> str:
    import mlflow

    from income.platform.tracking import artifact_root, configure

    configure()
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else mlflow.create_experiment(EXPERIMENT, artifact_location=Path(artifact_root()).as_uri())
    )
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"simulation-{cfg.days}d") as run:
        mlflow.log_params(asdict(cfg))
        mlflow.log_metrics(
            {
                "wall_seconds": wall,
                "promotions": int(table["promoted"].sum()),
                "trainings": int(table["trained"].sum()),
                "records": int(table["records"].sum()),
            }
        )
        mlflow.log_artifact(str(report), artifact_path="timeline")
        mlflow.log_artifact(str(csv), artifact_path="timeline")
    return run.info.run_id


@dataclass(frozen=True)
class SimulationResult:
    table: pd.DataFrame
    report: Path
    csv: Path
    mlflow_run_id: str
    wall_seconds: float
    spark_applications: int  # SparkContexts seen across the run (1: one session throughout)


def write_timeline(
    cfg: SimulationConfig, rows: list[dict], wall: float, spark_apps: int, report: Path
) -> Path:
    """The timeline report of the days so far at `report`, their table beside it as CSV; the CSV's path."""
    table = pd.DataFrame(rows)
    training = f"{cfg.trials} trials of {', '.join(cfg.families)} ({cfg.trial_params_json} pinned)"
    facts = {
        "days": f"{len(rows)} of {cfg.days}, from {cfg.start}",
        "world": f"{cfg.users:,} users, seed {cfg.seed}; labels {cfg.label_lag_days} days after their record",
        "drift": f"from day {cfg.drift_day}" if cfg.drift_day >= 0 else "none",
        "training": f"day 0 and every {cfg.train_every} days: {training}"
        if cfg.train_every
        else f"day 0 only: {training}",
        "wall time": f"{wall:,.0f} s ({wall / 60:.1f} min) for {len(rows)} days",
        "Spark": f"{spark_apps} SparkContext(s) across the run",
    }
    drift_day = cfg.drift_day if cfg.drift_day >= 0 else None
    report.parent.mkdir(parents=True, exist_ok=True)
    page = timeline.report(table, facts, drift_day, cfg.label_lag_days, cfg.auc_window_days)
    write_text_atomically(str(report), page)
    csv = report.with_suffix(".csv")
    table.to_csv(csv, index=False)
    return csv


def simulate(cfg: SimulationConfig, root: Path, report: Path, echo=print) -> SimulationResult:
    """Run `cfg.days` days on a clean runtime at `root`; write the timeline report (and CSV) at `report`.

    The report is rewritten every week of simulated time too, so a long run can be watched.
    """
    from pyspark.sql import SparkSession

    from income.platform.spark import local_session

    started = time.perf_counter()
    # One progress line per day: no task logs at INFO, no Spark stage bars.
    for name in ("flytekit", "user_space"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("PYSPARK_SUBMIT_ARGS", "--conf spark.ui.showConsoleProgress=false pyspark-shell")
    shutil.rmtree(root, ignore_errors=True)
    rows, applications = [], set()
    with simulation_environment(root, cfg.valkey_db), decks_disabled(not cfg.decks):
        ValkeySettings.from_env().client().flushdb()
        # flytekit's Spark tasks getOrCreate this session: one for the whole simulation.
        local_session("income-simulation").sparkContext.setLogLevel("ERROR")
        monitor = _Monitor(cfg)
        for day in range(cfg.days):
            row = run_day(cfg, day, monitor)
            applications.add(SparkSession.getActiveSession().sparkContext.applicationId)
            rows.append(row)
            promotion = f"  promoted v{row['champion_version']}" if row["promoted"] else ""
            trained = "  trained, kept" if row["trained"] and not row["promoted"] else ""
            echo(
                f"day {day:3d} {row['date']}  records {row['records']:6,}  labels {row['labels']:5,}  "
                f"{row['seconds_total']:6.1f} s  champion v{row['champion_version']}{promotion}{trained}",
            )
            if day % 7 == 6:
                write_timeline(cfg, rows, time.perf_counter() - started, len(applications), report)
        wall = round(time.perf_counter() - started, 1)
        csv = write_timeline(cfg, rows, wall, len(applications), report)
        run_id = _log_to_mlflow(cfg, pd.DataFrame(rows), report, csv, wall)
    return SimulationResult(pd.DataFrame(rows), report, csv, run_id, wall, len(applications))


def main(argv: list[str] | None = None) -> None:
    defaults = SimulationConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--start", default=defaults.start)
    parser.add_argument("--drift-day", type=int, default=defaults.drift_day, help="< 0: no drift")
    parser.add_argument("--trials", type=int, default=defaults.trials)
    parser.add_argument("--train-every", type=int, default=defaults.train_every)
    parser.add_argument(
        "--training-window", type=int, default=defaults.training_window_days, help="days of labels; 0: all"
    )
    parser.add_argument("--valkey-db", type=int, default=defaults.valkey_db)
    parser.add_argument("--decks", action="store_true", help="render flytekit's Decks (slower)")
    args = parser.parse_args(argv)
    cfg = SimulationConfig(
        days=args.days,
        users=args.users,
        start=args.start,
        drift_day=args.drift_day,
        trials=args.trials,
        train_every=args.train_every,
        training_window_days=args.training_window,
        valkey_db=args.valkey_db,
        decks=args.decks,
    )
    load_runtime_env()
    base = runtime_dir()
    result = simulate(cfg, base / "simulation", base / "reports" / "timeline.html")
    print(
        f"{cfg.days} days in {result.wall_seconds:,.0f} s; timeline report {result.report} "
        f"(per-day table {result.csv}); MLflow run {result.mlflow_run_id} in experiment {EXPERIMENT!r} "
        f"of {base / 'simulation' / 'mlflow'}"
    )


if __name__ == "__main__":
    main()
