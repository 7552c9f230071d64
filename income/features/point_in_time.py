"""Point-in-time lookup: entity rows get the features of `income_v1` as they were at each row's time.

An entity row is (user_id, event_timestamp) plus any columns to carry through untouched
(a training label, say). Each feature view contributes its latest row with feature
timestamp <= the entity row's and no older than the view's TTL; otherwise nulls. No entity
row is dropped: entity rows must be unique per (user_id, event_timestamp), since Feast's
file store silently drops duplicates (feast issue 6787).

Engines (configuration, never a code edit):
- Feast's offline store of the store: INCOME_OFFLINE_ENGINE / `get_store(offline_engine=...)`
  in income.features.feature_store, one of `file` (Dask), `duckdb` (`feast[duckdb]`, ibis) and
  `spark` (run in a Spark session; the registry must hold SparkSource definitions, applied
  under that engine). Select it with engine "feast" (for training: INCOME_TRAINING_ENGINE=feast).
- `asof`: one DuckDB ASOF JOIN per view over the same parquet tables, planned from the
  registry's view definitions (sources, features, TTLs); tests/income/features/test_point_in_time.py
  checks it row for row against Feast's own joins and a pandas.merge_asof oracle.
- `spark_asof`: the same plan (`plan_lookups`) run on Spark, income.features.spark_point_in_time:
  for outputs too big for one process, written by Spark (batch scoring); through
  `point_in_time_features` its result is collected as pandas like the others'. The same tests
  check it row for row against `asof` and the oracle.

Measured by `python -m benchmarks.training_set --labels 1000000` (1M labels, 333,334
users, 1M rows per view; 2 cores, 24 GiB). The DuckDB rows are from a run on an idle
machine (load 1.3); the file and Spark rows from an earlier run with other jobs alongside
(load 2-7), so they flatter the ratios below rather than the reverse:

| engine | join seconds | vs hand-written | peak RSS (MiB) |
| --- | --- | --- | --- |
| hand-written DuckDB ASOF JOIN (unsorted output) | 1.99 | 1.00x | 1,670 |
| `asof` (registry-driven DuckDB ASOF), default | 2.81 | 1.41x | 2,170 |
| Feast DuckDB store (`feast[duckdb]`) | 8.01 | 4.03x | 1,846 |
| Feast Spark store, 12g driver | 407 (+19.5 session start) | ~200x | 14,705 (Python + JVM) |
| Feast file (Dask) store | 673 (612 in another run) | ~300x | 3,748 |

All returned 1M rows with the same content hash. With the project's 4g driver, Feast's
Spark store ran out of heap collecting the 1M-row result (toPandas).

`spark_asof` in the same benchmark on 2026-12-05 (`--kinds handwritten,asof,spark_asof_parquet,spark_asof
--spark-driver-memory 4g`; load 3-4 from another engineer's tests, so every figure is slower
than the table's): hand-written 2.05 s, `asof` 6.21 s (2,146 MiB), `spark_asof` with labels read
and the set written by Spark 29.2 s (+12.5 s session; Python 641 MiB, of which the benchmark's
own pandas labels, + JVM 2,369 MiB), `spark_asof` collected as pandas 24.6 s (Python 1,245 +
JVM 4,344 MiB). Same content hash. On two cores Spark is 4-5x the DuckDB plan: it is there for
sets that outgrow one process, not for speed here (10M labels not measured).

Default (DEFAULT_JOIN_ENGINE, overridden by INCOME_TRAINING_ENGINE when a caller names no
engine): `asof`. It is the only engine that is both at least 5x faster than Feast's file
store (over 200x) and within 1.5x of the hand-written ASOF JOIN; it reads Feast's registry
(the service's views, sources, TTLs), and tests check it row for row against Feast's own
joins. Of Feast's stores, DuckDB is the fastest here (80x the file store);
`INCOME_TRAINING_ENGINE=feast` with `INCOME_OFFLINE_ENGINE=duckdb` (or `spark`, on a
cluster) uses Feast's own join.

Re-measured alone on 2026-12-05: `asof` 3.6-3.75 s, hand-written 1.8-2.0 s (1.9x).
`asof` joins only the entity rows' users (a semi-join before each ASOF join): a small entity
set against a large store reads that set's rows, not the tables (README: Point-in-time
training sets).

Feast 0.67's file store also drops an entity row whose user has rows in a view but none
within [t - TTL, t] (its TTL filter runs after a left merge on the user): such results
are refused here (row count check), never passed on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from income.data.schema import ENTITY_KEY, TIMESTAMP
from income.features.feature_store import FEATURE_SERVICE
from income.platform.parquet_tables import register_parquet

ASOF = "asof"
SPARK_ASOF = "spark_asof"  # the `asof` plan on Spark: income.features.spark_point_in_time
FEAST = "feast"  # the store's configured Feast offline store (file, duckdb or spark)
# Chosen by the numbers above: the only engine within 1.5x of a hand-written ASOF JOIN.
DEFAULT_JOIN_ENGINE = ASOF
# The join engine when a caller names none (training does not; batch scoring names its own).
JOIN_ENGINE_VARIABLE = "INCOME_TRAINING_ENGINE"
_PANDAS_DTYPES = {"Int64": "Int64", "Int32": "Int64", "Float64": "float64", "Float32": "float64"}


def _utc_micros(column: pd.Series) -> pd.Series:
    """The timestamps as UTC microseconds, the unit Spark and the parquet tables use."""
    if str(column.dtype) == "datetime64[us, UTC]":
        return column
    return pd.to_datetime(column, utc=True).astype("datetime64[us, UTC]")


def _time_user_order(df: pd.DataFrame) -> np.ndarray | None:
    """The permutation that sorts by (event_timestamp, user_id); None when already strictly sorted."""
    times = df[TIMESTAMP].to_numpy(dtype="datetime64[us]").view("int64")
    users = df[ENTITY_KEY].to_numpy(dtype="int64")
    later, next_user = np.diff(times), np.diff(users)
    if ((later > 0) | ((later == 0) & (next_user > 0))).all():
        return None
    return np.lexsort((users, times))


def in_time_order(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with int64 user_id and UTC-microsecond times, sorted by (time, user); duplicates refused."""
    out = rows.reset_index(drop=True)
    out = out.assign(
        **{ENTITY_KEY: out[ENTITY_KEY].astype("int64", copy=False), TIMESTAMP: _utc_micros(out[TIMESTAMP])}
    )
    order = _time_user_order(out)
    if order is not None:
        out = out.take(order).reset_index(drop=True)
        if _time_user_order(out) is not None:  # sorted but not strictly: a repeated pair
            raise ValueError(
                "entity rows must be unique per (user_id, event_timestamp): "
                "Feast's file store would silently drop the duplicates (feast issue 6787)"
            )
    return out


