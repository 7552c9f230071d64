"""Batch scoring tasks: champion + Feast (offline, as of T) -> Spark scoring -> predictions; drift report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import NamedTuple

import mlflow
import numpy as np
import pandas as pd
from flytekit import FlyteContextManager, StructuredDataset, current_context

from income.data.schema import ENTITY_KEY, TIMESTAMP, service_features
from income.features.feature_store import FEATURE_SERVICE, get_store, published_feature_set
from income.features.offline_store import current
from income.inference.as_of import as_of_label, parse_as_of
from income.inference.batch_features import census_age_days, features_as_of, spark_features_as_of
from income.inference.batch_scoring import predictor, score_and_write
from income.inference.contract import check_contract
from income.inference.drift import DriftSummary, drift_report
from income.inference.drift_sample import in_sample, read_sample, sample_fraction
from income.inference.model_version import resolve_model
from income.inference.population import population_from_file, population_from_offline_store
from income.inference.scoreable import SparkScoreableSplit, service_views, split_scoreable
from income.platform import lineage
from income.platform import report_html as h
from income.platform.files import write_text_atomically
from income.platform.settings import offline_store_uri, predictions_uri, reports_uri
from income.platform.tracking import MODEL_NAME, configure
from income.training.model import kinds
from income.training.registry import CHAMPION
from tasks.decks import show
from tasks.execution import execution_id
from tasks.resources import DECK_FIELDS, LARGE, LONG, MEDIUM, spark_task, task


@dataclass(frozen=True)
class ScoringConfig:
    model_uri: str = f"models:/{MODEL_NAME}@{CHAMPION}"  # an alias or models:/<name>/<version>
    as_of: str = ""  # ISO-8601 (naive = UTC); empty: now
    population_uri: str = ""  # parquet/CSV with a user_id column; empty: every user of $INCOME_OFFLINE_STORE
    predictions_uri: str = ""  # empty: <offline store>/predictions
    # Probability at which predicted_label is 1; None: the model version's own decision threshold.
    threshold: float | None = None
    partitions: int = 0  # scoring partitions; 0: the join's (spark.sql.shuffle.partitions)


@dataclass(frozen=True)
class ScoringSummary:
    path: str  # the partition written: <predictions>/as_of=<label>
    predictions_root: str
    rows: int
    model_name: str
    model_version: str
    feature_service: str
    threshold: float  # predicted_label = probability >= threshold
    as_of: str  # ISO-8601, UTC
    positive_share: float
    population: str
    model_loads: int  # model loads across Python workers (once per worker)
    batches: int  # Arrow batches scored
    # Not scored (no prediction row): some view of the service has no row within its TTL as of
    # as_of (income.inference.scoreable); per view, how many of them lack it, and why in words.
    unscored_users: int
    unscored_by_view: dict[str, int]
    unscored_reason: str
    training_set_uri: str


class ScoredBatch(NamedTuple):
    summary: ScoringSummary
    # The scored users' point-in-time features and probability, for the drift report: parquet
    # written by Spark in Flyte's raw output location, handed over by URI.
    features: StructuredDataset


def _summary_html(s: ScoringSummary) -> str:
    rule = (
        "A user is scored only when every view of the feature service has a row within its TTL "
        f"as of {s.as_of}; the others get no prediction: {s.unscored_reason}."
    )
    return h.paragraph(rule) + h.key_values((k, h.code(v)) for k, v in asdict(s).items())


@spark_task
def score_batch(cfg: ScoringConfig, run_time: datetime | None = None) -> ScoredBatch:
    """Check the model's feature contract, then in one Spark plan: the population, its features as
    of T (income.features.spark_point_in_time), the scoreable users (income.inference.scoreable),
    their scores, written as parquet; swap in the partition.

    T is `run_time` (the schedule's kickoff time) when given, else cfg.as_of (empty: now).
    Nothing of the batch reaches the driver but counts.
    """
    spark = current_context().spark_session
    configure()
    model = resolve_model(cfg.model_uri)
    store = get_store()
    service = model.tags.get("feature_service") or FEATURE_SERVICE  # each model reads its own
    check_contract(model.name, model.version, model.tags, store, service)

    as_of = parse_as_of(run_time.isoformat() if run_time is not None else cfg.as_of)
    users, population = _population(spark, cfg, store)
    features = spark_features_as_of(spark, store, users, as_of, service)
    split = SparkScoreableSplit(features, service_views(store, service))

    predictions_root = cfg.predictions_uri or predictions_uri()
    threshold = cfg.threshold if cfg.threshold is not None else model.threshold
    features_uri = _raw_output_folder()
    written = score_and_write(
        spark,
        split.scored,
        model,
        service,
        predictions_root,
        as_of,
        threshold,
        cfg.partitions,
        features_uri=features_uri,
    )
    unscored = split.unscored()
    summary = ScoringSummary(
        path=written.uri,
        predictions_root=predictions_root,
        rows=written.rows,
        model_name=model.name,
        model_version=model.version,
        feature_service=service,
        threshold=threshold,
        as_of=as_of.isoformat(),
        positive_share=round(written.positive_share, 6),
        population=population,
        model_loads=written.model_loads,
        batches=written.batches,
        unscored_users=unscored.unscored_users,
        unscored_by_view=unscored.missing_by_view,
        unscored_reason=unscored.reason(),
        training_set_uri=model.tags.get("training_set_uri", ""),
    )
    current_context().logging.info("batch scoring: %s", asdict(summary))
    show("Batch scoring", _summary_html(summary))
    return ScoredBatch(summary=summary, features=StructuredDataset(uri=features_uri, file_format="parquet"))


def _population(spark, cfg: ScoringConfig, store):
    """The users to score (a Spark DataFrame of distinct user_ids) and how the summary names them.

    A population file is a list someone wrote: it is read and checked here (one id column,
    with messages naming the file), then handed to Spark.
    """
    if cfg.population_uri:
        return spark.createDataFrame(population_from_file(cfg.population_uri)), cfg.population_uri
    root = offline_store_uri()
    published_feature_set(store)  # the population and the features from one version
    return population_from_offline_store(spark, root), f"every user of {root}"


def _raw_output_folder() -> str:
    """A fresh folder in Flyte's raw output location (object storage on a cluster), as Flyte's
    own Spark encoder picks one: what the next task reads by URI."""
    ctx = FlyteContextManager.current_context()
    return ctx.file_access.join(ctx.file_access.raw_output_prefix, ctx.file_access.get_random_string())


def reference_snapshot(
    store, training_set_uri: str, batch_users: int = 0, service_name: str = FEATURE_SERVICE
) -> tuple[pd.DataFrame, pd.Timestamp, float]:
    """The drift reference: the scoreable population as it was at the training set's latest label,
    with the sample fraction (income.inference.drift_sample) it and a batch of `batch_users` share.

    Like with like: the batch is a snapshot of the population as of one moment, so the
    reference is one too. Each training row, taken at its own label time, would show every
    user just after a survey answer (window counts never 0, features never old), and the
    training users alone are the recently active ones when training uses a window; both
    snapshots read the same restated features (window features decay as time passes).
    """
    import pyarrow.dataset as ds

    training_set = pd.read_parquet(training_set_uri, columns=[TIMESTAMP])
    reference_time = pd.Timestamp(training_set[TIMESTAMP].max())
    demographic = current(offline_store_uri()).uri("demographic")
    known = ds.dataset(demographic, format="parquet", partitioning="hive").to_table(columns=[ENTITY_KEY])
    users = np.unique(known.column(ENTITY_KEY).to_numpy())
    fraction = sample_fraction(len(users), batch_users)
    users = pd.DataFrame({ENTITY_KEY: users[in_sample(users, fraction)]})
    snapshot = features_as_of(store, users, reference_time, service_name=service_name)
    return split_scoreable(snapshot, service_views(store, service_name)).scored, reference_time, fraction


@task(requests=MEDIUM, limits=LARGE, timeout=LONG, retries=2, enable_deck=True, deck_fields=DECK_FIELDS)
def report_drift(scoring: ScoringSummary, features: StructuredDataset) -> DriftSummary:
    """PSI / KS of the batch's features and predictions against the champion's training set; MLflow + Deck."""
    configure()
    if not scoring.training_set_uri:
        raise ValueError(
            f"model {scoring.model_name} v{scoring.model_version} has no training_set_uri tag: "
            "no reference to compare the batch with"
        )
    as_of = parse_as_of(scoring.as_of)
    label = as_of_label(as_of)
    store = get_store()
    reference, reference_time, fraction = reference_snapshot(
        store, scoring.training_set_uri, scoring.rows, scoring.feature_service
    )
    features_of_model = service_features(scoring.feature_service)
    categorical, numeric = kinds(features_of_model)
    model = mlflow.pyfunc.load_model(f"models:/{scoring.model_name}/{scoring.model_version}")
    # The batch's own scoring function (the same probabilities without MLflow's per-call
    # schema enforcement, which took half of this task's time at 1M users).
    reference_predictions = predictor(model)(reference[features_of_model])
    # The scored users' features and probability, read where score_batch's Spark wrote them.
    batch = read_sample(features.literal.uri if features.literal else features.uri, fraction)
    published = current(offline_store_uri())
    staleness = {
        "reference": census_age_days(published, reference[ENTITY_KEY], reference_time),
        "batch": census_age_days(published, batch[ENTITY_KEY], as_of),
    }
    result = drift_report(
        reference,
        batch,
        reference_predictions,
        batch["probability"].to_numpy(),
        numeric,
        categorical,
        title=f"Drift: the population as of {scoring.as_of} vs as of the training set",
        context={
            "model": f"{scoring.model_name} v{scoring.model_version}",
            "reference": (
                f"the scoreable population as of the training set's latest label, "
                f"{reference_time.isoformat()} ({len(reference):,} users; {scoring.training_set_uri})"
            ),
            "staleness (days since the latest census record; not drift)": "; ".join(
                f"{side}: median {np.nanmedian(ages):.0f}, p90 {np.nanpercentile(ages, 90):.0f}"
                for side, ages in staleness.items()
                if np.isfinite(ages).any()
            ),
            "batch": f"{scoring.path} ({scoring.rows:,} scored users, {scoring.population})",
            "sample": (
                "every user of both sides"
                if fraction >= 1
                else f"{len(batch):,} scored users and {len(reference):,} reference users: the same "
                f"{fraction:.2%} of user ids on both sides (income.inference.drift_sample)"
            ),
            "not scored": scoring.unscored_reason,
        },
    )
    page = h.page(f"Drift as of {label}", result.html)  # the project's stylesheet, as every report
    report = f"{reports_uri()}/drift-{label}.html"
    write_text_atomically(report, page)

    with mlflow.start_run(run_name=f"batch-scoring-{label}") as run:
        mlflow.set_tags(
            {
                "model_name": scoring.model_name,
                "model_version": scoring.model_version,
                "feature_service": scoring.feature_service,
                "predictions_path": scoring.path,
                "as_of": scoring.as_of,
                "drifted": str(result.drifted),
            }
        )
        mlflow.log_metrics(
            {
                "rows": scoring.rows,
                "unscored_users": scoring.unscored_users,
                "positive_share": scoring.positive_share,
                "prediction_psi": result.prediction.psi,
                **{f"psi.{d.feature}": d.psi for d in result.features},
                **{f"ks.{d.feature}": d.ks_statistic for d in result.features if d.ks_statistic is not None},
            }
        )
        mlflow.log_text(page, f"drift/drift-{label}.html")
    show("Drift", result.html)
    upstream = lineage.read_manifest(published.folder)
    lineage.record(
        "batch_scoring",
        flyte_execution_id=execution_id(),
        model_version=scoring.model_version,
        model_name=scoring.model_name,
        as_of=scoring.as_of,
        predictions=scoring.path,
        rows=scoring.rows,
        feature_run_id=upstream.get("id"),
        drift_mlflow_run_id=run.info.run_id,
        drifted=result.drifted,
        drifted_features=result.drifted_features,
    )
    return DriftSummary(
        drifted=result.drifted,
        psi={d.feature: round(d.psi, 6) for d in result.features},
        drifted_features=result.drifted_features,
        prediction_psi=round(result.prediction.psi, 6),
        report_path=report,
        mlflow_run_id=run.info.run_id,
        ks_statistic={
            d.feature: round(d.ks_statistic, 6) for d in result.features if d.ks_statistic is not None
        },
        reference_rows=len(reference),
        batch_rows=len(batch),
    )
