"""Training tasks: point-in-time training set, the search's rounds (ask, one task per trial, tell),
the final refit of the best trial, registration and the promotion gate."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime

import mlflow
import pandas as pd

from income.data.schema import TIMESTAMP
from income.features.feature_store import (
    FEATURE_SERVICE,
    definitions_version,
    get_store,
    published_feature_set,
)
from income.inference.contract import service_refs
from income.platform import lineage, lineage_graph, svg_graph
from income.platform import report_html as h
from income.platform.settings import offline_store_uri, training_sets_uri
from income.platform.tracking import MODEL_NAME, configure, git_commit
from income.training.fairness import worst_equalized_odds
from income.training.final import FinalModel, finalize
from income.training.fingerprint import fingerprint
from income.training.labels import read_labels
from income.training.plots import log_figure, search_figure, target_rate_figure
from income.training.registry import PromotionDecision, best_trial, register_and_gate
from income.training.search import SearchConfig, TrialSpec, ask_round, open_study, tell_round
from income.training.splits import split_by_time
from income.training.training_set import join_training_set, save_training_set
from income.training.trials import Splits, TrialResult, run_trial
from tasks.decks import show
from tasks.execution import execution_id
from tasks.resources import DECK_FIELDS, LARGE, LONG, MEDIUM, SHORT, SMALL, task


@dataclass(frozen=True)
class TrainingConfig:
    search: SearchConfig = field(default_factory=SearchConfig)
    valid_share: float = 0.15  # later labels for model selection
    test_share: float = 0.15  # latest labels for the final evaluation and the promotion gate
    promotion_margin: float = 0.001  # test ROC AUC the challenger must gain over the champion
    # How the decision threshold is chosen on the validation rows: "accuracy" (maximum accuracy),
    # "f1" (maximum F1) or "precision>=0.8" (the most positives at that precision).
    threshold_criterion: str = "accuracy"
    # Train on the labels of records from the last `window_days` before as_of (0: all of them):
    # a shorter window lets a retrain follow a world that changed, at the cost of less data.
    window_days: int = 0
    # The feature service the models are trained on and served with (income.data.schema.FEATURE_SERVICES).
    feature_service: str = FEATURE_SERVICE
    # Refuse promotion when the final model's equalized-odds gap across `sex` or `race` groups
    # on the test rows exceeds this (income.training.fairness); 0 turns the check off.
    max_fairness_gap: float = 0.0


@dataclass(frozen=True)
class TrainingSet:
    uri: str
    rows: int
    sha256: str
    feature_service: str
    feature_refs: list[str]
    definitions_version: str
    parent_run_id: str
    valid_share: float
    test_share: float
    lineage: dict[str, str]  # the feature run and raw input behind the tables (income.platform.lineage)


@dataclass(frozen=True)
class TrainingOutcome:
    parent_run_id: str
    best_run_id: str  # the best trial (on validation)
    best_family: str
    final_run_id: str  # its configuration refit on training + validation rows: the registered model
    trials_succeeded: int
    trials_failed: int
    decision: PromotionDecision


def load_splits(training_set: TrainingSet) -> Splits:
    df = pd.read_parquet(training_set.uri)
    train, valid, test = split_by_time(df, training_set.valid_share, training_set.test_share)
    return Splits(train, valid, test, training_set.uri, training_set.sha256, training_set.feature_service)


@task(requests=MEDIUM, limits=LARGE, timeout=LONG, retries=2)
def build_training_set(cfg: TrainingConfig, as_of: datetime | None = None) -> TrainingSet:
    """Labels + Feast point-in-time join (cfg.feature_service) -> saved training set + parent run.

    `as_of` (the weekly schedule's kickoff time): only the labels that had arrived by then.
    """
    store = get_store()
    refs = service_refs(store, cfg.feature_service)
    root = offline_store_uri()
    # Labels and features from one version, or a clear error.
    published = published_feature_set(store, cfg.feature_service)
    labels = read_labels(root, known_by=pd.Timestamp(as_of) if as_of is not None else None)
    if cfg.window_days and len(labels):
        since = (pd.Timestamp(as_of) if as_of is not None else labels[TIMESTAMP].max()) - pd.Timedelta(
            days=cfg.window_days
        )
        labels = labels[labels[TIMESTAMP] >= since].reset_index(drop=True)
    upstream = lineage.as_tags(lineage.read_manifest(published.folder))
    definitions = definitions_version()
    started = time.perf_counter()
    df = join_training_set(store, labels, service_name=cfg.feature_service)
    join_seconds = time.perf_counter() - started
    digest = fingerprint(df)["sha256"]  # content-addressed: a model version's training set stays put
    saved = save_training_set(df, f"{training_sets_uri()}/training_set-{digest[:16]}.parquet")

    configure()
    with mlflow.start_run(run_name=f"training-pipeline-{execution_id()}") as parent:
        mlflow.set_tags(
            {
                "flyte_execution_id": execution_id(),
                "git_commit": git_commit(),
                "feature_service": cfg.feature_service,
                "feast_definitions_version": definitions,
                "training_set_sha256": saved["sha256"],
                **upstream,
            }
        )
        mlflow.log_params(
            {
                "training_set_rows": saved["rows"],
                "valid_share": cfg.valid_share,
                "test_share": cfg.test_share,
                "labels_known_by": as_of.isoformat() if as_of is not None else "all",
                "feature_set_version": published.version,
            }
            | {f"search_{k}": v for k, v in asdict(cfg.search).items()}
        )
        mlflow.log_metric("training_set_seconds", join_seconds)
        train, _, _ = split_by_time(df, cfg.valid_share, cfg.test_share)
        log_figure(target_rate_figure(train), "exploration/target_rate_per_category.png")
    return TrainingSet(
        uri=saved["uri"],
        rows=saved["rows"],
        sha256=saved["sha256"],
        feature_service=cfg.feature_service,
        feature_refs=refs,
        definitions_version=definitions,
        parent_run_id=parent.info.run_id,
        valid_share=cfg.valid_share,
        test_share=cfg.test_share,
        lineage=upstream,
    )


def study_name(training_set: TrainingSet) -> str:
    """One Optuna study per training run (its MLflow parent run): a retried task finds it again."""
    return f"income-{training_set.parent_run_id}"


@task(requests=SMALL, limits=SMALL, timeout=SHORT, retries=2)
def ask_trials(
    cfg: TrainingConfig, training_set: TrainingSet, round_index: int, told: int
) -> list[TrialSpec]:
    """Round `round_index` of the search: the trials the study asks for now that `told` trials are told."""
    study = open_study(study_name(training_set), cfg.search)
    return ask_round(study, cfg.search, round_index)


@task(requests=SMALL, limits=SMALL, timeout=SHORT, retries=2)
def tell_trials(
    cfg: TrainingConfig, training_set: TrainingSet, specs: list[TrialSpec], results: list[TrialResult | None]
) -> int:
    """Tell the study the round's validation ROC AUC (failed trials as failed); returns trials told."""
    study = open_study(study_name(training_set), cfg.search)
    told = tell_round(study, specs, [r.val_roc_auc if r is not None else None for r in results])
    best = study.best_trial if any(t.value is not None for t in study.trials) else None
    print(  # progress on the console of `pyflyte run` (and in the task's log on a cluster)
        f"search: {told}/{cfg.search.n_trials} trials told"
        + (f", best validation ROC AUC {best.value:.4f} ({best.params['model_family']})" if best else ""),
        flush=True,
    )
    return told


@task(requests=SMALL, limits=SMALL, timeout=SHORT, retries=2)
def gather_trials(rounds: list[list[TrialResult | None]]) -> list[TrialResult | None]:
    """The results of every round, in the order the trials were asked."""
    return [result for results in rounds for result in results]


# No user retries: a failing trial is a result (recorded as FAILED), not an outage; the map
# task's min_success_ratio decides whether the run goes on. Flyte still retries system errors.
@task(requests=MEDIUM, limits=LARGE, timeout=LONG, retries=0)
def train_trial(spec: TrialSpec, training_set: TrainingSet) -> TrialResult:
    """Fit and log one trial as a nested MLflow run (failures end it as FAILED and fail the task)."""
    configure()
    result = run_trial(spec, load_splits(training_set), training_set.parent_run_id)
    print(
        f"  trial {spec.trial_id:2d} {spec.model_family:<19} validation ROC AUC {result.val_roc_auc:.4f} "
        f"({result.fit_seconds:.1f} s)",
        flush=True,
    )
    return result


def _leaderboard(results: list[TrialResult | None], best_run_id: str, mark: str) -> tuple[h.Markup, object]:
    """The trials as a table, best first, and as a chart of the search (a matplotlib figure)."""
    ranked = sorted((r for r in results if r), key=lambda r: -r.val_roc_auc)
    rows = [(r.trial_id, r.model_family, f"{r.val_roc_auc:.4f}", f"{r.fit_seconds:.1f}") for r in ranked]
    best = [i for i, r in enumerate(ranked) if r.run_id == best_run_id]
    table = h.table(["trial", "family", "val ROC AUC", "fit s"], rows, bold_rows=best)
    trials = pd.DataFrame([asdict(r) for r in ranked], columns=[f.name for f in fields(TrialResult)])
    return table, search_figure(trials, best_run_id, mark)


@task(requests=MEDIUM, limits=LARGE, timeout=LONG, retries=2)
def refit_best(
    training_set: TrainingSet, results: list[TrialResult | None], cfg: TrainingConfig
) -> FinalModel:
    """The best trial by validation ROC AUC (an MLflow query), refit on training + validation rows,
    calibrated and thresholded on validation, scored once on test, explained (income.training.final)."""
    configure()
    best = best_trial(training_set.parent_run_id)
    splits = load_splits(training_set)
    final = finalize(best.info.run_id, splits, training_set.parent_run_id, cfg.threshold_criterion)
    print(
        f"final: trial {best.data.tags['trial_id']} ({final.model_family}) refit on {final.refit_rows:,} "
        f"rows, calibration {final.calibration}, threshold {final.threshold:.3f}: test ROC AUC "
        f"{final.test_roc_auc:.4f}, accuracy {final.test_accuracy:.4f}",
        flush=True,
    )
    return final


def _final_section(final: FinalModel) -> h.Markup:
    """The final model's calibration, threshold and SHAP figures, as logged in its run."""
    import base64

    figures = []
    for path in (
        "calibration/reliability_validation.png",
        "calibration/reliability_test.png",
        "explain/shap_summary.png",
    ):
        try:
            local = mlflow.artifacts.download_artifacts(run_id=final.run_id, artifact_path=path)
        except Exception:  # noqa: BLE001 - SHAP is logged for XGBoost only
            continue
        with open(local, "rb") as png:
            figures.append(h.image(base64.b64encode(png.read()).decode(), path))
    summary = h.paragraph(
        f"Final model: the best trial's {final.model_family} configuration refit on "
        f"{final.refit_rows:,} training + validation rows"
        + (f" ({final.boosting_rounds} boosting rounds)" if final.boosting_rounds else "")
        + f"; calibration {final.calibration}; decision threshold {final.threshold:.3f} "
        f"(maximum {final.threshold_criterion} on validation). Test ROC AUC {final.test_roc_auc:.4f}, "
        f"accuracy {final.test_accuracy:.4f}."
    )
    gaps = h.paragraph(
        "Fairness on the test rows (income.training.fairness): ",
        ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in sorted(final.fairness_gaps.items())) or "none",
        ".",
    )
    return summary + gaps + h.side_by_side(*figures)