def feature_types(store, service_name: str = FEATURE_SERVICE) -> dict[str, str]:
    """Feature name -> Feast type name, in the service's order."""
    service = store.get_feature_service(service_name)
    return {f.name: str(f.dtype) for p in service.feature_view_projections for f in p.features}


def canonical_output(
    df: pd.DataFrame,
    entity_rows: pd.DataFrame,
    types: dict[str, str],
    nan_strings: bool = True,
) -> pd.DataFrame:
    """The entity rows' columns (carried ones in their own dtypes), then the features; sorted by (time, user).

    Strings are objects with None for missing; integers pandas Int64; floats float64 (NaN).
    """
    if len(df) != len(entity_rows):
        raise AssertionError(
            f"the join returned {len(df)} rows for {len(entity_rows)} entity rows: an engine dropped "
            "entity rows (Feast's file store drops an entity row whose user has rows in a view but "
            "none within the TTL before it)"
        )
    df = df.reset_index(drop=True)
    columns = {
        ENTITY_KEY: df[ENTITY_KEY].astype("int64", copy=False),
        TIMESTAMP: _utc_micros(df[TIMESTAMP]),
    }
    for name in _carried(entity_rows):
        columns[name] = df[name].astype(entity_rows[name].dtype, copy=False)
    for name, feast_type in types.items():
        column = df[name]
        target = _PANDAS_DTYPES.get(feast_type, "object")
        if str(column.dtype) != target:
            column = pd.to_numeric(column).astype(target) if target != "object" else column.astype(object)
        if target == "object" and nan_strings and column.hasnans:
            # NaN for a missing string (pandas engines) becomes None, as Feast's online reads give.
            column = column.where(column.notna(), None)
        columns[name] = column
    out = pd.DataFrame(columns)
    order = _time_user_order(out)
    return out if order is None else out.take(order).reset_index(drop=True)


