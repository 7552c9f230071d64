"""Monitoring tasks: drain the prediction log, join outcomes, measure live, decide the experiment."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pandas as pd

from income.data.schema import service_features
from income.features.feature_store import FEATURE_SERVICE
from income.inference.model_version import resolve_model
from income.monitoring import prediction_log
from income.monitoring.ab_test import ABAnalysis, ExperimentPlan, analyse, write_analysis
from income.monitoring.alerts import Alert, AlertConfig, check, recent
from income.monitoring.live_report import report_html
from income.monitoring.outcomes import join_outcomes, live_metrics, overall_metrics, period_for
from income.platform import lineage
from income.platform import report_html as h
from income.platform.files import write_text_atomically
from income.platform.settings import ValkeySettings, offline_store_uri
from income.platform.tracking import MODEL_NAME, MONITORING_EXPERIMENT, configure
from income.training.labels import read_labels
from income.training.model import kinds
from income.training.registry import seats
from tasks.decks import show
from tasks.execution import execution_id
from tasks.resources import DECK_FIELDS, MEDIUM, SHORT, SMALL, VALKEY_SECRET, task


@dataclass
class MonitoringConfig:
    """The experiment's plan (income.monitoring.ab_test) and which models it compares."""

    alpha: float = 0.05
    power: float = 0.8
    minimal_effect: float = 0.03  # accuracy gain worth detecting
    baseline_accuracy: float = 0.80  # the champion's expected accuracy
    mode: str = "auto"  # ab | shadow | auto: ab when the log holds challenger answers, else shadow
    model_name: str = MODEL_NAME
    alerts: AlertConfig = field(default_factory=AlertConfig)
    fail_on_alert: bool = False  # for schedulers: the run fails (non-zero exit) when any alert fires

    def plan(self) -> ExperimentPlan:
        return ExperimentPlan(self.alpha, self.power, self.minimal_effect, self.baseline_accuracy)


@dataclass
class DrainReport:
    entries: int
    files: int
    remaining: int


@dataclass
class LiveSummary:
    predictions: int
    with_outcome: int
    decision: str  # collecting | promote | keep champion | "" (no experiment)
    reason: str
    analysis_uri: str
    mlflow_run_id: str


@task(requests=SMALL, limits=MEDIUM, timeout=SHORT, retries=2, secret_requests=[VALKEY_SECRET])
def drain_prediction_log() -> DrainReport:
    """Move the service's prediction log from its Valkey stream into the offline store (parquet)."""
    summary = prediction_log.drain(ValkeySettings.from_env().client(), offline_store_uri())
    print(f"prediction log: {summary.entries:,} entries drained, {summary.remaining:,} arrived meanwhile")
    return DrainReport(entries=summary.entries, files=len(summary.files), remaining=summary.remaining)


def experiment(joined: pd.DataFrame, cfg: MonitoringConfig) -> ABAnalysis | None:
    """The analysis of the current champion against the current challenger, if they differ."""
    champion, challenger = seats(cfg.model_name)
    if champion is None or challenger is None or champion == challenger:
        return None
    mode = cfg.mode
    if mode == "auto":
        answered = (joined["variant"] == "challenger") & (joined["model_version"].astype(str) == challenger)
        mode = "ab" if answered.any() else "shadow"
    return analyse(joined, mode, champion, challenger, cfg.plan())


def _log_run(daily: pd.DataFrame, overall: pd.DataFrame, analysis: ABAnalysis | None, html: str) -> str:
    import mlflow

    configure(MONITORING_EXPERIMENT)
    with mlflow.start_run(run_name="live-metrics") as run:
        for _, row in overall.iterrows():
            prefix = f"v{row['model_version']}_{row['variant']}"
            mlflow.log_metrics(
                {f"{prefix}_{k}": float(row[k]) for k in ("roc_auc", "accuracy", "brier", "predictions")}
            )
        if analysis is not None:
            mlflow.set_tags({"decision": analysis.decision, "reason": analysis.reason[:5000]})
            mlflow.log_dict(analysis.to_dict(), "experiment.json")
        if not daily.empty:
            mlflow.log_table(daily.assign(period=daily["period"].astype(str)), "live_metrics_daily.json")
        mlflow.log_text(html, "live_report.html")
    return run.info.run_id


