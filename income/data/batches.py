"""The bronze layer: an append-only raw history of validated batches, one parquet file per batch.

Layout under an offline-store root URI (a local path or anything pyarrow reaches, s3://...):

    raw/records/ingest_date=YYYY-MM-DD/batch=<batch_id>/part-0.parquet   validated records (RAW_COLUMNS)
    raw/labels/ingest_date=YYYY-MM-DD/batch=<batch_id>/part-0.parquet    labels-only rows (LABEL_ONLY_COLUMNS)
    quarantine/ingest_date=YYYY-MM-DD/batch=<batch_id>.parquet          rejected rows with their reasons

A batch id is the first 16 hex digits of the sha256 of the input's content (the file's bytes,
or `income.platform.lineage.content_hash` of a generated frame), so the same input always has
the same id. A batch is ingested iff its `part-0.parquet` exists: the file is written
atomically (after the batch's quarantine file), and appending an id that exists under any
ingest date, of either kind, writes nothing. An empty batch is written too (an empty file with
the full schema), so it is recorded as ingested like any other.

Column types on disk are fixed per kind (`RECORDS_SCHEMA`, `LABELS_SCHEMA`: int64 numbers,
timestamp[us, UTC], string text) whatever the frame held, so a batch whose text column is all
missing still reads back as string, and Spark reads every file with one schema. The data
files carry no partition columns: `read_bronze` adds `ingest_date` (datetime.date) and
`batch_id` from the folder names; Spark jobs read `bronze_glob(root, kind)`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from income.data.schema import (
    ENTITY_KEY,
    LABEL_SOURCE,
    NUMERIC_ATTRIBUTES,
    RAW_COLUMNS,
    TIMESTAMP,
)
from income.data.validation import LABEL_ONLY_COLUMNS
from income.platform.files import filesystem_and_path, write_parquet_atomically

RECORDS = "records"
LABELS = "labels"
KINDS = (RECORDS, LABELS)
DATA_FILE = "part-0.parquet"
BATCH_ID_LENGTH = 16

_TIME = pa.timestamp("us", tz="UTC")
RECORDS_SCHEMA = pa.schema(
    [
        (
            column,
            pa.int64()
            if column in (ENTITY_KEY, *NUMERIC_ATTRIBUTES)
            else _TIME
            if column == TIMESTAMP
            else pa.string(),
        )
        for column in RAW_COLUMNS
    ]
)
LABELS_SCHEMA = pa.schema([(ENTITY_KEY, pa.int64()), (TIMESTAMP, _TIME), (LABEL_SOURCE, pa.string())])
SCHEMAS = {RECORDS: RECORDS_SCHEMA, LABELS: LABELS_SCHEMA}
_FOLDER = re.compile(r"ingest_date=(\d{4}-\d{2}-\d{2})/batch=([0-9a-f]+)/" + re.escape(DATA_FILE) + "$")
_PARTITIONING = ds.partitioning(
    pa.schema([("ingest_date", pa.date32()), ("batch", pa.string())]), flavor="hive"
)


@dataclass(frozen=True)
class Batch:
    """One ingested batch: its kind (records or labels), when it was ingested, its id, its file."""

    kind: str
    ingest_date: dt.date
    batch_id: str
    uri: str
    rows: int


def batch_id(content_sha256: str) -> str:
    """The batch id of an input whose content has this sha256 (hex): its first 16 hex digits."""
    if not re.fullmatch(r"[0-9a-f]{64}", content_sha256):
        raise ValueError(f"not a sha256 hex digest: {content_sha256!r}")
    return content_sha256[:BATCH_ID_LENGTH]


def file_sha256(uri: str) -> str:
    """sha256 (hex) of a file's bytes, on any filesystem pyarrow reaches."""
    filesystem, path = filesystem_and_path(uri)
    digest = hashlib.sha256()
    with filesystem.open_input_stream(path) as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _root(root: str) -> str:
    return root.rstrip("/")


def _uri_like(root: str, path: str) -> str:
    """A filesystem path found under `root` as a URI of the same scheme as `root`."""
    return f"{root.split('://', 1)[0]}://{path}" if "://" in root else path


