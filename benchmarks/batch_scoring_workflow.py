"""The whole `batch_scoring` workflow on N users, cold and warm, vs one plain process doing the same job.

    make demo        # once: a champion in MLflow (.runtime/)
    python -m benchmarks.batch_scoring_workflow --users 1000000

benchmarks.batch_scoring times the scoring step alone, from ready features, best of a few
runs on a warm Spark session. This one times what a user waits for. On an offline store of
N synthetic users (four tables, two rows per user each; benchmarks.feature_rows), published
and applied to a Feast registry in the benchmark's folder, the demo's champion scores every
user as of one time, and predictions go to the benchmark's folder:

- `pyflyte run workflows/batch_scoring.py batch_scoring --cfg ...`: the command, as a
  subprocess; its wall time (interpreter, imports, Spark start-up, both tasks, exit).
- the same workflow function called --repeat times in one fresh process: run 1 is cold
  (JVM, Spark session and Python workers started by it), later runs are warm (the session
  and its workers stay up). Each run is split into the steps of STEPS by timing wrappers
  put around the task functions and the library calls inside them (nothing in the product
  changes). `score_batch` plans the population, the point-in-time join and the scoreable
  filter lazily; they run inside `score_and_write`'s Spark jobs, with the scoring and the
  writes (one plan: nothing of the batch is collected on the driver).
- one plain Python process doing the scoring job without Spark or Flyte: the population from
  the tables (DuckDB), the same point-in-time join (`asof`, DuckDB) and scoreable rule, the champion's
  preprocessing, XGBoost `inplace_predict` on all rows at once and its calibration, one
  parquet file. Timed as a whole process too.

Memory: the peak resident memory (VmHWM) of each process of the run's tree, sampled every
half second: the driver (the Python process running the tasks), Spark's JVM (in local mode
the driver JVM and the executors are one process: their memory cannot be told apart) and
Spark's Python workers (largest one, and how many). The plain process reports its own peak.

The plain process's probabilities are compared with the workflow's on a sample of users.
The drift report of each workflow run is logged to the demo's MLflow experiment, as a
normal run's would be.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import (
    OtherCpu,
    bench_dir,
    load_average,
    machine,
    peak_rss_mib,
    run_child,
    wait_until_quiet,
)

AS_OF = "2026-07-01T00:00:00Z"  # every synthetic feature row is in the 365 days before it
STEPS = {  # step of a workflow run -> what it holds, in the order of a run
    "spark_session": "`score_batch`: Spark session (flytekit `pre_execute`)",
    "setup": "`score_batch`: MLflow store, model resolution, Feast store, contract",
    "score_batch_other": "`score_batch`: planning (population, join, filter), summary",
    "score_and_write": "`score_batch`: the Spark plan: population, point-in-time join, filter, "
    "scoring (pandas UDF), features + predictions written",
    "report_drift": "`report_drift` task (reads the scored features, PSI/KS, MLflow run)",
    "flyte": "Flyte: inputs, outputs (the scored features are handed over by URI)",
}


class TreeMemory:
    """Peak resident memory (VmHWM, MiB) per kind of process in a process tree, sampled from /proc.

    Kinds: `driver` (the tree's root), `jvm` (Spark's JVM: driver and, in local mode, the
    executors), `python_workers` (Spark's Python daemon and workers). VmHWM is each process's
    own peak so far, so sampling only has to see a process before it exits.
    """

    def __init__(self, root: int, poll: float = 0.5) -> None:
        self.root, self.poll = root, poll
        self.peaks: dict[int, tuple[str, float]] = {}

    def __enter__(self) -> TreeMemory:
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll):
            self.sample()

    def sample(self) -> None:
        from benchmarks.common import _with_descendants

        for pid in _with_descendants([self.root]):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            peak = next(
                (int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")),
                0.0,
            )
            self.peaks[pid] = (self._kind(pid, cmdline), max(peak, self.peaks.get(pid, ("", 0.0))[1]))

    def _kind(self, pid: int, cmdline: str) -> str:
        if pid == self.root:
            return "driver"
        if cmdline.split(" ", 1)[0].endswith("java"):
            return "jvm"
        if "pyspark.daemon" in cmdline or "pyspark.worker" in cmdline:
            return "python_workers"
        return "other"

    def summary(self) -> dict:
        """Peak MiB of the driver and of the JVM; the largest Python worker's and their number."""
        by_kind: dict[str, list[float]] = defaultdict(list)
        for kind, peak in self.peaks.values():
            by_kind[kind].append(peak)
        return {
            "driver_peak_mib": round(max(by_kind["driver"], default=0.0), 1),
            "jvm_peak_mib": round(max(by_kind["jvm"], default=0.0), 1),
            "python_worker_peak_mib": round(max(by_kind["python_workers"], default=0.0), 1),
            "python_workers": len(by_kind["python_workers"]),
        }


class StepTimer:
    """Seconds per step of a run; a library call's step is named after the task it runs in."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.task = ""

    def wrap(self, step: str, function: Callable, task: str = "") -> Callable:
        def wrapper(*args, **kwargs):
            if task:
                self.task = task
            name = step if task else f"{self.task}.{step}"
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return wrapper


def child_workflow(predictions: str, repeat: int) -> None:
    """Run the workflow `repeat` times in this process; print one JSON line with each run's steps."""
    started = time.perf_counter()
    import tasks.inference as module
    from tasks.inference import ScoringConfig, report_drift, score_batch
    from workflows.batch_scoring import batch_scoring

    imports = time.perf_counter() - started
    timer = StepTimer()
    # The task bodies look these names up in their module at call time, and flytekit calls
    # the task objects' pre_execute and _task_function: wrapping them changes nothing else.
    score_batch.pre_execute = timer.wrap("spark_session", score_batch.pre_execute, task="score_batch")
    score_batch._task_function = timer.wrap("score_batch", score_batch._task_function, task="score_batch")
    report_drift._task_function = timer.wrap("report_drift", report_drift._task_function, task="report_drift")
    for name in ("configure", "resolve_model", "get_store", "check_contract"):
        setattr(module, name, timer.wrap("setup", getattr(module, name)))
    module.score_and_write = timer.wrap("score_and_write", module.score_and_write)
    peaks: dict[str, float] = {}
    score_batch._task_function = _noting_peak(score_batch._task_function, peaks)

    runs = []
    for _ in range(repeat):
        timer.seconds.clear()
        load = load_average()
        started = time.perf_counter()
        with OtherCpu() as others, TreeMemory(os.getpid()) as memory:
            outcome = batch_scoring(cfg=ScoringConfig(as_of=AS_OF, predictions_uri=predictions))
        total = time.perf_counter() - started
        t = timer.seconds
        inside = ("score_batch.setup", "score_batch.score_and_write")
        steps = {
            "spark_session": t["spark_session"],
            "setup": t["score_batch.setup"],
            "score_batch_other": t["score_batch"] - sum(t[name] for name in inside),
            "score_and_write": t["score_batch.score_and_write"],
            "report_drift": t["report_drift"],
        }
        steps["flyte"] = total - t["spark_session"] - t["score_batch"] - t["report_drift"]
        runs.append(
            {
                "load_average_before": load,
                "other_cores": others.cores,
                "total_seconds": round(total, 2),
                "score_batch_seconds": round(t["spark_session"] + t["score_batch"], 2),
                "steps": {step: round(seconds, 2) for step, seconds in steps.items()},
                # Peaks so far: run 1's, then the process's up to this run; the driver's also at the
                # end of score_batch (locally report_drift runs in the same process after it).
                "memory": {**memory.summary(), "driver_peak_mib_score_batch": peaks["driver"]},
                "rows": outcome.scoring.rows,
                "unscored_users": outcome.scoring.unscored_users,
                "model_version": outcome.scoring.model_version,
            }
        )
        print(f"run {len(runs)}: {runs[-1]}", file=sys.stderr, flush=True)
    print(json.dumps({"imports_seconds": round(imports, 2), "runs": runs, "peak_rss_mib": peak_rss_mib()}))


def _noting_peak(function: Callable, peaks: dict) -> Callable:
    """`function`, noting this process's peak RSS (MiB) when it returns as peaks["driver"]."""

    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            peaks["driver"] = _own_peak_mib()

    return wrapper


def _own_peak_mib() -> float:
    status = Path("/proc/self/status").read_text().splitlines()
    return round(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024, 1)


def child_single(out: str) -> None:
    """The scoring job in this process, without Spark or Flyte; one JSON line with its steps."""
    steps: dict[str, float] = {}
    started = time.perf_counter()

    def step(name: str) -> None:
        nonlocal started
        steps[name] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()

    import duckdb
    import mlflow.artifacts
    import pandas as pd

    from income.data.schema import ENTITY_KEY, FEATURE_TABLES
    from income.features.feature_store import get_store, published_feature_set
    from income.inference.as_of import parse_as_of
    from income.inference.batch_features import features_as_of
    from income.inference.model_version import resolve_model
    from income.inference.scoreable import service_views, split_scoreable
    from income.platform.tracking import MODEL_NAME, configure
    from income.training.model import FEATURES, FittedModel, as_model_input

    step("imports")
    configure()
    model = resolve_model(f"models:/{MODEL_NAME}@champion")
    store = get_store()
    published = published_feature_set(store)  # the workflow refuses a stale registry: so does this
    step("MLflow store, model resolution, Feast store, registry check")
    union = " UNION ".join(
        f"SELECT user_id FROM read_parquet('{published.uri(t)}/**/*.parquet')" for t in FEATURE_TABLES
    )
    with duckdb.connect() as con:
        users = con.execute(f"SELECT DISTINCT user_id FROM ({union}) ORDER BY user_id").df()
    step("population (DuckDB)")
    features = features_as_of(store, users, parse_as_of(AS_OF), engine="asof")
    features = split_scoreable(features, service_views(store)).scored  # the users the workflow scores
    step("point-in-time join (`asof`, DuckDB), scoreable users")
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=model.uri, dst_path=f"{out}.model"))
    artifacts = {
        "preprocessor": str(folder / "artifacts" / "preprocessor.joblib"),
        "meta": str(folder / "artifacts" / "model.json"),
        "estimator": str(next((folder / "artifacts").glob("estimator.*"))),
    }
    fitted = FittedModel.load(artifacts)
    step("model download and load")
    matrix = fitted.preprocessor.transform(as_model_input(features[FEATURES]))
    if fitted.family == "xgboost":
        scores = fitted.estimator.get_booster().inplace_predict(matrix)
    else:  # the champion of another run may be another family: its own predict_proba
        scores = fitted.estimator.predict_proba(matrix)[:, 1]
    probability = fitted.calibrate(scores)  # as the logged model does (an identity without a calibrator)
    step(f"preprocess + {'XGBoost inplace_predict' if fitted.family == 'xgboost' else 'predict_proba'}")
    scores = pd.DataFrame({ENTITY_KEY: features[ENTITY_KEY], "probability": probability.astype("float64")})
    scores.to_parquet(out, index=False)
    step("write parquet")
    result = {"steps": steps, "family": fitted.family, "model_version": model.version, "rows": len(features)}
    print(json.dumps({**result, "peak_rss_mib": peak_rss_mib()}))


