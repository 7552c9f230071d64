"""Whole files on any URI pyarrow reaches (a local path, s3://, ...): written atomically, read back."""

from __future__ import annotations

import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs


def filesystem_and_path(uri: str) -> tuple[pafs.FileSystem, str]:
    return pafs.FileSystem.from_uri(uri if "://" in uri else f"file://{uri}")


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