def _carried(entity_rows: pd.DataFrame) -> list[str]:
    return [c for c in entity_rows.columns if c not in (ENTITY_KEY, TIMESTAMP)]


def point_in_time_features(
    store,
    entity_rows: pd.DataFrame,
    engine: str | None = None,
    spark=None,
    feature_set=None,
    service_name: str = FEATURE_SERVICE,
) -> pd.DataFrame:
    """Each entity row with every feature of the service (default `income_v1`) as of its own time,
    one row per entity row.

    Columns: user_id, event_timestamp, the carried columns, then the features in the
    service's order; sorted by (event_timestamp, user_id). `engine`: None
    (INCOME_TRAINING_ENGINE, default "asof"), "asof" (DuckDB ASOF JOINs planned from the
    registry), "spark_asof" (the same plan on Spark, collected here as pandas), or "feast" /
    the store's offline store type (INCOME_OFFLINE_ENGINE: Feast's own
    `get_historical_features`). `spark`: the session the Flyte task runs in, for the Feast
    Spark store (it joins in the active session) and "spark_asof" (without one: the active
    session, else a local one). `feature_set`: an older retained version
    (income.features.offline_store.FeatureSet) to read instead of the one the registry
    serves, engines "asof" and "spark_asof": how a past training set is rebuilt.
    """
    configured = store.config.offline_store.type
    engine = engine or os.environ.get(JOIN_ENGINE_VARIABLE) or DEFAULT_JOIN_ENGINE
    engine = configured if engine == FEAST else engine
    if engine not in (configured, ASOF, SPARK_ASOF):
        raise ValueError(
            f"this store's offline store is {configured!r}: build the store with "
            f"get_store(offline_engine={engine!r}) and apply the definitions under it, or pass engine='asof'"
        )
    entity_df = in_time_order(entity_rows)
    types = feature_types(store, service_name)
    if engine == ASOF:
        # Arrow gives None for a missing string already.
        joined = _asof_join(store, entity_df, feature_set, service_name)
        return canonical_output(joined, entity_df, types, nan_strings=False)
    if engine == SPARK_ASOF:
        from income.features.spark_point_in_time import session, spark_point_in_time_pandas

        joined = spark_point_in_time_pandas(session(spark), store, entity_df, feature_set, service_name)
        return canonical_output(joined, entity_df, types, nan_strings=False)
    if feature_set is not None:
        raise ValueError("reading another feature set version needs engine 'asof' or 'spark_asof'")
    if engine == "spark" and spark is not None:
        # Feast's Spark store compares timestamps as strings rendered in UTC.
        spark.conf.set("spark.sql.session.timeZone", "UTC")
    job = store.get_historical_features(
        entity_df=entity_df.copy(), features=store.get_feature_service(service_name)
    )
    return canonical_output(job.to_df(), entity_df, types)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class ViewLookup:
    """What one view of the service contributes to a point-in-time lookup, read from the registry."""

    view: str
    path: str  # the view's parquet table (its source, or the table of an older feature set)
    keys: tuple[str, ...]  # the view's join keys
    features: tuple[str, ...]  # the service's features of the view, in the service's order
    timestamp_field: str
    ttl: timedelta  # 0: no age limit


