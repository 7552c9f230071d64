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


def _filesystem(spark, uri: str):
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), jvm.org.apache.hadoop.fs.Path


def table_uri(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def swap_into_place(spark, staging: str, target: str) -> None:
    """Replace `target` by the fully written `staging` folder: old -> trash, staging -> target."""
    fs, Path = _filesystem(spark, target)
    trash = f"{staging}-replaced"
    fs.mkdirs(Path(target).getParent())
    if fs.exists(Path(target)) and not fs.rename(Path(target), Path(trash)):
        raise OSError(f"could not move the old {target} aside")
    if not fs.rename(Path(staging), Path(target)):
        raise OSError(f"could not move {staging} into place as {target}")
    fs.delete(Path(trash), True)


def write_table(df: DataFrame, root: str, name: str) -> TableInfo:
    """Write `df` as the table `name` under `root`, partitioned by event year, atomically."""
    uri = table_uri(root, name)
    staging = table_uri(root, f"{STAGING}/{name}-{uuid.uuid4().hex[:12]}")
    partitioned = df.withColumn(PARTITION_COLUMN, F.year(TIMESTAMP))
    partitioned.write.mode("errorifexists").partitionBy(PARTITION_COLUMN).parquet(staging)
    rows = df.sparkSession.read.parquet(staging).count()
    swap_into_place(df.sparkSession, staging, uri)
    return TableInfo(name=name, uri=uri, rows=rows)


def remove_stale_staging(df: DataFrame, root: str) -> None:
    """Delete what crashed runs left in the staging folder."""
    fs, Path = _filesystem(df.sparkSession, root)
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