def _require_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown batch kind {kind!r}; expected one of {', '.join(KINDS)}")


def kind_uri(root: str, kind: str) -> str:
    """The folder holding every batch of one kind (Spark's basePath for `bronze_glob`)."""
    _require_kind(kind)
    return f"{_root(root)}/raw/{kind}"


def batch_uri(root: str, kind: str, ingest_date: dt.date, batch_id: str) -> str:
    """The data file of one batch."""
    return f"{kind_uri(root, kind)}/ingest_date={ingest_date.isoformat()}/batch={batch_id}/{DATA_FILE}"


def bronze_glob(root: str, kind: str) -> str:
    """A glob matching the data file of every batch of one kind (and no temporary file)."""
    return f"{kind_uri(root, kind)}/ingest_date=*/batch=*/{DATA_FILE}"


def quarantine_uri(root: str, ingest_date: dt.date, batch_id: str) -> str:
    """The quarantine file of one batch: its rejected rows and their reasons."""
    return f"{_root(root)}/quarantine/ingest_date={ingest_date.isoformat()}/batch={batch_id}.parquet"


def _files_under(uri: str) -> list[tuple[pafs.FileSystem, str]]:
    filesystem, path = filesystem_and_path(uri)
    selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
    infos = filesystem.get_file_info(selector)
    return [(filesystem, info.path) for info in infos if info.type == pafs.FileType.File]


def list_batches(root: str, kind: str | None = None) -> list[Batch]:
    """Every ingested batch (of one kind, or both), sorted by ingest date, then id."""
    found = []
    for each in [kind] if kind is not None else KINDS:
        for filesystem, path in _files_under(kind_uri(root, each)):
            match = _FOLDER.search(path)
            if match is None:
                continue
            rows = pq.read_metadata(filesystem.open_input_file(path)).num_rows
            date, identity = dt.date.fromisoformat(match[1]), match[2]
            found.append(Batch(each, date, identity, _uri_like(root, path), rows))
    return sorted(found, key=lambda batch: (batch.ingest_date, batch.batch_id, batch.kind))


def find_batch(root: str, batch_id: str) -> Batch | None:
    """The ingested batch with this id (any ingest date, either kind), or None."""
    return next((batch for batch in list_batches(root) if batch.batch_id == batch_id), None)


def _on_disk(kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame's columns of this kind, typed so that parquet gets `SCHEMAS[kind]` exactly."""
    schema = SCHEMAS[kind]
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise ValueError(f"{kind} batch lacks columns: {', '.join(missing)}")
    table = pa.Table.from_pandas(frame[schema.names], preserve_index=False).cast(schema)
    # pandas "string" columns map back to parquet strings even when all values are missing.
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype()}.get)


def append_batch(
    root: str,
    kind: str,
    frame: pd.DataFrame,
    ingest_date: dt.date,
    batch_id: str,
    quarantine: pd.DataFrame | None = None,
) -> tuple[Batch, bool]:
    """Ingest a validated batch; (the batch, True) when written, (the existing one, False) when
    the id was ingested before, in which case nothing is written.

    The quarantine rows, when there are any, are written first: the data file comes last
    because its existence marks the batch as ingested.
    """
    _require_kind(kind)
    existing = find_batch(root, batch_id)
    if existing is not None:
        return existing, False
    stored = _on_disk(kind, frame)
    if quarantine is not None and len(quarantine):
        write_parquet_atomically(quarantine, quarantine_uri(root, ingest_date, batch_id))
    uri = batch_uri(root, kind, ingest_date, batch_id)
    write_parquet_atomically(stored, uri)
    return Batch(kind, ingest_date, batch_id, uri, len(stored)), True


def _user_filter(users) -> ds.Expression | None:
    if users is None:
        return None
    return ds.field(ENTITY_KEY).isin(pa.array(pd.unique(pd.Series(users, dtype="int64")), pa.int64()))