def prepare(folder: Path, users: int) -> dict[str, str]:
    """Publish N users' feature tables and apply the registry, in `folder`; the environment to use."""
    import pandas as pd

    from benchmarks.feature_rows import publish_feature_tables
    from income.features.feature_store import apply_definitions, get_store

    env = {
        "INCOME_RUNTIME": str(folder),  # reports and lineage of the runs stay in here
        "INCOME_OFFLINE_STORE": str(folder / "offline_store"),
        "FEAST_REGISTRY_PATH": str(folder / "registry.db"),
        "FLYTE_LOCAL_CACHE_ENABLED": "false",
    }
    os.environ.update(env)
    end = pd.Timestamp(AS_OF)
    rows = publish_feature_tables(env["INCOME_OFFLINE_STORE"], users, end - pd.Timedelta(days=365), end)
    apply_definitions(get_store())
    print(f"published {rows} rows and applied the registry in {folder}", flush=True)
    return env


def observed(run: Callable[[], dict]) -> dict:
    """run() once the machine is quiet (or after two minutes), with the load average before it
    and the cores other processes kept busy during it."""
    waited = wait_until_quiet()
    load = load_average()
    with OtherCpu() as others:
        result = run()
    return {**result, "load_average_before": load, "other_cores": others.cores, "waited_seconds": waited}


