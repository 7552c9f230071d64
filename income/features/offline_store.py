"""The offline store: feature and label tables published together, as one version, or not at all.

Layout under the root (a local folder, or any URI pyarrow and Spark both read):

    versions/<version>/<table>/event_month=YYYYMM/part-*.parquet   one feature run's tables
    versions/<version>/_manifest.json     written last: the version is complete (sealed)
    versions/<version>/_published         the version was the published one at some point
    _current.json                         the published version and its tables (the commit)

A feature run writes every table into a fresh version folder, seals it, and publishes it
by replacing `_current.json` in one atomic step. An incremental run first clones the
previous version's tables into its folder (`clone_table`: hard links on a local disk, so
no data is copied; copies on an object store), then lets Spark replace only the month
partitions its batch changed (`write_table(..., clone_of=...)`: a dynamic partition
overwrite); the previous version's files are never touched. Readers resolve table locations through
`current()`, so they see the whole previous set or the whole new one, never a mix; a run
that dies at any point leaves `_current.json` (and so every reader) where it was. Nothing
is renamed or overwritten in place, and re-running on the same input publishes a new
version with the same rows.

Old versions are kept for rebuilds and rollbacks and removed by `collect_garbage`: the
newest `keep` published versions stay; a version that was never published is removed
only once it is older than `abandoned_after` (no run can still be writing it).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
from pyarrow import fs as pafs

from income.data.schema import PARTITION_COLUMN, TIMESTAMP
from income.platform.files import (
    filesystem_and_path,
    read_text,
    write_parquet_atomically,
    write_text_atomically,
)

VERSIONS = "versions"
CURRENT = "_current.json"
MANIFEST = "_manifest.json"
PUBLISHED_MARK = "_published"
FEATURE_SET_TAG = "feature_set_version"  # on every Feast data source: the version it reads
_VERSION_FORMAT = "%Y%m%dT%H%M%S%fZ"
_VERSION_PATTERN = re.compile(r"^(\d{8}T\d{12}Z)-[0-9a-f]{8}$")


class NoPublishedFeatureSet(FileNotFoundError):
    """The offline store has no published version yet."""


@dataclass(frozen=True)
class TableInfo:
    name: str
    uri: str
    rows: int


@dataclass(frozen=True)
class FeatureSet:
    """One published (or sealed) version: its tables, where they are and how many rows each has."""

    root: str
    version: str
    created_at: str
    tables: dict[str, TableInfo]
    as_of: str | None = None  # ISO UTC: the tables are true up to this time
    batches: tuple[str, ...] = ()  # ids of the bronze batches the tables were built from
    previous: str | None = None  # the version this one was built on (None: a full build)
    changed_users: str | None = None  # parquet of the user_ids whose rows changed since `previous`

    @property
    def folder(self) -> str:
        """Where this version's tables and manifests live."""
        return version_uri(self.root, self.version)

    def uri(self, table: str) -> str:
        if table not in self.tables:
            raise KeyError(f"feature set {self.version} under {self.root} has no table {table!r}")
        return self.tables[table].uri

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureSet:
        data = json.loads(text)
        tables = {name: TableInfo(**info) for name, info in data.pop("tables").items()}
        return cls(tables=tables, batches=tuple(data.pop("batches", ())), **data)


