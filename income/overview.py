"""`make report`: the state of the system on one page, index.html among the reports
(`<offline store>/reports/`, `.runtime/offline_store/reports/` locally).

The latest run of each pipeline and what came of it, the champion and the challenger with
their scores and the promotion history, the drift verdict of the last batch runs with its
trend, the champion's lineage, links to every report, and how to open the MLflow and Feast UIs.
It reads every room (lineage records, the registry, the drift runs), so it sits above them,
like `income.summary`.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path

import pandas as pd

from income.inference.drift import KS_P_VALUE, KS_STATISTIC, PSI_DRIFT, PSI_MODERATE
from income.platform import lineage
from income.platform import report_html as h
from income.platform.files import list_files, write_text_atomically
from income.platform.settings import load_runtime_env, reports_uri
from income.platform.tracking import MODEL_NAME, model_version_page, run_page, tracking_uri, ui_url

DRIFT_RUNS = 12  # batch runs in the drift table and trend
HISTORY_VERSIONS = 10  # model versions in the promotion history


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC") if iso else ""


def _link(text: object, href: str) -> h.Markup:
    return h.Markup(f"<a href='{h.escape(href)}'>{h.escape(text)}</a>") if href else h.Markup(h.escape(text))


def _has_tracking_store() -> bool:
    uri = tracking_uri()
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists()


def _outcome(run: dict) -> str:
    if run["kind"] == "feature_pipeline":
        raw = run.get("raw", {})
        return (
            f"published feature set {run.get('feature_set_version')}: {int(raw.get('rows', 0)):,} raw rows, "
            f"{int(run.get('quarantined_rows', 0)):,} quarantined"
        )
    if run["kind"] == "training_pipeline":
        verdict = "promoted to champion" if run.get("promoted") else "not promoted"
        return f"registered {run.get('model_name', MODEL_NAME)} v{run.get('model_version')}, {verdict}"
    if run["kind"] == "monitoring":
        alerts = run.get("alerts", [])
        found = f"{len(alerts)} alert(s): " + "; ".join(alerts) if alerts else "no alert"
        return f"champion v{run.get('champion')} checked against its training reference: {found}"
    verdict = "drift" if run.get("drifted") else "no drift"
    rows = int(run.get("rows", 0))
    return f"{rows:,} predictions as of {run.get('as_of')} by v{run.get('model_version')}: {verdict}"


def pipelines_section(records: list[dict], unfinished_training: dict | None) -> h.Markup:
    """The latest recorded run of each pipeline; a training run that never reached registration."""
    rows = []
    for kind in ("feature_pipeline", "training_pipeline", "batch_scoring", "monitoring"):
        runs = [r for r in records if r["kind"] == kind]
        if runs:
            latest = runs[-1]
            rows.append(
                (kind, _when(latest["at"]), h.coloured("finished", "#2e7d32"), _outcome(latest), len(runs))
            )
        else:
            rows.append((kind, "", "never run", "", 0))
    if unfinished_training:
        rows.append(
            (
                "training_pipeline",
                _when(unfinished_training["at"]),
                h.coloured("did not finish", "#c62828"),
                _link(
                    f"MLflow run {unfinished_training['name']} has no registration (or is running)",
                    unfinished_training["href"],
                ),
                "",
            )
        )
    return (
        h.heading("Pipelines", 2)
        + h.table(["pipeline", "latest run", "outcome", "what it produced", "runs recorded"], rows)
        + h.paragraph(
            "A run is recorded when it reaches its last step (",
            h.code("income.platform.lineage"),
            "); a run that failed earlier leaves no record here. On a Flyte cluster the console lists "
            "every execution.",
        )
    )


def unfinished_training_run(records: list[dict]) -> dict | None:
    """The newest training parent run in MLflow, if it is newer than the last recorded training run
    and has no promotion decision: that run stopped (or is still going) before registration."""
    import mlflow

    runs = mlflow.search_runs(
        filter_string="attributes.run_name LIKE 'training-pipeline-%'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if not runs or "promotion.decision" in runs[0].data.tags:
        return None
    run = runs[0]
    recorded = {r.get("mlflow_parent_run_id") for r in records if r["kind"] == "training_pipeline"}
    if run.info.run_id in recorded:
        return None
    started = pd.Timestamp(run.info.start_time, unit="ms", tz="UTC").isoformat()
    return {
        "at": started,
        "name": run.info.run_name,
        "href": run_page(run.info.experiment_id, run.info.run_id),
    }


def models_section() -> h.Markup:
    """Champion and challenger with their scores, the champion history and the latest decisions."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from income.training.registry import CHALLENGER, CHAMPION, DECISION_TAG, ROLLED_BACK_TAG, champion_history

    client = MlflowClient()
    try:
        model = client.get_registered_model(MODEL_NAME)
    except MlflowException:
        return h.heading("Models", 2) + h.paragraph("No registered model yet: run the training pipeline.")
    aliases = model.aliases
    versions = sorted(client.search_model_versions(f"name = '{MODEL_NAME}'"), key=lambda v: -int(v.version))

    def scores(version) -> tuple[str, str]:
        """(validation, test) ROC AUC: the registered run is the best trial refit on training +
        validation rows, so its validation score is the trial's (older versions were the trial)."""
        metrics = client.get_run(version.run_id).data.metrics
        trial = version.tags.get("trial_run_id")
        chosen_on = client.get_run(trial).data.metrics if trial else metrics
        return (
            f"{chosen_on.get('val_roc_auc', float('nan')):.4f}",
            f"{metrics.get('test_roc_auc', float('nan')):.4f}",
        )

    by_number = {str(v.version): v for v in versions}
    roles = []
    for alias in (CHAMPION, CHALLENGER):
        version = by_number.get(str(aliases.get(alias, "")))
        if version is None:
            roles.append((alias, "none", "", "", "", "", ""))
            continue
        val, test = scores(version)
        roles.append(
            (
                alias,
                _link(f"v{version.version}", model_version_page(MODEL_NAME, str(version.version))),
                version.tags.get("model_family", ""),
                val,
                test,
                version.tags.get("decision_threshold", "0.5")[:5],
                version.tags.get("promotion.reason", ""),
            )
        )
    history = champion_history(client, MODEL_NAME)
    decisions = [
        (
            _link(f"v{v.version}", model_version_page(MODEL_NAME, str(v.version))),
            _when(pd.Timestamp(v.creation_timestamp, unit="ms", tz="UTC").isoformat()),
            v.tags.get("model_family", ""),
            v.tags.get("promotion.challenger_test_roc_auc", "")[:6],
            v.tags.get(DECISION_TAG, "undecided"),
            v.tags.get(ROLLED_BACK_TAG, ""),
            ", ".join(sorted(a for a, number in aliases.items() if str(number) == str(v.version))),
        )
        for v in versions[:HISTORY_VERSIONS]
    ]
    return (
        h.heading("Models", 2)
        + h.table(
            ["alias", "version", "family", "validation ROC AUC", "test ROC AUC", "threshold", "why"], roles
        )
        + h.paragraph(
            "Champion history (oldest first): ",
            h.bold(" → ".join(f"v{v}" for v in history) or "empty"),
            ". Roll back with ",
            h.code("make rollback"),
            ".",
        )
        + h.table(
            [
                "version",
                "registered",
                "family",
                "test ROC AUC at its gate",
                "decision",
                "rolled back",
                "aliases",
            ],
            decisions,
        )
    )


