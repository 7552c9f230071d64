"""Derived and rolling 365-day features over each user's history of census records."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from income.data.schema import ENTITY_KEY, HISTORY_FEATURES, TIMESTAMP

WINDOW_DAYS = 365
_MICROS_PER_DAY = 24 * 60 * 60 * 1_000_000


def _changed(column: str, by_user: WindowSpec) -> Column:
    """1 when `column` differs (null-safely) from the user's previous record; 0 on a first."""
    # The timestamp is never null, so a null previous timestamp marks the user's first
    # record; a null previous value alone would not (occupation may be legitimately missing).
    is_first = F.lag(TIMESTAMP).over(by_user).isNull()
    same = F.col(column).eqNullSafe(F.lag(column).over(by_user))
    return F.when(is_first | same, 0).otherwise(1).cast("long")


def history_features(records: DataFrame) -> DataFrame:
    """Per (user_id, event_timestamp): net capital and the user's activity in the year up to then.

    The window of a record at time t holds the same user's records with timestamps in
    (t - 365 days, t], this record included: a record exactly 365 days (of 24 h) earlier is
    out, one a microsecond later is in. Timestamps are compared as integer microseconds so
    the boundary is exact.

    - capital_net: capital_gain - capital_loss of this record.
    - records_365d: how many records fall in the window.
    - job_changes_365d / marital_changes_365d: how many records in the window changed
      occupation / marital status (null-safely) from the user's previous record, where
      "previous" is taken over the user's full history, so the oldest record of a window can
      still count as a change; a user's first record never does.
    - hours_per_week_mean_365d: mean hours_per_week over the window.
    """
    by_user = Window.partitionBy(ENTITY_KEY).orderBy(TIMESTAMP)
    # Lags are computed first, over the full history, so the range window below only
    # aggregates them and never cuts a record off from its predecessor.
    with_changes = records.select(
        ENTITY_KEY,
        TIMESTAMP,
        "capital_gain",
        "capital_loss",
        "hours_per_week",
        _changed("occupation", by_user).alias("job_change"),
        _changed("marital_status", by_user).alias("marital_change"),
    )
    last_year = (
        Window.partitionBy(ENTITY_KEY)
        .orderBy(F.unix_micros(TIMESTAMP))
        .rangeBetween(-(WINDOW_DAYS * _MICROS_PER_DAY - 1), Window.currentRow)
    )
    features = {
        "capital_net": (F.col("capital_gain") - F.col("capital_loss")).cast("long"),
        "records_365d": F.count(F.lit(1)).over(last_year).cast("long"),
        "job_changes_365d": F.sum("job_change").over(last_year).cast("long"),
        "marital_changes_365d": F.sum("marital_change").over(last_year).cast("long"),
        "hours_per_week_mean_365d": F.avg("hours_per_week").over(last_year).cast("double"),
    }
    return with_changes.select(
        ENTITY_KEY, TIMESTAMP, *(features[name].alias(name) for name in HISTORY_FEATURES)
    )
