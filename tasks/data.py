"""Ingest one batch: a file or a synthetic day, validated, appended to the raw history (bronze)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pandas as pd
from flytekit import current_context
from flytekit.types.file import FlyteFile

from income.data import batches
from income.data.adult import read_batch_file
from income.data.erasure import drop_erased
from income.data.schema import ENTITY_KEY
from income.data.validation import ValidationResult, ValidationSummary, is_labels_only
from income.platform import report_html as h
from income.platform.lineage import content_hash
from income.platform.settings import offline_store_uri
from tasks.config import FeaturePipelineConfig
from tasks.decks import show
from tasks.resources import DECK_FIELDS, LARGE, LONG, MEDIUM, task


@dataclass(frozen=True)
class IngestedBatch:
    """What one run's input became in the raw history."""

    run_time: str  # ISO UTC: the run's moment (the schedule's kickoff time)
    source: str
    sha256: str  # of the input file, or of the generated records
    batch_ids: list[str] = field(default_factory=list)  # bronze batches of this input
    new_batch_ids: list[str] = field(default_factory=list)  # those this run wrote (empty: a re-run)
    erased_rows: int = 0  # rows about forgotten users, dropped before validation (income.data.erasure)
    validations: list[ValidationSummary] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(v.rows for v in self.validations)

    @property
    def quarantined_rows(self) -> int:
        return sum(v.quarantined_rows for v in self.validations)


def run_time_or_now(run_time: datetime | None) -> datetime:
    """The run's moment in UTC: the scheduled kickoff time, or now for a run by hand."""
    if run_time is None:
        return datetime.now(UTC)
    return run_time.replace(tzinfo=UTC) if run_time.tzinfo is None else run_time.astimezone(UTC)


def _validate(root: str, kind: str, frame: pd.DataFrame, source: str, now, cfg) -> ValidationResult:
    from income.data.validation import validate_labels, validate_records

    users = pd.to_numeric(frame[ENTITY_KEY], errors="coerce").dropna().unique()
    if kind == batches.RECORDS:
        history = batches.read_bronze(root, batches.RECORDS, users=users)
        return validate_records(
            frame, source=source, max_invalid_share=cfg.max_invalid_share, now=now, history=history
        )
    # Earlier labels: inline in records, and from labels-only batches.
    return validate_labels(
        frame,
        source=source,
        max_invalid_share=cfg.max_invalid_share,
        now=now,
        history_labels=batches.read_labels(root, users=users),
    )


def _ingest(
    root: str, kind: str, frame: pd.DataFrame, sha256: str, source: str, now: datetime, cfg
) -> tuple[str, bool, ValidationSummary | None, int]:
    """Validate and append one batch; (batch id, newly written, summary or None for a re-run, rows erased)."""
    batch_id = batches.batch_id(sha256)
    if batches.find_batch(root, batch_id) is not None:
        return batch_id, False, None, 0
    frame, erased = drop_erased(root, frame)
    result = _validate(root, kind, frame, source, pd.Timestamp(now), cfg)
    _, written = batches.append_batch(
        root, kind, result.valid, now.date(), batch_id, quarantine=result.quarantine
    )
    return batch_id, written, result.summary, erased


def _inputs(
    batch_file: FlyteFile | None, now: datetime, root: str, cfg
) -> list[tuple[str, pd.DataFrame, str, str]]:
    """(kind, raw frame, sha256, source) per batch of this run's input."""
    if batch_file is not None:
        path = batch_file.download()
        return [_file_input(path, str(batch_file.path))]
    day = (pd.Timestamp(now).floor("D") - pd.Timedelta(days=1)).date()
    if cfg.landing_folder:
        return [_file_input(uri, uri) for uri in landed_files(cfg.landing_folder, day)]
    world = cfg.world()
    described = f"users={world.users}, seed={world.seed}"
    if not batches.list_batches(root, batches.RECORDS):
        records = world.backfill(pd.Timestamp(now))
        source = f"synthetic backfill until {now.date()} ({described})"
        return [(batches.RECORDS, records, content_hash(records), source)]
    daily = world.day(day)
    source = f"synthetic day {day} ({described})"
    return [
        (batches.RECORDS, daily.records, content_hash(daily.records), source),
        (batches.LABELS, daily.labels, content_hash(daily.labels), f"labels of {source}"),
    ]


def _file_input(uri: str, source: str) -> tuple[str, pd.DataFrame, str, str]:
    frame = read_batch_file(uri)
    kind = batches.LABELS if is_labels_only(frame.columns) else batches.RECORDS
    return kind, frame, batches.file_sha256(uri), source


def landed_files(landing_folder: str, day) -> list[str]:
    """The files of one day in a landing folder: names starting with the date (2026-11-25*.csv|parquet)."""
    from pyarrow import fs as pafs

    from income.platform.files import filesystem_and_path

    filesystem, path = filesystem_and_path(landing_folder)
    found = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    prefix = landing_folder[: len(landing_folder) - len(path)] if landing_folder.endswith(path) else ""
    return sorted(
        prefix + f.path
        for f in found
        if f.type == pafs.FileType.File
        and f.base_name.startswith(day.isoformat())
        and f.base_name.endswith((".csv", ".csv.gz", ".parquet", ".pq"))
    )


def _summary_html(ingested: IngestedBatch) -> str:
    rows = [
        (batch_id, "new" if batch_id in ingested.new_batch_ids else "already ingested: nothing written")
        for batch_id in ingested.batch_ids
    ]
    validations = "".join(v.to_html() for v in ingested.validations)
    return (
        h.paragraph("Run time ", h.code(ingested.run_time), "; input ", h.code(ingested.source))
        + h.table(["bronze batch", "outcome"], rows)
        + validations
    )


@task(requests=MEDIUM, limits=LARGE, timeout=LONG, retries=2, enable_deck=True, deck_fields=DECK_FIELDS)
def ingest_batch(
    run_time: datetime | None, batch_file: FlyteFile | None, cfg: FeaturePipelineConfig
) -> IngestedBatch:
    """Append this run's input to the raw history; the same input twice writes nothing.

    The input is `batch_file` (CSV or parquet: Adult columns plus user_id and
    event_timestamp, `class` optional; or a labels-only file: user_id, event_timestamp,
    class), else the files of the day before `run_time` in cfg.landing_folder, else that
    synthetic day (the backfill up to it on the first run). Invalid rows, rows from the
    future and rows that contradict earlier batches go to the quarantine with their reason;
    rows about forgotten users are dropped (income.data.erasure).
    """
    now = run_time_or_now(run_time)
    root = offline_store_uri()
    inputs = _inputs(batch_file, now, root, cfg)
    ids, new, summaries, erased = [], [], [], 0
    for kind, frame, sha256, source in inputs:
        batch_id, written, summary, dropped = _ingest(root, kind, frame, sha256, source, now, cfg)
        erased += dropped
        ids.append(batch_id)
        if written:
            new.append(batch_id)
        if summary is not None:
            summaries.append(summary)
    ingested = IngestedBatch(
        run_time=now.isoformat(),
        source=inputs[0][3] if inputs else f"nothing landed in {cfg.landing_folder}",
        sha256=inputs[0][2] if inputs else "",
        batch_ids=ids,
        new_batch_ids=new,
        validations=summaries,
        erased_rows=erased,
    )
    show("Ingestion", _summary_html(ingested))
    current_context().logging.info("ingestion: %s", asdict(ingested))
    return ingested
