"""Whole files on any URI pyarrow reaches (a local path, s3://, ...): written atomically, read back.

Object storage is reached with the standard AWS settings, read by Arrow itself: credentials
from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the pod's role), and AWS_ENDPOINT_URL for
an S3-compatible server (MinIO, Ceph, moto in the tests). boto3 (MLflow's artifacts) and
Spark's s3a (income.platform.spark) read the same variables, so one profile serves all three.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs


def is_remote(uri: str) -> bool:
    """Whether `uri` names object storage (s3://, gs://, ...) rather than the local disk."""
    return "://" in uri and not uri.startswith("file://")


def filesystem_and_path(uri: str) -> tuple[pafs.FileSystem, str]:
    """The file system and the path on it; a local path may be relative (to the working directory)."""
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), os.path.abspath(uri)


def _write_atomically(uri: str, write) -> None:
    """Write through `write(stream)` to a temporary name beside `uri`, then move it into place."""
    filesystem, path = filesystem_and_path(uri)
    parent = path.rsplit("/", 1)[0]
    filesystem.create_dir(parent, recursive=True)
    temporary = f"{parent}/.{uuid.uuid4().hex}.tmp"
    with filesystem.open_output_stream(temporary) as out:
        write(out)
    filesystem.move(temporary, path)


def write_text_atomically(uri: str, text: str) -> None:
    _write_atomically(uri, lambda out: out.write(text.encode()))


def read_text(uri: str) -> str | None:
    """The file's text, or None when it does not exist."""
    filesystem, path = filesystem_and_path(uri)
    try:
        with filesystem.open_input_stream(path) as stream:
            return stream.read().decode()
    except FileNotFoundError:
        return None


def write_parquet_atomically(df: pd.DataFrame, uri: str) -> None:
    """Write a pandas table as one parquet object (microsecond timestamps), atomically."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    _write_atomically(
        uri, lambda out: pq.write_table(table, out, coerce_timestamps="us", allow_truncated_timestamps=True)
    )


def list_files(uri: str, suffix: str = "") -> list[tuple[str, datetime]]:
    """(URI, last modified) of every file under `uri` (a folder or one file) whose name ends
    with `suffix`, sorted by URI; hidden and staging files excluded, [] when nothing is there."""
    filesystem, path = filesystem_and_path(uri)
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.File:
        return [(uri, info.mtime)]
    if info.type == pafs.FileType.NotFound:
        return []
    found = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    prefix = uri[: len(uri) - len(path)] if uri.endswith(path) else ""
    # Hidden (temporary) files and folders are skipped below `uri` only: `uri` itself may
    # well sit in a hidden folder (.runtime/).
    return sorted(
        (prefix + f.path, f.mtime)
        for f in found
        if f.type == pafs.FileType.File and f.path.endswith(suffix) and "/." not in f.path[len(path) :]
    )


def parquet_files(uri: str) -> list[str]:
    """Every parquet file under `uri` (a folder or one file), hidden and staging files excluded."""
    return [file for file, _ in list_files(uri, ".parquet")]


def remove_rows(uri: str, column: str, values) -> int:
    """Rewrite every parquet file under `uri` whose `column` holds any of `values`, without those rows.

    Each file is replaced atomically and keeps its Arrow schema; files without a match, or
    without the column, are not touched. Returns the number of rows removed.
    """
    import pyarrow.compute as pc

    removed = 0
    value_set = pa.array(list(values))
    for file_uri in parquet_files(uri):
        filesystem, path = filesystem_and_path(file_uri)
        table = pq.read_table(path, filesystem=filesystem, partitioning=None)
        if column not in table.column_names:
            continue
        hit = pc.fill_null(pc.is_in(table[column], value_set=value_set.cast(table[column].type)), False)
        hits = pc.sum(hit).as_py() or 0
        if hits:
            kept = table.filter(pc.invert(hit))
            _write_atomically(file_uri, lambda out, kept=kept: pq.write_table(kept, out))
            removed += hits
    return removed
