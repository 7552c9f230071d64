"""Parquet tables as DuckDB relations, on a local disk or object storage alike.

A local table is read by DuckDB's own `read_parquet`, the fastest path. A table on object
storage (s3://...) is opened as a pyarrow dataset through income.platform.files, so DuckDB
reads it with the same client, endpoint (AWS_ENDPOINT_URL) and credentials as every other
reader of the store, and needs no extension downloaded at run time; it still pushes the
query's column and row filters down into the scan.
"""

from __future__ import annotations

from income.platform.files import filesystem_and_path, is_remote


def parquet_glob(uri: str) -> str:
    """Every parquet file under a local table folder (or the one file itself), as `read_parquet` takes it."""
    return uri if uri.endswith(".parquet") else f"{uri.rstrip('/')}/**/*.parquet"


def register_parquet(con, name: str, uri: str) -> str:
    """Make the parquet table at `uri` (a folder or one file) the relation `name` of `con`; returns `name`.

    Hive partition folders (event_month=...) add no column: the tables carry their own times.
    """
    if is_remote(uri):
        import pyarrow.dataset as ds

        filesystem, path = filesystem_and_path(uri)
        con.register(name, ds.dataset(path, filesystem=filesystem, format="parquet"))
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW \"{name}\" AS SELECT * FROM read_parquet('{parquet_glob(uri)}', "
            "hive_partitioning = false)"
        )
    return name
