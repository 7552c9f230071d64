"""Occupation features from raw census records."""

from __future__ import annotations

from pyspark.sql import DataFrame

from income.data.schema import ENTITY_KEY, TIMESTAMP, VIEW_ATTRIBUTES


def occupation_features(records: DataFrame) -> DataFrame:
    """Per (user_id, event_timestamp): the user's work, education, hours and capital moves."""
    return records.select(ENTITY_KEY, TIMESTAMP, *VIEW_ATTRIBUTES["occupation"])
