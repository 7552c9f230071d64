"""Derived and rolling 365-day features over each user's history of census records, as change points."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from income.data.schema import ENTITY_KEY, HISTORY_FEATURES, TIMESTAMP

WINDOW_DAYS = 365
_MICROS_PER_DAY = 24 * 60 * 60 * 1_000_000
WINDOW_MICROS = WINDOW_DAYS * _MICROS_PER_DAY


def _changed(column: str, by_user: WindowSpec) -> Column:
    """1 when `column` differs (null-safely) from the user's previous record; 0 on a first."""
    # The timestamp is never null, so a null previous timestamp marks the user's first
    # record; a null previous value alone would not (occupation may be legitimately missing).
    is_first = F.lag(TIMESTAMP).over(by_user).isNull()
    same = F.col(column).eqNullSafe(F.lag(column).over(by_user))
    return F.when(is_first | same, 0).otherwise(1).cast("long")


def expiry_times(records: DataFrame) -> Column:
    """When each record leaves the 365-day window: its time plus 365 days (of 24 h)."""
    return F.timestamp_micros(F.unix_micros(F.col(TIMESTAMP)) + F.lit(WINDOW_MICROS))


def history_features(records: DataFrame, as_of: datetime | None = None) -> DataFrame:
    """Per (user_id, change point): net capital and the user's activity in the year up to then.

    A window feature changes only when a record enters the window (at its own time) or
    leaves it (365 days later), so the table holds a row at each of those change points:
    one per record and, when `as_of` is given, one per moment a record left the window up to
    `as_of` (unless a record of the user falls on that very moment). The latest row at or
    before any t <= as_of therefore states the window as it is at t: features read at t are
    true at t, never the window of the last survey answer (which would not decay).

    The window of a point t holds the same user's records with timestamps in
    (t - 365 days, t]: a record exactly 365 days (of 24 h) earlier is out, one a microsecond
    later is in. Timestamps are compared as integer microseconds so the boundary is exact.

    - capital_net: capital_gain - capital_loss of the user's latest record at or before t.
    - records_365d: how many records fall in the window (0 once all have left it).
    - job_changes_365d / marital_changes_365d: how many records in the window changed
      occupation / marital status (null-safely) from the user's previous record, where
      "previous" is taken over the user's full history, so the oldest record of a window can
      still count as a change; a user's first record never does.
    - hours_per_week_mean_365d: mean hours_per_week over the window (null when it is empty).
    - records_total: how many records the user has up to t (never decays: a tenure).
    """
    by_user = Window.partitionBy(ENTITY_KEY).orderBy(TIMESTAMP)
    # Lags are computed first, over the full history, so the range window below only
    # aggregates them and never cuts a record off from its predecessor.
    points = records.select(
        ENTITY_KEY,
        TIMESTAMP,
        F.lit(1).cast("long").alias("is_record"),
        (F.col("capital_gain") - F.col("capital_loss")).cast("long").alias("record_capital_net"),
        F.col("hours_per_week"),
        _changed("occupation", by_user).alias("job_change"),
        _changed("marital_status", by_user).alias("marital_change"),
    )
    if as_of is not None:
        leaving = (
            records.select(ENTITY_KEY, expiry_times(records).alias(TIMESTAMP))
            .where(F.col(TIMESTAMP) <= F.lit(as_of))
            .distinct()
            .join(records.select(ENTITY_KEY, TIMESTAMP), [ENTITY_KEY, TIMESTAMP], "left_anti")
        )
        empty = {c: F.lit(None).cast(t) for c, t in points.dtypes if c not in (ENTITY_KEY, TIMESTAMP)}
        points = points.unionByName(
            leaving.select(ENTITY_KEY, TIMESTAMP, *(v.alias(c) for c, v in empty.items()))
        )
    micros = F.unix_micros(TIMESTAMP)
    last_year = Window.partitionBy(ENTITY_KEY).orderBy(micros).rangeBetween(-(WINDOW_MICROS - 1), 0)
    so_far = Window.partitionBy(ENTITY_KEY).orderBy(micros).rowsBetween(Window.unboundedPreceding, 0)
    features = {
        "capital_net": F.last("record_capital_net", ignorenulls=True).over(so_far).cast("long"),
        "records_365d": F.coalesce(F.sum("is_record").over(last_year), F.lit(0)).cast("long"),
        "job_changes_365d": F.coalesce(F.sum("job_change").over(last_year), F.lit(0)).cast("long"),
        "marital_changes_365d": F.coalesce(F.sum("marital_change").over(last_year), F.lit(0)).cast("long"),
        "hours_per_week_mean_365d": F.avg("hours_per_week").over(last_year).cast("double"),
        "records_total": F.coalesce(F.sum("is_record").over(so_far), F.lit(0)).cast("long"),
    }
    return points.select(ENTITY_KEY, TIMESTAMP, *(features[name].alias(name) for name in HISTORY_FEATURES))
