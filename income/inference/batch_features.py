"""The batch's features: every user's features of the service as of one time.

On Spark for batch scoring (`spark_features_as_of`: nothing reaches the driver), in one
process for the drift reference and the tests (`features_as_of`); both run the same plan
from the Feast registry (income.features.point_in_time.plan_lookups).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from income.data.schema import ENTITY_KEY, TIMESTAMP
from income.features.feature_store import FEATURE_SERVICE
from income.features.point_in_time import ASOF, point_in_time_features
from income.platform.parquet_tables import register_parquet

# Feast's file store drops the entity rows whose every view is older than its TTL, where
# scoring needs a row (all features null) for every user: it counts the users it does not
# score (income.inference.scoreable).
SCORING_ENGINE = ASOF


def features_as_of(
    store,
    users: pd.DataFrame,
    as_of: pd.Timestamp,
    engine: str | None = None,
    spark=None,
    service_name: str = FEATURE_SERVICE,
):
    """Every feature of the service for each user as of `as_of`: one row per user, sorted by user.

    `engine` as in income.features.point_in_time.point_in_time_features; None means
    SCORING_ENGINE ("asof").
    """
    entity_rows = pd.DataFrame({ENTITY_KEY: users[ENTITY_KEY].astype("int64").to_numpy()})
    entity_rows[TIMESTAMP] = as_of
    try:
        # One time for every row: the (time, user) order of the result is the user order.
        return point_in_time_features(
            store, entity_rows, engine=engine or SCORING_ENGINE, spark=spark, service_name=service_name
        )
    except AssertionError as error:  # the row-count check of point_in_time_features
        raise RuntimeError(
            f"the point-in-time join with engine {engine!r} lost entity rows ({error}): Feast's file "
            "store drops users whose features are all older than the views' TTL; use engine 'asof'"
        ) from error


def spark_features_as_of(spark, store, users, as_of: pd.Timestamp, service_name: str = FEATURE_SERVICE):
    """Every feature of the service for each user (a Spark DataFrame with user_id) as of `as_of`.

    A lazy Spark DataFrame, one row per distinct user, columns as in
    income.features.spark_point_in_time (its one-time lookup: an aggregation, no sort).
    """
    from pyspark.sql import functions as F

    from income.features.spark_point_in_time import spark_point_in_time_at

    keys = users.select(F.col(ENTITY_KEY).cast("bigint").alias(ENTITY_KEY))
    return spark_point_in_time_at(spark, store, keys, as_of, service_name=service_name)


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
        register_parquet(con, "demographic", table)
        latest = con.execute(
            f"SELECT {ENTITY_KEY}, max({TIMESTAMP}) AS latest FROM demographic "
            f"WHERE {TIMESTAMP} <= ? AND {ENTITY_KEY} IN (SELECT {ENTITY_KEY} FROM ids) "
            f"GROUP BY {ENTITY_KEY}",
            [as_of.to_pydatetime()],
        ).df()
    ages = ids.merge(latest, on=ENTITY_KEY, how="left")["latest"]
    return ((as_of - pd.to_datetime(ages, utc=True)) / pd.Timedelta(days=1)).to_numpy(dtype="float64")
