"""The drift report: our hand-written PSI/KS (income.inference.drift) vs Evidently's DataDriftPreset.

    .tools/bin/uv sync --group drift-compare   # Evidently is only in this optional group
    python -m benchmarks.drift_compare --rows 100000 --rows 1000000 --repeat 3

Reference and current rows come from the project's generator (income.data.synthetic), two
seeds, each user's latest record (one row a user, as batch scoring compares snapshots of the
population), the income_v1 raw features plus a `prediction` column (a fixed logistic score of
age, education, hours, marriage and capital gain, so it moves when they do). The current
side carries injected drift in four known features and none in the other nine:
- occupation: the generator's `Drift` (35% of employed users move to three jobs);
- hours_per_week: the same `Drift`, +8 hours;
- age: +2 years (mild: about 0.15 reference standard deviations);
- workclass: a fifth of the answers go missing (a form field that broke).
Three reports run side by side on the same frames, each in its own process (peak RSS is
the process's own; the data's share is measured after loading, before the report):
- `handwritten`: income.inference.drift.drift_report, as batch scoring calls it: PSI on the
  reference's deciles plus a missing bin, KS (p < 0.01 and statistic > 0.1), histograms of
  the prediction and the six most drifted features, one HTML page;
- `evidently_default`: DataDriftPreset() with Evidently's own choice per column (above
  1,000 reference rows: Wasserstein distance normed by the reference's std for numeric
  columns, Jensen-Shannon distance for categorical ones, both at 0.1; below: KS and chi-square);
- `evidently_psi_ks`: DataDriftPreset(method="psi", threshold=0.25) and a second preset with
  KS on the numeric columns at p <= 0.01: our tests as far as Evidently has them (its KS
  has no statistic floor, its PSI bins differ: equal width, Sturges' count, missing dropped).
Each report runs `--repeat` times, in turn; the table shows medians of wall time, of the
report process's CPU time (steadier than wall time when others share the machine) and of the
cores other processes kept busy meanwhile (benchmarks.common.OtherCpu); every run is in
the JSON. Evidently's findings are its own test verdicts. With `--screenshots`, headless
Chromium photographs each HTML report.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import OtherCpu, bench_dir, load_average, machine, wait_until_quiet
from income.data.domains import NUMERIC_BOUNDS
from income.data.schema import ENTITY_KEY, RAW_COLUMNS, service_features
from income.training.model import kinds

METHODS = ("handwritten", "evidently_default", "evidently_psi_ks")
PREDICTION = "prediction"
# The raw census attributes income_v1 serves (the history view's window features need Spark).
FEATURES = [f for f in service_features("income_v1") if f in RAW_COLUMNS]
CATEGORICAL, NUMERIC = kinds(FEATURES)
# What was done to the current side, by feature; every other feature is left alone.
INJECTED = {
    "occupation": "35% of employed users change to 3 jobs",
    "hours_per_week": "+8 hours",
    "age": "+2 years (mild)",
    "workclass": "20% of answers missing",
    PREDICTION: "follows age and hours",
}
AGE_SHIFT = 2
WORKCLASS_MISSING = 0.2


def score(frame: pd.DataFrame) -> np.ndarray:
    """A fixed logistic score of a few features: the stand-in for a model's probability."""
    logit = (
        -3.0
        + 0.04 * (frame["age"] - 40)
        + 0.3 * (frame["education_num"] - 10)
        + 0.03 * (frame["hours_per_week"] - 40)
        + 1.5 * frame["marital_status"].isin(["Married-civ-spouse", "Married-AF-spouse"])
        + 2.5 * (frame["capital_gain"] >= 7000)
    )
    return (1 / (1 + np.exp(-logit.astype("float64")))).to_numpy()


def latest_records(records: pd.DataFrame) -> pd.DataFrame:
    """Each user's latest record: a snapshot of the population, one row a user, as batch scoring
    compares (a user's records share most values, so rows of one user are not independent)."""
    return records.drop_duplicates(ENTITY_KEY, keep="last")[FEATURES].reset_index(drop=True)


