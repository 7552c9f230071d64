"""Feature tasks: validated records -> feature and label tables (Spark), published together, Feast, Valkey."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flytekit import current_context
from pyspark.sql import functions as F

from income.data import batches
from income.data.schema import ARRIVED_AT, ENTITY_KEY, LABEL_TABLE, PARTITION_COLUMN, RAW_COLUMNS, TIMESTAMP
from income.data.validation import LABEL_ONLY_COLUMNS
from income.features.feature_store import FEATURE_SERVICE, apply_definitions, get_store
from income.features.materialize import (
    INCREMENTAL,
    materialize,
    materialized_state,
    plan_materialization,
)
from income.features.offline_store import (
    collect_garbage,
    current,
    current_or_none,
    new_version,
    publish,
    seal,
    version_uri,
    write_table,
)
from income.platform import lineage, lineage_graph
from income.platform import report_html as h
from income.platform.settings import ValkeySettings, offline_store_uri
from spark_jobs import build_feature_tables, update_feature_tables
from spark_jobs.updates import event_month
from tasks.config import FeaturePipelineConfig
from tasks.data import IngestedBatch
from tasks.decks import show
from tasks.execution import execution_id
from tasks.resources import DECK_FIELDS, LONG, MEDIUM, SMALL, VALKEY_SECRET, spark_task, task


@dataclass(frozen=True)
class FeatureTables:
    offline_store: str
    version: str  # sealed, not yet published: publish_features makes it visible
    uris: dict[str, str]
    rows: dict[str, int]
    as_of: str = ""  # ISO UTC: the tables are true up to this time
    previous: str = ""  # the version this one was built on ("" for a full build)
    unchanged: bool = False  # nothing new since the published version: `version` is that one
    changed_users: int = -1  # users whose rows changed (-1: a full build, every user)


def _tables_html(tables: FeatureTables) -> str:
    if tables.unchanged:
        return h.paragraph(
            "Nothing new since the published version ", h.code(tables.version), ": no version written."
        )
    how = (
        f"built on {tables.previous}, {tables.changed_users:,} users changed"
        if tables.previous
        else "a full build from the raw history"
    )
    rows = [(name, f"{tables.rows[name]:,}", h.code(uri)) for name, uri in tables.uris.items()]
    return h.paragraph(
        "Version ", h.code(tables.version), f" (sealed; true as of {tables.as_of}; {how})"
    ) + h.table(["table", "rows", "location"], rows)


def _bronze(spark, uris: list[str]):
    """The bronze files as one DataFrame, each row with its batch's ingest date as `arrived_at`."""
    ingest_date = F.regexp_extract(F.input_file_name(), r"ingest_date=([0-9-]+)", 1)
    return spark.read.parquet(*uris).withColumn(ARRIVED_AT, F.to_timestamp(ingest_date, "yyyy-MM-dd"))


def _as_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _write_update(spark, root: str, version: str, previous, new: list, records, as_of: datetime):
    """The incremental path: `previous` cloned, the partitions the `new` batches change rewritten.

    Returns (tables written, URI of the changed users, how many changed).
    """
    record_batches = [b for b in new if b.kind == batches.RECORDS]
    label_batches = [b for b in new if b.kind == batches.LABELS]
    # The new batches from their own files: filtering every row on a column derived from
    # the file name would scan the whole history once more per use.
    fresh = (
        _bronze(spark, [b.uri for b in record_batches]).select(*RAW_COLUMNS, ARRIVED_AT)
        if record_batches
        else records.limit(0)
    )
    fresh_labels = (
        _bronze(spark, [b.uri for b in label_batches]).select(*LABEL_ONLY_COLUMNS, ARRIVED_AT)
        if label_batches
        else None
    )

    def read_previous(name):
        frame = spark.read.parquet(previous.uri(name))
        if PARTITION_COLUMN not in frame.columns:  # an empty table is one file, unpartitioned
            frame = frame.withColumn(PARTITION_COLUMN, event_month(F.col(TIMESTAMP)))
        return frame

    update = update_feature_tables(
        records,
        fresh,
        {name: read_previous(name) for name in previous.tables},
        _as_utc(previous.as_of),
        as_of,
        fresh_labels,
    )
    written = [
        # An empty previous table has no partitions to keep.
        write_table(
            frame, root, version, name, clone_of=previous.uri(name) if previous.tables[name].rows else None
        )
        for name, frame in update.partitions.items()
    ]
    changed_uri = f"{version_uri(root, version)}/changed_users"
    update.changed_users.coalesce(1).write.parquet(changed_uri)
    return written, changed_uri, spark.read.parquet(changed_uri).count()


