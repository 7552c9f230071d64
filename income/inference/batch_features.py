"""The batch's features: every user's features of the service as of one time, and their Spark schema."""

from __future__ import annotations

import numpy as np
import pandas as pd

from income.data.schema import ENTITY_KEY, TIMESTAMP
from income.features.feature_store import FEATURE_SERVICE
from income.features.offline_store import parquet_glob
from income.features.point_in_time import ASOF, point_in_time_features

# Feast's file store drops the entity rows whose every view is older than its TTL, where
# scoring needs a row (all features null) for every user: it counts the users it does not
# score (income.inference.scoreable).
SCORING_ENGINE = ASOF
_SPARK_TYPES = {
    "Int64": "bigint",
    "Int32": "bigint",
    "Float64": "double",
    "Float32": "double",
    "String": "string",
}


def features_as_of(store, users: pd.DataFrame, as_of: pd.Timestamp, engine: str | None = None, spark=None):
    """Every feature of income_v1 for each user as of `as_of`: one row per user, sorted by user.

    `engine` as in income.features.point_in_time.point_in_time_features; None means
    SCORING_ENGINE ("asof").
    """
    entity_rows = pd.DataFrame({ENTITY_KEY: users[ENTITY_KEY].astype("int64").to_numpy()})
    entity_rows[TIMESTAMP] = as_of
    try:
        # One time for every row: the (time, user) order of the result is the user order.
        return point_in_time_features(store, entity_rows, engine=engine or SCORING_ENGINE, spark=spark)
    except AssertionError as error:  # the row-count check of point_in_time_features
        raise RuntimeError(
            f"the point-in-time join with engine {engine!r} lost entity rows ({error}): Feast's file "
            "store drops users whose features are all older than the views' TTL; use engine 'asof'"
        ) from error


def census_age_days(feature_set, users, as_of: pd.Timestamp) -> np.ndarray:
    """Days from each user's latest census record at or before `as_of` to `as_of` (NaN: none).

    How stale the features are: reported beside drift, never as drift.
    """
    import duckdb

    ids = pd.DataFrame({ENTITY_KEY: np.asarray(users, dtype="int64")})
    table = feature_set.uri("demographic")
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("ids", ids)
        latest = con.execute(
            f"SELECT {ENTITY_KEY}, max({TIMESTAMP}) AS latest "
            f"FROM read_parquet('{parquet_glob(table)}', hive_partitioning = false) "
            f"WHERE {TIMESTAMP} <= ? AND {ENTITY_KEY} IN (SELECT {ENTITY_KEY} FROM ids) "
            f"GROUP BY {ENTITY_KEY}",
            [as_of.to_pydatetime()],
        ).df()
    ages = ids.merge(latest, on=ENTITY_KEY, how="left")["latest"]
    return ((as_of - pd.to_datetime(ages, utc=True)) / pd.Timedelta(days=1)).to_numpy(dtype="float64")


def spark_feature_schema(store, service_name: str = FEATURE_SERVICE) -> str:
    """A DDL schema (user_id, event_timestamp, features) from the service's Feast types."""
    service = store.get_feature_service(service_name)
    columns = [f"{ENTITY_KEY} bigint", f"{TIMESTAMP} timestamp"]
    for projection in service.feature_view_projections:
        for field in projection.features:
            columns.append(f"`{field.name}` {_SPARK_TYPES.get(str(field.dtype), 'string')}")
    return ", ".join(columns)