def make_sides(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current): `rows` users each, the current side drifted as INJECTED says."""
    from income.data.synthetic import Drift, generate_records

    reference = latest_records(generate_records(rows, seed=11))
    current = latest_records(generate_records(rows, seed=12, drift=Drift(start="2000-01-01")))
    low, high = NUMERIC_BOUNDS["age"]
    current["age"] = (current["age"] + AGE_SHIFT).clip(low, high)
    broken = np.random.default_rng(13).random(rows) < WORKCLASS_MISSING
    current["workclass"] = current["workclass"].where(~broken, None)
    assert len(reference) == len(current) == rows, (len(reference), len(current))
    reference[PREDICTION], current[PREDICTION] = score(reference), score(current)
    return reference, current


# ---------------------------------------------------------------------------- one report per process


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    """CPU time of this process so far: what the report costs, whatever else the machine runs."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_handwritten(reference: pd.DataFrame, current: pd.DataFrame, html: Path) -> tuple[dict, dict]:
    from income.inference.drift import compare, drift_report, feature_drift
    from income.platform import report_html

    started = time.perf_counter()
    drifts = compare(reference, current, NUMERIC, CATEGORICAL)
    feature_drift(PREDICTION, reference[PREDICTION], current[PREDICTION], False)
    statistics_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = drift_report(
        reference[FEATURES],
        current[FEATURES],
        reference[PREDICTION].to_numpy(),
        current[PREDICTION].to_numpy(),
        NUMERIC,
        CATEGORICAL,
        title="Drift report (benchmarks.drift_compare)",
        context={
            "reference": f"{len(reference):,} users, seed 11",
            "current": f"{len(current):,} users, seed 12",
        },
    )
    # As tasks/inference.py::report_drift writes it.
    html.write_text(report_html.page("Drift report", result.html))
    seconds = time.perf_counter() - started
    found = {
        (PREDICTION if d.feature == result.prediction.feature else d.feature): {
            "psi": round(d.psi, 4),
            "ks_statistic": None if d.ks_statistic is None else round(d.ks_statistic, 4),
            "ks_p_value": d.ks_p_value,
            "drifted": d.drifted,
        }
        for d in [*drifts, result.prediction]
    }
    return found, {"seconds": seconds, "statistics_seconds": statistics_seconds}


def evidently_presets(method: str) -> list:
    from evidently.presets import DataDriftPreset

    if method == "evidently_default":
        return [DataDriftPreset()]
    return [
        DataDriftPreset(method="psi", threshold=0.25),
        DataDriftPreset(columns=[*NUMERIC, PREDICTION], method="ks", threshold=0.01),
    ]


def run_evidently(
    method: str, reference: pd.DataFrame, current: pd.DataFrame, html: Path
) -> tuple[dict, dict]:
    from evidently import DataDefinition, Dataset, Report

    definition = DataDefinition(numerical_columns=[*NUMERIC, PREDICTION], categorical_columns=CATEGORICAL)
    started = time.perf_counter()
    snapshot = Report(evidently_presets(method), include_tests=True).run(
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
        current_data=Dataset.from_pandas(current, data_definition=definition),
    )
    run_seconds = time.perf_counter() - started
    snapshot.save_html(str(html))
    seconds = time.perf_counter() - started
    return evidently_findings(snapshot.dict()), {"seconds": seconds, "run_seconds": run_seconds}


def evidently_findings(snapshot: dict) -> dict:
    """{column: {method: {score, threshold, drifted}}} from the snapshot's per-column drift tests."""
    values = {m["id"]: m["value"] for m in snapshot["metrics"]}
    found: dict[str, dict] = {}
    for test in snapshot["tests"]:
        params = test["metric_config"]["params"]
        if params.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        found.setdefault(params["column"], {})[params["method"]] = {
            "score": float(values[test["metric_config"]["metric_id"]]),
            "threshold": params["threshold"],
            "drifted": test["status"] == "FAIL",
        }
    return found