@spark_task
def build_features(ingested: IngestedBatch, cfg: FeaturePipelineConfig) -> FeatureTables:
    """Compute the feature and label tables on Spark (spark_jobs/) into a new version of the offline store.

    Incremental by default: the new version starts as a clone of the published one and
    only the month partitions the new batches (and the passing of time) changed are
    rewritten. A full build reads the whole raw history; both give the same tables. Every
    attempt writes its own version folder, so a retry never meets a half-written table;
    readers see none of it until publish_features publishes the sealed version.
    """
    spark = current_context().spark_session
    root = offline_store_uri()
    previous = current_or_none(root)
    record_batches = batches.list_batches(root, batches.RECORDS)
    label_batches = batches.list_batches(root, batches.LABELS)
    included = [b.batch_id for b in record_batches + label_batches]
    run_time = _as_utc(ingested.run_time)
    incremental = previous is not None and previous.as_of is not None and not cfg.full_rebuild
    as_of = max(run_time, _as_utc(previous.as_of)) if incremental else run_time
    new = [b for b in record_batches + label_batches if not incremental or b.batch_id not in previous.batches]
    if incremental and not new and as_of == _as_utc(previous.as_of):
        tables = FeatureTables(
            offline_store=root,
            version=previous.version,
            uris={name: t.uri for name, t in previous.tables.items()},
            rows={name: t.rows for name, t in previous.tables.items()},
            as_of=previous.as_of,
            previous=previous.version,
            unchanged=True,
            changed_users=0,
        )
        show("Feature tables", _tables_html(tables))
        return tables
    # Every table reads the raw history: read it once.
    records = _bronze(spark, [b.uri for b in record_batches]).select(*RAW_COLUMNS, ARRIVED_AT).cache()
    version = new_version()
    if incremental:
        written, changed_uri, changed = _write_update(spark, root, version, previous, new, records, as_of)
    else:
        label_rows = (
            _bronze(spark, [b.uri for b in label_batches]).select(*LABEL_ONLY_COLUMNS, ARRIVED_AT)
            if label_batches
            else None
        )
        built = build_feature_tables(records, as_of, label_rows)
        written = [write_table(table, root, version, name) for name, table in built.items()]
        changed_uri, changed = None, -1
    records.unpersist()
    sealed = seal(
        root,
        version,
        written,
        as_of=as_of.isoformat(),
        batches=tuple(included),
        previous=previous.version if incremental else None,
        changed_users=changed_uri,
    )
    tables = FeatureTables(
        offline_store=root,
        version=sealed.version,
        uris={t.name: t.uri for t in written},
        rows={t.name: t.rows for t in written},
        as_of=as_of.isoformat(),
        previous=previous.version if incremental else "",
        changed_users=changed,
    )
    show("Feature tables", _tables_html(tables))
    return tables


# Unpublished versions younger than this may still be written by a running feature task.
ABANDONED_AFTER = 3 * LONG


@dataclass(frozen=True)
class PublishedFeatures:
    feature_service: str
    definitions_version: str
    online_users: int
    window_start: str
    window_end: str
    materialize_seconds: float
    tables: FeatureTables


