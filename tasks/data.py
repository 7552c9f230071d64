"""Raw records in, validated records and a quarantine out."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import NamedTuple

import pandas as pd
from flytekit import StructuredDataset, current_context, task
from flytekit.types.file import FlyteFile

from income.data.validation import ValidationSummary, validate_records
from income.platform import report_html as h
from income.platform.files import write_parquet_atomically
from income.platform.lineage import content_hash, file_hash
from income.platform.settings import offline_store_uri
from tasks.config import FeaturePipelineConfig
from tasks.decks import show
from tasks.resources import LARGE, LONG, MEDIUM, RAW_RECORDS_CACHE


class RawRecords(NamedTuple):
    records: StructuredDataset
    source: str
    sha256: str  # of the input file, or of the generated records


class CheckedRecords(NamedTuple):
    valid: StructuredDataset
    quarantine: StructuredDataset
    summary: ValidationSummary


@task(requests=MEDIUM, limits=LARGE, timeout=LONG, retries=2, cache=True, cache_version=RAW_RECORDS_CACHE)
def load_raw_records(raw_csv: FlyteFile | None, cfg: FeaturePipelineConfig) -> RawRecords:
    """Read an Adult-format CSV, or generate synthetic census records when none is given."""
    if raw_csv is not None:
        from income.data.adult import read_adult_csv

        path = raw_csv.download()
        records = read_adult_csv(path)
        return RawRecords(StructuredDataset(dataframe=records), str(raw_csv.path), file_hash(path))
    from income.data.synthetic import generate_records

    records = generate_records(
        cfg.users, seed=cfg.seed, start=cfg.start, end=cfg.end, invalid_share=cfg.invalid_share
    )
    source = f"synthetic(users={cfg.users}, seed={cfg.seed})"
    return RawRecords(StructuredDataset(dataframe=records), source, content_hash(records))


def _slug(source: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", source.rsplit("/", 1)[-1]).strip("_")


@task(requests=MEDIUM, limits=LARGE, timeout=LONG, retries=1, enable_deck=True)
def validate_raw_records(
    records: StructuredDataset, source: str, cfg: FeaturePipelineConfig
) -> CheckedRecords:
    """Validate against the raw-record schema; invalid rows go to the quarantine table with a reason."""
    result = validate_records(
        records.open(pd.DataFrame).all(), source=source, max_invalid_share=cfg.max_invalid_share
    )
    root = offline_store_uri()
    quarantine_uri = f"{root.rstrip('/')}/quarantine/{_slug(source)}.parquet"
    write_parquet_atomically(result.quarantine, quarantine_uri)
    show(
        "Validation",
        result.summary.to_html() + h.paragraph("Quarantine table: ", h.code(quarantine_uri)),
    )
    current_context().logging.info("validation: %s", asdict(result.summary))
    return CheckedRecords(
        valid=StructuredDataset(dataframe=result.valid),
        quarantine=StructuredDataset(dataframe=result.quarantine),
        summary=result.summary,
    )
