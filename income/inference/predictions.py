"""The predictions folder: one partition per as_of, swapped in whole, read back with as_of as a time.

Layout under the predictions root (a local folder, or any URI pyarrow and Spark both read):

    as_of=<label>/part-*.parquet      one scoring run's predictions as of that time
    _staging/as_of=<label>-<run>/     a run's partition while it is written

The partition column `as_of` lives in the folder name only (hive style, as Spark and
pyarrow expect): readers of the predictions root get it as the folder-safe label
`2026-01-01T00-00-00Z` (income.inference.as_of); `read_predictions` turns it back into a
UTC timestamp. A run writes its partition under `_staging` and swaps it in with two
renames, so a re-run for the same as_of replaces the partition and readers never see half of it.
"""

from __future__ import annotations

import uuid

import pandas as pd

from income.features.offline_store import table_uri
from income.inference.as_of import as_of_label, label_as_of

AS_OF = "as_of"
STAGING = "_staging"


def partition_uri(predictions_root: str, as_of: pd.Timestamp) -> str:
    return table_uri(predictions_root, f"{AS_OF}={as_of_label(as_of)}")


def staging_uri(predictions_root: str, as_of: pd.Timestamp) -> str:
    """A fresh folder, unique to this run, to write the partition as of `as_of` before the swap."""
    run = uuid.uuid4().hex[:12]
    return table_uri(predictions_root, f"{STAGING}/{AS_OF}={as_of_label(as_of)}-{run}")


def _hadoop_filesystem(spark, uri: str):
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark._jsc.hadoopConfiguration()), jvm.org.apache.hadoop.fs.Path


def swap_into_place(spark, staging: str, target: str) -> None:
    """Replace the folder `target` by the fully written `staging` one: old -> trash, staging -> target.

    A run that died between the two renames left the old folder only as its trash copy:
    that copy is restored first, so the swap never starts from a missing target whose data
    still exists.
    """
    fs, Path = _hadoop_filesystem(spark, target)
    trash = f"{staging}-replaced"
    fs.mkdirs(Path(target).getParent())
    if not fs.exists(Path(target)):
        _restore_interrupted_swap(fs, Path, staging, target)
    if fs.exists(Path(target)) and not fs.rename(Path(target), Path(trash)):
        raise OSError(f"could not move the old {target} aside")
    if not fs.rename(Path(staging), Path(target)):
        raise OSError(f"could not move {staging} into place as {target}")
    fs.delete(Path(trash), True)


def _restore_interrupted_swap(fs, Path, staging: str, target: str) -> None:
    """Move back the newest trash copy of `target` that an interrupted swap left in the staging folder."""
    folder = Path(staging).getParent()
    prefix = f"{Path(target).getName()}-"
    if not fs.exists(folder):
        return
    copies = [
        status.getPath()
        for status in fs.listStatus(folder)
        if status.getPath().getName().startswith(prefix) and status.getPath().getName().endswith("-replaced")
    ]
    if copies:
        newest = max(copies, key=lambda p: fs.getFileStatus(p).getModificationTime())
        fs.rename(newest, Path(target))


def read_predictions(predictions_root: str, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Predictions as pandas (every partition, or one), `as_of` as a UTC timestamp column."""
    import pyarrow.dataset as ds

    if as_of is not None:
        frame = ds.dataset(partition_uri(predictions_root, as_of), format="parquet").to_table().to_pandas()
        frame[AS_OF] = as_of
        return frame
    frame = ds.dataset(predictions_root, format="parquet", partitioning="hive").to_table().to_pandas()
    frame[AS_OF] = frame[AS_OF].astype(str).map(label_as_of).astype("datetime64[us, UTC]")
    return frame