def _changed_users(feature_set) -> list[int] | None:
    """The users whose rows changed in `feature_set` since its previous version (None: all)."""
    if feature_set.changed_users is None:
        return None
    import pyarrow.dataset as ds

    table = ds.dataset(feature_set.changed_users, format="parquet").to_table(columns=[ENTITY_KEY])
    return table.column(ENTITY_KEY).to_pylist()


@task(
    requests=SMALL,
    limits=MEDIUM,
    timeout=LONG,
    retries=2,
    enable_deck=True,
    deck_fields=DECK_FIELDS,
    secret_requests=[VALKEY_SECRET],
)
def publish_features(
    tables: FeatureTables, ingested: IngestedBatch, cfg: FeaturePipelineConfig
) -> PublishedFeatures:
    """Publish the run's tables together, `feast apply` them, bring Valkey up to date, record lineage.

    The lineage manifest goes into the version before it is published; publishing is one
    atomic replace, after which `feast apply` moves every Feast source to the new version.
    Valkey gets only the users whose values changed when it holds the previous version
    (else every user); a run with nothing new publishes nothing.
    """
    root = tables.offline_store
    entry = lineage.record(
        "feature_pipeline",
        flyte_execution_id=execution_id(),
        raw={
            "source": ingested.source,
            "sha256": ingested.sha256,
            "rows": ingested.rows,
            "batches": ingested.batch_ids,
            "new_batches": ingested.new_batch_ids,
        },
        quarantined_rows=ingested.quarantined_rows,
        offline_store=root,
        feature_set_version=tables.version,
        previous_feature_set_version=tables.previous,
        as_of=tables.as_of,
        tables={name: {"uri": uri, "rows": tables.rows[name]} for name, uri in tables.uris.items()},
        feature_service=FEATURE_SERVICE,
        label_table=LABEL_TABLE,
    )
    if not tables.unchanged:
        lineage.write_manifest(version_uri(root, tables.version), entry)
    published = publish(root, tables.version) if not tables.unchanged else current(root)

    valkey = ValkeySettings.from_env()
    store = get_store(valkey)
    version = apply_definitions(store)
    client = valkey.client()
    as_of = datetime.fromisoformat(published.as_of)
    online = materialized_state(client, store.config.project, FEATURE_SERVICE)
    if online is not None and online.get("feature_set_version") == published.version:
        report = None  # Valkey already holds this version
    else:
        # Only the changed users when Valkey holds the version this one was built on.
        plan = plan_materialization(client, store.config.project, FEATURE_SERVICE, published.previous)
        users = _changed_users(published) if plan == INCREMENTAL else None
        report = materialize(store, client, FEATURE_SERVICE, as_of, users, published.version)
    removed = collect_garbage(root, keep=cfg.keep_versions, abandoned_after=ABANDONED_AFTER)
    online_text = (
        "Valkey already held this version: nothing written."
        if report is None
        else f"{report.mode} materialization: {report.users:,} users written and {report.deleted:,} "
        f"removed in Valkey {valkey.host}:{valkey.port} in {report.seconds} s "
        f"(window {report.start} → {report.end})."
    )
    show(
        "Online store",
        h.paragraph(
            "Feature set ",
            h.code(published.version),
            " published; feature service ",
            h.bold(FEATURE_SERVICE),
            f", definitions {version}. {online_text} Old versions removed: {len(removed)}.",
        ),
    )
    graph = lineage_graph.feature_run_graph(entry, definitions_version=version)
    show("Lineage", lineage_graph.section(f"Lineage of feature set {tables.version}", graph, entry))
    return PublishedFeatures(
        feature_service=FEATURE_SERVICE,
        definitions_version=version,
        online_users=report.users if report else 0,
        window_start=report.start if report else "",
        window_end=report.end if report else "",
        materialize_seconds=report.seconds if report else 0.0,
        tables=tables,
    )