@task(
    requests=SMALL,
    limits=MEDIUM,
    timeout=SHORT,
    retries=2,
    enable_deck=True,
    deck_fields=DECK_FIELDS,
)
def live_metrics_report(cfg: MonitoringConfig, drained: DrainReport) -> LiveSummary:
    """Join outcomes to the logged predictions; metrics per version and variant; the experiment."""
    root = offline_store_uri()
    log = prediction_log.read_log(root)
    joined = join_outcomes(log[log["model_name"] == cfg.model_name], read_labels(root))
    freq = period_for(joined)
    daily = live_metrics(joined, freq) if len(joined) else pd.DataFrame()
    overall = overall_metrics(joined) if len(joined) else pd.DataFrame()
    analysis = experiment(joined, cfg) if len(joined) else None
    html = report_html(daily, overall, joined, analysis, freq)
    show("Live metrics", html)
    written = write_analysis(root, analysis) if analysis is not None else ""
    run_id = _log_run(daily, overall, analysis, html)
    summary = LiveSummary(
        predictions=len(joined),
        with_outcome=int(joined["outcome"].notna().sum()) if len(joined) else 0,
        decision=analysis.decision if analysis else "",
        reason=analysis.reason if analysis else "no challenger other than the champion",
        analysis_uri=written,
        mlflow_run_id=run_id,
    )
    lineage.record("live_metrics", flyte_execution_id=execution_id(), **asdict(summary))
    counts = f"{summary.predictions:,} predictions, {summary.with_outcome:,} with outcomes"
    print(f"live metrics: {counts}; {summary.reason}")
    return summary


REFERENCE_SAMPLE = 20_000


@dataclass
class MonitorSummary:
    predictions_checked: int
    champion_version: str
    alerts: list[str]  # one message per alert
    alerts_uri: str


def _features(model) -> list[str]:
    """The model's features: those of the feature service its contract names."""
    return service_features(model.tags.get("feature_service") or FEATURE_SERVICE)


def _champion_reference(model_name: str):
    """The champion, a sample of its training set and its scores on it: the monitoring reference."""
    import mlflow

    model = resolve_model(f"models:/{model_name}@champion")
    if "training_set_uri" not in model.tags:  # registered by hand: latency and nulls only
        return model, pd.DataFrame(), None
    reference = pd.read_parquet(model.tags["training_set_uri"])
    reference = reference.sample(min(len(reference), REFERENCE_SAMPLE), random_state=0)
    scores = mlflow.pyfunc.load_model(model.uri).predict(reference[_features(model)])
    return model, reference, scores


def _alerts_html(alerts: list[Alert], checked: int, cfg: AlertConfig, version: str) -> str:
    intro = h.paragraph(
        f"{checked:,} served predictions of the last {cfg.window_hours:g} h checked against champion "
        f"v{version}'s training reference (income.monitoring.alerts)."
    )
    if checked < cfg.min_predictions:
        return intro + h.paragraph(f"Fewer than {cfg.min_predictions} predictions: nothing checked.")
    rows = [(a.check, a.subject, f"{a.value:.4g}", f"{a.threshold:g}", a.message) for a in alerts]
    verdict = (
        h.coloured(f"{len(alerts)} alert(s)", "firebrick") if alerts else h.coloured("no alert", "green")
    )
    return intro + h.paragraph(verdict) + h.table(["check", "subject", "value", "threshold", "what"], rows)


@task(
    requests=SMALL,
    limits=MEDIUM,
    timeout=SHORT,
    retries=2,
    enable_deck=True,
    deck_fields=DECK_FIELDS,
)
def monitor_predictions(cfg: MonitoringConfig, drained: DrainReport) -> MonitorSummary:
    """Check the recent served predictions of the champion against its training reference; record
    the alerts (offline store, lineage, Deck); fail when `cfg.fail_on_alert` and any fires."""
    configure()
    root = offline_store_uri()
    model, reference, scores = _champion_reference(cfg.model_name)
    log = prediction_log.read_log(root)
    live = recent(log[log["model_name"] == cfg.model_name] if len(log) else log, cfg.alerts.window_hours)
    live = live[live["model_version"].astype(str) == model.version] if len(live) else live
    features = _features(model)
    alerts = check(live, reference, scores, kinds(features)[1], features, cfg.alerts)
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")
    uri = f"{root.rstrip('/')}/monitoring/alerts/{stamp}.json"
    write_text_atomically(uri, json.dumps([asdict(a) for a in alerts], indent=2))
    messages = [a.message for a in alerts]
    lineage.record("monitoring", flyte_execution_id=execution_id(), champion=model.version, alerts=messages)
    show("Monitoring", _alerts_html(alerts, len(live), cfg.alerts, model.version))
    print(f"monitoring: {len(live):,} predictions checked, {len(alerts)} alert(s): {messages}")
    if alerts and cfg.fail_on_alert:
        raise RuntimeError(f"{len(alerts)} monitoring alert(s): " + "; ".join(messages))
    return MonitorSummary(len(live), model.version, messages, uri)
