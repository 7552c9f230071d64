"""Atomic, idempotent writes to the offline store: Spark feature tables and pandas tables.

A table is written in full to a staging folder next to it, then swapped in by two
renames (old -> trash, staging -> table). A crashed run leaves at most a staging
folder (ignored by readers, removed by the next run), never a half-written table;
re-running on the same input replaces the table with the same rows.

The Hadoop FileSystem API does the renames, so the same code serves a local folder,
HDFS (atomic renames) and object storage (s3a://: renames are copies there, so use a
table format such as Delta or Iceberg when readers run during writes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from income.schema import TIMESTAMP

PARTITION_COLUMN = "event_year"
STAGING = "_staging"


@dataclass(frozen=True)
class TableInfo:
    name: str
    uri: str
    rows: int


def _filesystem(df: DataFrame, uri: str):
    jvm = df.sparkSession._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    conf = df.sparkSession._jsc.hadoopConfiguration()
    return path.getFileSystem(conf), jvm.org.apache.hadoop.fs.Path


def table_uri(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def write_table(df: DataFrame, root: str, name: str) -> TableInfo:
    """Write `df` as the table `name` under `root`, partitioned by event year, atomically."""
    uri = table_uri(root, name)
    run = uuid.uuid4().hex[:12]
    staging = table_uri(root, f"{STAGING}/{name}-{run}")
    trash = table_uri(root, f"{STAGING}/{name}-{run}-replaced")
    partitioned = df.withColumn(PARTITION_COLUMN, F.year(TIMESTAMP))
    partitioned.write.mode("errorifexists").partitionBy(PARTITION_COLUMN).parquet(staging)
    rows = df.sparkSession.read.parquet(staging).count()

    fs, Path = _filesystem(df, uri)
    if fs.exists(Path(uri)) and not fs.rename(Path(uri), Path(trash)):
        raise OSError(f"could not move the old table {uri} aside")
    if not fs.rename(Path(staging), Path(uri)):
        raise OSError(f"could not move {staging} into place as {uri}")
    fs.delete(Path(trash), True)
    return TableInfo(name=name, uri=uri, rows=rows)


def remove_stale_staging(df: DataFrame, root: str) -> None:
    """Delete what crashed runs left in the staging folder."""
    fs, Path = _filesystem(df, root)
    fs.delete(Path(table_uri(root, STAGING)), True)


def write_parquet_atomically(df: pd.DataFrame, uri: str) -> None:
    """Write a pandas table as one parquet object: to a temporary name, then moved into place."""
    filesystem, path = pafs.FileSystem.from_uri(uri if "://" in uri else f"file://{uri}")
    parent = path.rsplit("/", 1)[0]
    filesystem.create_dir(parent, recursive=True)
    temporary = f"{parent}/.{uuid.uuid4().hex}.tmp"
    table = pa.Table.from_pandas(df, preserve_index=False)
    with filesystem.open_output_stream(temporary) as out:
        pq.write_table(table, out, coerce_timestamps="us", allow_truncated_timestamps=True)
    filesystem.move(temporary, path)