def table_uri(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def version_uri(root: str, version: str) -> str:
    return table_uri(root, f"{VERSIONS}/{version}")


def new_version(now: datetime | None = None) -> str:
    """A version id that sorts by creation time: 20261126T081500123456Z-1a2b3c4d."""
    return f"{(now or datetime.now(UTC)).strftime(_VERSION_FORMAT)}-{uuid.uuid4().hex[:8]}"


def version_created_at(version: str) -> datetime:
    match = _VERSION_PATTERN.match(version)
    if not match:
        raise ValueError(f"not a feature set version: {version!r}")
    return datetime.strptime(match.group(1), _VERSION_FORMAT).replace(tzinfo=UTC)


def publish_pandas_tables(root: str, tables: dict[str, pd.DataFrame]) -> FeatureSet:
    """Publish pandas tables as a new version, one parquet file per table.

    For small imports, tests and benchmarks; the feature pipeline writes with Spark (write_table).
    """
    version, written = new_version(), []
    for name, df in tables.items():
        uri = table_uri(version_uri(root, version), name)
        write_parquet_atomically(df, f"{uri}/part-0.parquet")
        written.append(TableInfo(name=name, uri=uri, rows=len(df)))
    seal(root, version, written)
    return publish(root, version)


def clone_table(source_uri: str, target_uri: str) -> None:
    """Give `target_uri` the files of `source_uri`: hard links on a local disk, copies elsewhere.

    Spark's dynamic partition overwrite later deletes and rewrites only the changed
    partitions of the target; a hard link removed there leaves the source's file intact.
    """
    filesystem, source = filesystem_and_path(source_uri)
    _, target = filesystem_and_path(target_uri)
    selector = pafs.FileSelector(source, recursive=True)
    local = isinstance(filesystem, pafs.LocalFileSystem)
    for info in filesystem.get_file_info(selector):
        relative = info.path[len(source) :]
        if info.type != pafs.FileType.File or "/." in relative or "/_" in relative:
            continue  # hidden and bookkeeping files (_SUCCESS, .crc) are not data
        destination = target + relative
        filesystem.create_dir(destination.rsplit("/", 1)[0], recursive=True)
        if local:
            os.link(info.path, destination)
        else:
            filesystem.copy_file(info.path, destination)


def count_rows(uri: str) -> int:
    """Rows of a parquet table folder, from the files' footers (no data read)."""
    import pyarrow.dataset as ds

    filesystem, path = filesystem_and_path(uri)
    try:
        return ds.dataset(path, filesystem=filesystem, format="parquet", partitioning="hive").count_rows()
    except FileNotFoundError:
        return 0


def write_table(df, root: str, version: str, name: str, clone_of: str | None = None) -> TableInfo:
    """Write the Spark DataFrame `df` as table `name` of `version`, partitioned by event month.

    With `clone_of` (the previous version's table URI) the table starts as a clone of it
    and `df` holds only the month partitions that changed, each complete: Spark's dynamic
    partition overwrite replaces exactly those. An empty table is still a table: Spark
    writes no file for an empty partitioned DataFrame, so one empty parquet file with the
    schema is written instead, and every reader sees the columns.
    """
    from pyspark.sql import functions as F

    uri = table_uri(version_uri(root, version), name)
    if PARTITION_COLUMN not in df.columns:
        df = df.withColumn(PARTITION_COLUMN, (F.year(TIMESTAMP) * 100 + F.month(TIMESTAMP)).cast("int"))
    spark = df.sparkSession
    # One file per month partition, not one per month per shuffle partition.
    df = df.repartition(PARTITION_COLUMN)
    if clone_of is not None:
        clone_table(clone_of, uri)
        (
            df.write.mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(PARTITION_COLUMN)
            .parquet(uri)
        )
    else:
        df.write.mode("errorifexists").partitionBy(PARTITION_COLUMN).parquet(uri)
    rows = count_rows(uri)
    if rows == 0:
        spark.createDataFrame([], df.schema).coalesce(1).write.mode("overwrite").parquet(uri)
    return TableInfo(name=name, uri=uri, rows=rows)


def seal(root: str, version: str, tables: list[TableInfo], **lineage) -> FeatureSet:
    """Mark `version` complete: its manifest names every table. Not yet visible to readers.

    `lineage`: the FeatureSet fields saying what it was built from (as_of, batches,
    previous, changed_users).
    """
    feature_set = FeatureSet(
        root=root,
        version=version,
        created_at=version_created_at(version).isoformat(),
        tables={t.name: t for t in tables},
        **lineage,
    )
    manifest = table_uri(version_uri(root, version), MANIFEST)
    write_text_atomically(manifest, feature_set.to_json())
    return feature_set


def sealed(root: str, version: str) -> FeatureSet:
    """The sealed feature set `version`; FileNotFoundError when it was never completed."""
    text = read_text(table_uri(version_uri(root, version), MANIFEST))
    if text is None:
        raise FileNotFoundError(f"feature set {version} under {root} is not complete (no {MANIFEST})")
    return FeatureSet.from_json(text)


def publish(root: str, version: str) -> FeatureSet:
    """Make the sealed `version` the one every reader sees, in one atomic replace of _current.json."""
    feature_set = sealed(root, version)
    write_text_atomically(table_uri(version_uri(root, version), PUBLISHED_MARK), "")
    write_text_atomically(table_uri(root, CURRENT), feature_set.to_json())
    return feature_set


def current(root: str) -> FeatureSet:
    """The published feature set; NoPublishedFeatureSet when the feature pipeline never published one."""
    text = read_text(table_uri(root, CURRENT))
    if text is None:
        raise NoPublishedFeatureSet(
            f"no published feature set under {root} (no {CURRENT}): run the feature pipeline first "
            "(`make demo`, or `pyflyte run workflows/feature_pipeline.py feature_pipeline`)"
        )
    return FeatureSet.from_json(text)


def current_or_none(root: str) -> FeatureSet | None:
    try:
        return current(root)
    except NoPublishedFeatureSet:
        return None


def versions(root: str) -> list[str]:
    """Every version folder under the root, oldest first (complete or not)."""
    filesystem, path = filesystem_and_path(version_uri(root, ""))
    selector = pafs.FileSelector(path.rstrip("/"), allow_not_found=True)
    names = [
        info.base_name for info in filesystem.get_file_info(selector) if info.type == pafs.FileType.Directory
    ]
    return sorted(n for n in names if _VERSION_PATTERN.match(n))


def _exists(uri: str) -> bool:
    filesystem, path = filesystem_and_path(uri)
    return filesystem.get_file_info(path).type != pafs.FileType.NotFound


def collect_garbage(
    root: str, keep: int = 3, abandoned_after: timedelta = timedelta(hours=6), now: datetime | None = None
) -> list[str]:
    """Remove old versions; return the removed ones.

    Kept: `keep` versions that were published, the current one and the newest others, and
    every version never published that is younger than `abandoned_after` (a run may still
    be writing it: make this longer than the feature tasks' timeout).
    """
    if keep < 1:
        raise ValueError("keep must be at least 1: the published version is never removed")
    now = now or datetime.now(UTC)
    published_now = current_or_none(root)
    all_versions = versions(root)
    published = [v for v in all_versions if _exists(table_uri(version_uri(root, v), PUBLISHED_MARK))]
    if published_now is None:
        retained = set(published[-keep:])
    else:
        others = [v for v in published if v != published_now.version]
        retained = {published_now.version, *others[len(others) - (keep - 1) :]}
    removed = []
    filesystem, _ = filesystem_and_path(root)
    for version in all_versions:
        if version in retained:
            continue
        if version not in published and now - version_created_at(version) < abandoned_after:
            continue
        filesystem.delete_dir(filesystem_and_path(version_uri(root, version))[1])
        removed.append(version)
    return removed