def read_bronze(root: str, kind: str, users=None) -> pd.DataFrame:
    """Every row of every batch of one kind (or only the given users'), in ingest order.

    Columns: the kind's columns typed as validation outputs them (int64, datetime64[us, UTC],
    object text with None for missing), then `ingest_date` (datetime.date objects) and
    `batch_id` (str). Rows are ordered by ingest date, batch id, then position in the batch.
    """
    _require_kind(kind)
    schema = SCHEMAS[kind]
    filesystem, path = filesystem_and_path(kind_uri(root, kind))
    files = [p for _, p in _files_under(kind_uri(root, kind)) if _FOLDER.search(p)]
    dataset = ds.dataset(
        files,
        schema=pa.unify_schemas([schema, _PARTITIONING.schema]),
        format="parquet",
        filesystem=filesystem,
        partitioning=_PARTITIONING,
        partition_base_dir=path,
    )
    # Arrow sorts stably and scans in file order: rows of a batch keep their order.
    table = dataset.to_table(filter=_user_filter(users)).sort_by(
        [("ingest_date", "ascending"), ("batch", "ascending")]
    )
    frame = table.rename_columns([*schema.names, "ingest_date", "batch_id"]).to_pandas()
    for column in schema.names:
        if pa.types.is_string(schema.field(column).type):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    frame[TIMESTAMP] = frame[TIMESTAMP].dt.as_unit("us")
    return frame


def read_labels(root: str, users=None) -> pd.DataFrame:
    """Every label the bronze layer holds: inline in records (income present) and labels-only.

    Columns LABEL_ONLY_COLUMNS plus `ingest_date` and `batch_id` of the batch that brought the
    label, in ingest order; the history `validate_labels` checks new labels against.
    """
    inline = read_bronze(root, RECORDS, users)
    inline = inline.loc[inline[LABEL_SOURCE].notna(), [*LABEL_ONLY_COLUMNS, "ingest_date", "batch_id"]]
    separate = read_bronze(root, LABELS, users)
    both = pd.concat([inline, separate], ignore_index=True)
    return both.sort_values(["ingest_date", "batch_id"], kind="stable").reset_index(drop=True)


def _user_ids_of(column: pa.ChunkedArray) -> pa.Array:
    """A user id column as float64 (quarantine files hold ids as text: "17", "17.0", "x7")."""
    if pa.types.is_integer(column.type):
        return column.cast(pa.float64())
    as_number = pd.to_numeric(pd.Series(column.to_pylist(), dtype=object), errors="coerce")
    return pa.array(as_number, pa.float64(), from_pandas=True)


def _quarantine_files(root: str) -> list[tuple[pafs.FileSystem, str]]:
    folder = f"{_root(root)}/quarantine"
    found = _files_under(folder)
    below = len(filesystem_and_path(folder)[1])  # the root itself may sit in a hidden folder
    return [(fs, path) for fs, path in found if path.endswith(".parquet") and "/." not in path[below:]]


def remove_users(root: str, user_ids) -> int:
    """Rewrite every bronze and quarantine file holding any of the users without them.

    Each file is replaced atomically; files without those users are left untouched. Returns
    the number of rows removed. The GDPR path of `forget_users`.
    """
    doomed = pa.array(pd.unique(pd.Series(list(user_ids), dtype="int64")), pa.int64()).cast(pa.float64())
    files = [(kind, fs, path) for kind in KINDS for fs, path in _files_under(kind_uri(root, kind))]
    files = [entry for entry in files if _FOLDER.search(entry[2])]
    files += [(None, fs, path) for fs, path in _quarantine_files(root)]
    removed = 0
    for kind, filesystem, path in files:
        table = pq.read_table(path, filesystem=filesystem)
        if ENTITY_KEY not in table.column_names:
            continue
        hit = pc.fill_null(pc.is_in(_user_ids_of(table[ENTITY_KEY]), value_set=doomed), False)
        hits = pc.sum(hit).as_py() or 0
        if hits:
            kept = table.filter(pc.invert(hit)).to_pandas()
            write_parquet_atomically(kept if kind is None else _on_disk(kind, kept), _uri_like(root, path))
            removed += hits
    return removed