@task(requests=MEDIUM, limits=LARGE, timeout=LONG, retries=2, enable_deck=True, deck_fields=DECK_FIELDS)
def select_and_register(
    training_set: TrainingSet, results: list[TrialResult | None], final: FinalModel, cfg: TrainingConfig
) -> TrainingOutcome:
    """The final model (the best trial refit) -> registered challenger -> gate on the test rows."""
    configure()
    best = mlflow.get_run(final.trial_run_id)
    splits = load_splits(training_set)
    contract = {
        "feature_service": training_set.feature_service,
        "feature_refs": ",".join(training_set.feature_refs),
        "feast_definitions_version": training_set.definitions_version,
        "training_set_uri": training_set.uri,
        "training_set_rows": str(training_set.rows),
        "training_set_sha256": training_set.sha256,
        "flyte_execution_id": execution_id(),
        "git_commit": git_commit(),
        "model_family": final.model_family,
        "trial_run_id": final.trial_run_id,
        "calibration": final.calibration,
        "decision_threshold": repr(final.threshold),
        "threshold_criterion": final.threshold_criterion,
        **training_set.lineage,
    }
    attribute, gap = worst_equalized_odds(final.fairness_gaps)
    blocked = ""
    if cfg.max_fairness_gap and gap > cfg.max_fairness_gap:
        blocked = f"equalized-odds gap across {attribute} {gap:.3f} > the allowed {cfg.max_fairness_gap}"
    contract["fairness_worst_equalized_odds_gap"] = f"{attribute}={gap:.4f}"
    decision = register_and_gate(final.run_id, splits.test, cfg.promotion_margin, contract, blocked=blocked)
    failed = sum(r is None for r in results)
    entry = lineage.record(
        "training_pipeline",
        flyte_execution_id=execution_id(),
        feature_run_id=training_set.lineage.get("lineage.feature_run_id"),
        feature_service=training_set.feature_service,
        feast_definitions_version=training_set.definitions_version,
        training_set={"uri": training_set.uri, "rows": training_set.rows, "sha256": training_set.sha256},
        mlflow_parent_run_id=training_set.parent_run_id,
        mlflow_best_run_id=final.run_id,
        model_name=MODEL_NAME,
        model_family=contract["model_family"],
        model_version=decision.model_version,
        promoted=decision.promoted,
        champion_version=decision.champion_version,
    )
    with mlflow.start_run(run_id=training_set.parent_run_id):
        mlflow.set_tags({f"promotion.{k}": str(v) for k, v in asdict(decision).items()})
        mlflow.set_tags({"best_trial_run_id": best.info.run_id, "final_run_id": final.run_id})
        mlflow.log_metrics(
            {
                "best_val_roc_auc": best.data.metrics["val_roc_auc"],
                "challenger_test_roc_auc": decision.challenger_test_roc_auc,
                "challenger_test_accuracy": final.test_accuracy,
                "decision_threshold": final.threshold,
                "trials_failed": failed,
            }
        )
        graph = lineage_graph.for_training_run(entry)
        title = f"Lineage of {MODEL_NAME} v{decision.model_version} (training run {execution_id()})"
        picture = lineage_graph.section(title, graph, entry)
        mlflow.log_dict(entry, "lineage.json")
        mlflow.log_text(str(svg_graph.render(graph)), "lineage.svg")
        mlflow.log_text(h.page("Lineage", picture), "lineage.html")
        role = "champion" if decision.promoted else "challenger, not promoted"
        table, chart = _leaderboard(results, best.info.run_id, f"v{decision.model_version} ({role})")
        mlflow.log_figure(chart, "leaderboard.png")
    final_section = _final_section(final)
    show("Lineage", picture)
    show(
        "Training",
        h.paragraph(f"{decision.reason}. Champion: v{decision.champion_version}.")
        + h.side_by_side(table, h.image(h.png_base64(chart), "validation ROC AUC per trial"))
        + final_section
        + h.paragraph(
            f"Features: {len(training_set.feature_refs)} from ",
            h.bold(training_set.feature_service),
            f"; training set {training_set.rows:,} rows, sha256 {training_set.sha256[:12]}.",
        ),
    )
    return TrainingOutcome(
        parent_run_id=training_set.parent_run_id,
        best_run_id=best.info.run_id,
        best_family=final.model_family,
        final_run_id=final.run_id,
        trials_succeeded=len(results) - failed,
        trials_failed=failed,
        decision=decision,
    )