def child(method: str, folder: Path) -> None:
    """One report in this process; prints one JSON line."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    reference = pq.read_table(folder / "reference.parquet").to_pandas()
    current = pq.read_table(folder / "current.parquet").to_pandas()
    load_seconds = time.perf_counter() - started
    data_rss = peak_rss_mib()
    html = folder / f"{method}.html"
    # Imports before the clocks start: a report is timed from frames in memory to HTML on disk.
    importlib.import_module("income.inference.drift" if method == "handwritten" else "evidently.presets")
    cpu_before = cpu_seconds()
    if method == "handwritten":
        found, timing = run_handwritten(reference, current, html)
    else:
        found, timing = run_evidently(method, reference, current, html)
    timing["cpu_seconds"] = cpu_seconds() - cpu_before
    print(
        json.dumps(
            {
                "method": method,
                "load_seconds": round(load_seconds, 2),
                **{k: round(v, 3) for k, v in timing.items()},
                "rss_after_load_mib": data_rss,
                "peak_rss_mib": peak_rss_mib(),
                "html_bytes": html.stat().st_size,
                "findings": found,
            },
            default=float,
        )
    )


# ---------------------------------------------------------------------------- the comparison


def run_one(method: str, folder: Path) -> dict:
    wait_until_quiet(max_cores=0.3, max_wait=30, window=2)
    load = load_average()
    with OtherCpu() as others:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.drift_compare", "--child", method, "--folder", str(folder)],
            env={**os.environ, "DO_NOT_TRACK": "1"},  # Evidently's telemetry off (the machine is offline)
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result.update(other_cores=others.cores, load_average=load)
    return result


def flags(runs: dict[str, dict]) -> dict[str, dict[str, bool | None]]:
    """Per feature, per report: drifted or not (evidently_psi_ks: PSI or KS)."""
    table: dict[str, dict[str, bool | None]] = {}
    for column in [*FEATURES, PREDICTION]:
        row: dict[str, bool | None] = {"handwritten": runs["handwritten"]["findings"][column]["drifted"]}
        for method in METHODS[1:]:
            tests = runs[method]["findings"].get(column, {})
            row[method] = any(t["drifted"] for t in tests.values()) if tests else None
        table[column] = row
    return table


def summarise(rows: int, runs: list[dict]) -> dict:
    by_method = {m: [r for r in runs if r["method"] == m] for m in METHODS}
    median = {
        m: {
            k: statistics.median(r[k] for r in rs)
            for k in ("seconds", "cpu_seconds", "peak_rss_mib", "other_cores")
        }
        for m, rs in by_method.items()
    }
    last = {m: rs[-1] for m, rs in by_method.items()}
    table = flags(last)
    stable = [f for f in table if f not in INJECTED]
    return {
        "rows": rows,
        "median_seconds": {m: round(v["seconds"], 2) for m, v in median.items()},
        "median_cpu_seconds": {m: round(v["cpu_seconds"], 2) for m, v in median.items()},
        "median_other_cores": {m: v["other_cores"] for m, v in median.items()},
        "median_peak_rss_mib": {m: round(v["peak_rss_mib"]) for m, v in median.items()},
        "rss_after_load_mib": {m: last[m]["rss_after_load_mib"] for m in METHODS},
        "ratio_vs_handwritten": {
            m: round(v["seconds"] / median["handwritten"]["seconds"], 2) for m, v in median.items()
        },
        "html_bytes": {m: last[m]["html_bytes"] for m in METHODS},
        "handwritten_statistics_seconds": statistics.median(
            r["statistics_seconds"] for r in by_method["handwritten"]
        ),
        "flags": table,
        "found_injected": {m: sum(bool(table[f][m]) for f in INJECTED) for m in METHODS},
        "false_alarms": {m: [f for f in stable if table[f][m]] for m in METHODS},
        "scores": {m: last[m]["findings"] for m in METHODS},
        "runs": runs,
    }


def screenshot(html: Path, png: Path) -> bool:
    """A 1300x2400 picture of the page by headless Chromium (False when there is none)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        return False
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                "--window-size=1300,2400",
                html.resolve().as_uri(),
            ],  # fmt: skip
            check=True,
            capture_output=True,
            timeout=120,
        )
    return png.exists()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="rows a side (repeatable); default 100,000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--screenshots", action="store_true", help="photograph each report (headless Chromium)"
    )
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.folder)
        return

    import evidently  # fail early, with the install hint, when the optional group is missing

    results = []
    for rows in args.rows or [100_000]:
        folder = bench_dir(f"drift-compare-{rows}")
        reference, current = make_sides(rows)
        for side, frame in (("reference", reference), ("current", current)):
            frame.to_parquet(folder / f"{side}.parquet", index=False)
        del reference, current
        runs = [run_one(m, folder) for _ in range(args.repeat) for m in METHODS]
        summary = summarise(rows, runs)
        if args.screenshots:
            summary["screenshots"] = {
                m: str(folder / f"{m}.png")
                for m in METHODS
                if screenshot(folder / f"{m}.html", folder / f"{m}.png")
            }
        results.append(summary)
    result = {
        "machine": machine(),
        "evidently": evidently.__version__,
        "repeat": args.repeat,
        "load_average_after": load_average(),
        "sizes": results,
    }
    (bench_dir("drift-compare") / "results.json").write_text(json.dumps(result, indent=1, default=float))
    print(markdown(result))
    print(json.dumps(result, default=float))