def compare(predictions: str, single: str, sample: int = 5_000) -> float:
    """Max |probability difference| between the workflow's and the plain process's, on a sample."""
    import numpy as np
    import pandas as pd

    from income.inference.as_of import parse_as_of
    from income.inference.predictions import read_predictions

    ours = read_predictions(predictions, parse_as_of(AS_OF)).set_index("user_id")["probability"]
    plain = pd.read_parquet(single).set_index("user_id")["probability"]
    if len(ours) != len(plain):
        print(f"the workflow scored {len(ours):,} users, the plain process {len(plain):,}")
        return float("inf")
    users = np.random.default_rng(0).choice(plain.index.to_numpy(), min(sample, len(plain)), replace=False)
    return float(np.max(np.abs(ours.loc[users].to_numpy() - plain.loc[users].to_numpy())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="workflow runs in one process: 1 cold, then warm"
    )
    parser.add_argument(
        "--no-single",
        action="store_true",
        help="skip the plain process (it holds every row: 10M may not fit)",
    )
    parser.add_argument("--child", choices=["workflow", "single"])
    parser.add_argument("--out", help="child: predictions folder (workflow) or file (single)")
    args = parser.parse_args()
    if args.child == "workflow":
        child_workflow(args.out, args.repeat)
        return
    if args.child == "single":
        child_single(args.out)
        return

    from income.platform.settings import PROJECT_ROOT, load_runtime_env

    load_runtime_env()  # Valkey and MLflow settings of the checkout, before INCOME_RUNTIME moves
    folder = bench_dir(f"batch-scoring-workflow-{args.users}")
    load_before = load_average()
    print(f"machine: {machine()}; load average {load_before}", flush=True)
    env = prepare(folder, args.users)
    predictions = str(folder / "predictions")
    result: dict = {
        "machine": machine(),
        "users": args.users,
        "as_of": AS_OF,
        "load_average_before": load_before,
    }

    # The command a user types, timed as a whole; its output goes to a log, not the terminal.
    cfg = json.dumps({"as_of": AS_OF, "predictions_uri": predictions})
    command = [str(Path(sys.executable).parent / "pyflyte"), "run", "workflows/batch_scoring.py"]
    command += ["batch_scoring", "--cfg", cfg]

    def pyflyte_run() -> dict:
        started = time.perf_counter()
        with (folder / "pyflyte.log").open("w") as log:
            child = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env={**os.environ, **env}, stdout=log, stderr=log
            )
            with TreeMemory(child.pid) as memory:
                if child.wait():
                    raise subprocess.CalledProcessError(child.returncode, command)
        return {"wall_seconds": round(time.perf_counter() - started, 1), "memory": memory.summary()}

    print("pyflyte run ...", flush=True)
    result["pyflyte_run"] = observed(pyflyte_run)
    print(f"  {result['pyflyte_run']}", flush=True)
    print(f"workflow function x{args.repeat} in one process ...", flush=True)
    child_args = ["--child", "workflow", "--out", predictions, "--repeat", str(args.repeat)]
    result["workflow"] = observed(lambda: run_child("benchmarks.batch_scoring_workflow", child_args, env))
    if not args.no_single:
        print("single process ...", flush=True)
        single = str(folder / "single.parquet")
        child_args = ["--child", "single", "--out", single]
        result["single"] = observed(lambda: run_child("benchmarks.batch_scoring_workflow", child_args, env))
        result["max_abs_diff_on_sample"] = compare(predictions, single)
    result["load_average_after"] = load_average()
    print(markdown(result) + ("" if args.no_single else single_markdown(result)))
    (folder / "result.json").write_text(json.dumps(result, indent=2))
    if result.get("max_abs_diff_on_sample", 0.0) > 1e-6:
        raise SystemExit("the workflow's and the plain process's probabilities differ")