def _reports() -> dict[str, datetime]:
    """The report pages by file name (they sit in one folder, beside the overview), with their time."""
    return {uri.rsplit("/", 1)[-1]: modified for uri, modified in list_files(reports_uri(), ".html")}


def drift_history(records: list[dict], reports: dict[str, datetime] | None = None) -> pd.DataFrame:
    """One row per recent batch run: when, which model, the verdict, its largest PSI and KS statistic
    (from its MLflow run; runs logged before KS statistics were logged have none)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from income.inference.as_of import as_of_label, parse_as_of

    client = MlflowClient()
    reports = _reports() if reports is None else reports
    rows = []
    for run in [r for r in records if r["kind"] == "batch_scoring"][-DRIFT_RUNS:]:
        try:
            metrics = client.get_run(run["drift_mlflow_run_id"]).data.metrics
        except (KeyError, MlflowException):
            metrics = {}
        features = {k.removeprefix("psi."): v for k, v in metrics.items() if k.startswith("psi.")}
        worst = max(features, key=features.get, default="")
        ks = {k.removeprefix("ks."): v for k, v in metrics.items() if k.startswith("ks.")}
        worst_ks = max(ks, key=ks.get, default="")
        report = f"drift-{as_of_label(parse_as_of(run['as_of']))}.html"
        rows.append(
            {
                "scored": pd.Timestamp(run["at"]),
                "as_of": run["as_of"],
                "model_version": run.get("model_version"),
                "drifted": bool(run.get("drifted")),
                # older records name no features; an empty list means the predictions drifted
                "drifted_features": (
                    None
                    if "drifted_features" not in run
                    else ", ".join(run["drifted_features"]) or "predictions"
                ),
                "prediction_psi": metrics.get("prediction_psi", float("nan")),
                "worst_feature": worst,
                "worst_psi": features.get(worst, float("nan")),
                "worst_ks_feature": worst_ks,
                "worst_ks": ks.get(worst_ks, float("nan")),
                "report": report if report in reports else "",
            }
        )
    return pd.DataFrame(rows)


def drift_trend_figure(history: pd.DataFrame):
    """Largest feature PSI, prediction PSI and largest KS statistic per batch run, with the report's
    thresholds: the verdict comes from either rule, so both are drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.4, 3.0))
    runs = range(1, len(history) + 1)
    ax.plot(runs, history["worst_psi"], marker="o", label="largest feature PSI")
    ax.plot(runs, history["prediction_psi"], marker="s", label="prediction PSI")
    ax.plot(
        runs,
        history["worst_ks"],
        marker="^",
        label=f"largest KS statistic (rule: > {KS_STATISTIC}, p < {KS_P_VALUE})",
    )
    drifted = history["drifted"].to_numpy()
    highest = history[["worst_psi", "prediction_psi", "worst_ks"]].max(axis=1)
    ax.scatter(
        [r for r, d in zip(runs, drifted, strict=True) if d],
        highest[drifted],
        s=110,
        facecolors="none",
        edgecolors="#c62828",
        label="verdict: drift",
    )
    ax.axhspan(PSI_MODERATE, PSI_DRIFT, color="#ef6c00", alpha=0.08)
    ax.axhline(PSI_DRIFT, color="#c62828", linestyle="--", linewidth=1)
    ax.axhline(PSI_MODERATE, color="#ef6c00", linestyle="--", linewidth=1)
    labels = [pd.Timestamp(s).strftime("%Y-%m-%d %H:%M") for s in history["as_of"]]
    ax.set_xticks(list(runs), labels, rotation=30, ha="right", fontsize=7)
    ax.set(ylabel="PSI / KS statistic", xlabel="batch run (as of)")
    ax.set_title("Drift over the last batch runs", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def drift_section(history: pd.DataFrame) -> h.Markup:
    if history.empty:
        return h.heading("Drift", 2) + h.paragraph("No batch scoring yet: run the batch scoring pipeline.")
    latest = history.iloc[-1]
    verdict = h.coloured("drift", "#c62828") if latest["drifted"] else h.coloured("no drift", "#2e7d32")
    rows = [
        (
            pd.Timestamp(r.as_of).strftime("%Y-%m-%d %H:%M"),
            f"v{r.model_version}",
            ("drift" + (f": {r.drifted_features}" if r.drifted_features else ""))
            if r.drifted
            else "no drift",
            f"{r.prediction_psi:.4f}",
            f"{r.worst_feature} {r.worst_psi:.4f}",
            f"{r.worst_ks_feature} {r.worst_ks:.4f}" if r.worst_ks_feature else "not logged",
            _link(r.report, r.report) if r.report else "",
        )
        for r in history.iloc[::-1].itertuples()
    ]
    table = h.table(
        ["as of", "model", "verdict", "prediction PSI", "largest feature PSI", "largest KS", "report"], rows
    )
    chart = h.image(h.png_base64(drift_trend_figure(history), dpi=100), "PSI and KS over the last batch runs")
    return (
        h.heading("Drift", 2)
        + h.paragraph("Latest verdict: ", h.bold(verdict), f" ({len(history)} batch runs shown).")
        + h.side_by_side(chart, table)
    )


def reports_section(reports: dict[str, datetime]) -> h.Markup:
    rows = [
        (_link(name.removesuffix(".html"), name), _when(modified.isoformat()))
        for name, modified in sorted(reports.items())
        if name != "index.html"
    ]
    return h.heading("Reports", 2) + h.table(["report", "written"], rows, empty="no reports yet")


def tools_section() -> h.Markup:
    feast = f"http://127.0.0.1:{os.environ.get('FEAST_UI_PORT', '8888')}"
    rows = [
        (h.code("make mlflow-ui"), _link(ui_url(), ui_url()), "runs, trials, plots, the registered model"),
        (h.code("make feast-ui"), _link(feast, feast), "entities, feature views and services"),
        (h.code("make lineage"), "", "the champion's lineage, as text and as lineage-champion.html"),
        (h.code("make rollback"), "", "move champion back to the previous champion"),
        (h.code("make report"), "", "write this page again"),
    ]
    return h.heading("Explore", 2) + h.table(["command", "then open", "what you see"], rows)


def build() -> str:
    """The overview page's HTML, from what the offline store and the tracking store hold now."""
    load_runtime_env()
    records = lineage.runs()
    reports = _reports()
    parts = [
        h.heading("income-ml: overview", 1),
        h.paragraph(f"Written {_when(pd.Timestamp.now(tz='UTC').isoformat())}."),
    ]
    if _has_tracking_store():
        from income.platform.tracking import configure

        configure()
        parts += [pipelines_section(records, unfinished_training_run(records)), models_section()]
        parts.append(drift_section(drift_history(records, reports)))
        lineage_page = "lineage-champion.html"
        if lineage_page in reports:
            parts.append(
                h.heading("Lineage", 2)
                + h.paragraph(
                    "From the raw input to the champion's predictions: ",
                    _link("lineage of the champion", lineage_page),
                    ".",
                )
            )
    else:
        parts += [
            pipelines_section(records, None),
            h.paragraph("No tracking store yet: run the training pipeline."),
        ]
    parts += [reports_section(reports), tools_section()]
    return h.page("income-ml overview", "".join(parts))


def write() -> str:
    """Write the champion's lineage page (when there is a champion) and the overview; return its URI."""
    from mlflow.exceptions import MlflowException

    load_runtime_env()
    if _has_tracking_store():
        # no champion yet, or no record of the run that trained it: the page goes without the link
        with contextlib.suppress(LookupError, MlflowException):
            lineage.write_champion_page()
    uri = f"{reports_uri()}/index.html"
    write_text_atomically(uri, build())
    return uri


def main() -> None:
    print(f"\nOverview: {write()}")


if __name__ == "__main__":
    main()