def _flag(value: bool | None) -> str:
    return "–" if value is None else ("**drift**" if value else "no")


def markdown(r: dict) -> str:
    lines = [
        f"{r['machine']}; Evidently {r['evidently']}; medians of {r['repeat']} runs, each report in its own "
        f"process; load average after {r['load_average_after']}.",
        "",
        "| rows a side | report | median wall s (CPU s) | vs hand-written, wall (CPU) | others, cores | "
        "peak RSS MiB (data alone) | HTML | injected found (of 5) | false alarms (of 9) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in r["sizes"]:
        cpu = s["median_cpu_seconds"]
        for m in METHODS:
            cells = [
                f"{s['rows']:,}",
                m,
                f"{s['median_seconds'][m]} ({cpu[m]})",
                f"{s['ratio_vs_handwritten'][m]}x ({cpu[m] / cpu['handwritten']:.2f}x)",
                f"{s['median_other_cores'][m]}",
                f"{s['median_peak_rss_mib'][m]:,} ({s['rss_after_load_mib'][m]:,.0f})",
                f"{s['html_bytes'][m] / 1e6:.2f} MB",
                f"{s['found_injected'][m]}",
                ", ".join(s["false_alarms"][m]) or "none",
            ]
            lines.append(f"| {' | '.join(cells)} |")
    for s in r["sizes"]:
        hand, default, psi_ks = (s["scores"][m] for m in METHODS)
        lines += [
            "",
            f"Findings at {s['rows']:,} rows a side (hand-written: PSI, KS statistic; Evidently default: "
            "its method and score; Evidently PSI/KS: PSI, KS p-value):",
            "",
            "| feature | injected | hand-written | Evidently default | Evidently PSI / KS |",
            "| --- | --- | --- | --- | --- |",
        ]
        for column, row in s["flags"].items():
            h = hand[column]
            ks = f", KS {h['ks_statistic']}" if h["ks_statistic"] is not None else ""
            d = next(iter(default.get(column, {}).items()), None)
            default_cell = f"{_short(d[0])} {d[1]['score']:.3f}" if d else ""
            p = psi_ks.get(column, {})
            psi_cell = ", ".join(f"{_short(name)} {t['score']:.3g}" for name, t in p.items())
            cells = [
                column,
                INJECTED.get(column, ""),
                f"{_flag(row['handwritten'])}: PSI {h['psi']}{ks}",
                f"{_flag(row['evidently_default'])}: {default_cell}",
                f"{_flag(row['evidently_psi_ks'])}: {psi_cell}",
            ]
            lines.append(f"| {' | '.join(cells)} |")
    return "\n".join(lines)


def _short(method: str) -> str:
    return {
        "Wasserstein distance (normed)": "Wasserstein",
        "Jensen-Shannon distance": "JS",
        "K-S p_value": "KS p",
    }.get(method, method)


if __name__ == "__main__":
    main()