def markdown(r: dict) -> str:
    runs = r["workflow"]["runs"]
    warm = runs[1:]
    header = ["step", "cold: run 1 (s)", *(f"warm: run {i + 2} (s)" for i in range(len(warm)))]
    lines = [
        f"\n{r['users']:,} users as of {r['as_of']}; {r['machine']}; load average before "
        f"{r['load_average_before']}, after {r['load_average_after']}\n",
        f"`pyflyte run workflows/batch_scoring.py batch_scoring`: {r['pyflyte_run']['wall_seconds']} s "
        f"wall (load {r['pyflyte_run']['load_average_before'][0]}, other processes "
        f"{r['pyflyte_run']['other_cores']} cores); {_memory(r['pyflyte_run']['memory'])}\n",
        f"workflow function in a fresh process ({r['workflow']['wall_seconds']} s wall, of which imports "
        f"{r['workflow']['imports_seconds']} s; load {r['workflow']['load_average_before'][0]}):\n",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    for step, label in STEPS.items():
        lines.append(f"| {label} | " + " | ".join(str(run["steps"][step]) for run in runs) + " |")
    lines.append(
        "| **`score_batch` task** | " + " | ".join(str(run["score_batch_seconds"]) for run in runs) + " |"
    )
    lines.append("| **workflow** | " + " | ".join(str(run["total_seconds"]) for run in runs) + " |")
    for key, label in MEMORY.items():
        lines.append(f"| {label} | " + " | ".join(f"{run['memory'][key]:,}" for run in runs) + " |")
    lines.append("| load before | " + " | ".join(str(run["load_average_before"][0]) for run in runs) + " |")
    lines.append("| other processes (cores) | " + " | ".join(str(run["other_cores"]) for run in runs) + " |")
    return "\n".join(lines)


def single_markdown(r: dict) -> str:
    single = r["single"]
    ratio = r["pyflyte_run"]["wall_seconds"] / single["wall_seconds"]
    lines = [
        "",
        f"single process, {single['family']} ({single['wall_seconds']} s wall, load "
        f"{single['load_average_before'][0]}, other processes {single['other_cores']} cores, "
        f"peak RSS {single['peak_rss_mib']:,} MiB):",
        "",
        "| step | seconds |",
        "| --- | --- |",
        *(f"| {step} | {seconds} |" for step, seconds in single["steps"].items()),
        "",
        f"max |probability difference| workflow vs single process on a sample: {r['max_abs_diff_on_sample']}",
        f"\n`pyflyte run` / single process, whole: {ratio:.2f}x",
    ]
    return "\n".join(lines)


MEMORY = {  # TreeMemory.summary() keys -> labels; peaks so far, so later runs show the process's
    "driver_peak_mib_score_batch": "peak RSS, driver Python process, up to the end of `score_batch` (MiB)",
    "driver_peak_mib": "peak RSS, driver Python process, with `report_drift` (MiB)",
    "jvm_peak_mib": "peak RSS, Spark JVM: driver + executors, one process in local mode (MiB)",
    "python_worker_peak_mib": "peak RSS, largest Spark Python worker (MiB)",
}


def _memory(m: dict) -> str:
    return (
        f"peak RSS: driver {m['driver_peak_mib']:,} MiB, JVM (driver + executors) {m['jvm_peak_mib']:,} MiB, "
        f"largest of {m['python_workers']} Python workers {m['python_worker_peak_mib']:,} MiB"
    )


if __name__ == "__main__":
    main()