def plan_lookups(
    store, feature_set=None, engine: str = ASOF, service_name: str = FEATURE_SERVICE
) -> list[ViewLookup]:
    """The views of the service (default `income_v1`) as the registry defines them, in its order.

    One planner for the engines that read the tables themselves (`asof`, `spark_asof`), so
    they read the same tables, features and TTLs. `feature_set`: an older retained version
    whose tables to read instead of the sources' paths.
    """
    service = store.get_feature_service(service_name)
    lookups = []
    for projection in service.feature_view_projections:
        view = store.get_feature_view(projection.name)
        source = view.batch_source
        path = feature_set.uri(view.name) if feature_set is not None else getattr(source, "path", None)
        if not path or source.field_mapping or source.created_timestamp_column:
            raise NotImplementedError(
                f"engine {engine!r} reads plain parquet sources without field mapping or created "
                f"timestamps; view {view.name!r} has {source!r}"
            )
        lookups.append(
            ViewLookup(
                view=view.name,
                path=path,
                keys=tuple(c.name for c in view.entity_columns),
                features=tuple(f.name for f in projection.features),
                timestamp_field=source.timestamp_field,
                ttl=view.ttl or timedelta(0),
            )
        )
    return lookups


def _asof_join(
    store, entity_rows: pd.DataFrame, feature_set=None, service_name: str = FEATURE_SERVICE
) -> pd.DataFrame:
    """Feast's point-in-time semantics as DuckDB ASOF LEFT JOINs, one per view of the service.

    ASOF picks each entity row's latest view row at or before its time; the TTL test after
    it then nulls a row that is too old (all earlier rows of that user are older still).
    """
    import duckdb

    selects = [f"l.{_quote(c)}" for c in [ENTITY_KEY, TIMESTAMP, *_carried(entity_rows)]]
    joins = []
    lookups = plan_lookups(store, feature_set, service_name=service_name)
    for i, lookup in enumerate(lookups):
        alias = f"v{i}"
        columns = ", ".join([*map(_quote, lookup.keys), *map(_quote, lookup.features)])
        keys = ", ".join(map(_quote, lookup.keys))
        # Only the entity rows' users: the join then holds their rows, not the whole table.
        joins.append(
            f"ASOF LEFT JOIN (SELECT {columns}, {_quote(lookup.timestamp_field)} AS _ts "
            f"FROM {alias}_table SEMI JOIN (SELECT DISTINCT {keys} FROM entity_rows) USING ({keys})) {alias} "
            f"ON {' AND '.join(f'l.{_quote(k)} = {alias}.{_quote(k)}' for k in lookup.keys)} "
            f"AND l.{TIMESTAMP} >= {alias}._ts"
        )
        fresh = (
            f"{alias}._ts >= l.{TIMESTAMP} - to_microseconds({int(lookup.ttl / timedelta(microseconds=1))})"
            if lookup.ttl > timedelta(0)
            else "TRUE"
        )
        selects += [f"CASE WHEN {fresh} THEN {alias}.{_quote(f)} END AS {_quote(f)}" for f in lookup.features]
    sql = (
        f"SELECT {', '.join(selects)} "
        f"FROM entity_rows l {' '.join(joins)} ORDER BY l.{TIMESTAMP}, l.{ENTITY_KEY}"
    )
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("entity_rows", entity_rows)
        for i, lookup in enumerate(lookups):
            register_parquet(con, f"v{i}_table", lookup.path)
        table = con.sql(sql).to_arrow_table()
    return arrow_to_pandas(table)


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow result as pandas with nullable Int64 integers and None for missing strings."""
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
