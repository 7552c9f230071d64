"""Inline raw census records for the Spark job tests: one dict per row, defaults for the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from income.data.schema import ENTITY_KEY, NUMERIC_ATTRIBUTES, RAW_COLUMNS, TIMESTAMP

RAW_SCHEMA = StructType(
    [
        StructField(ENTITY_KEY, LongType(), False),
        StructField(TIMESTAMP, TimestampType(), False),
        *(
            StructField(name, LongType() if name in NUMERIC_ATTRIBUTES else StringType())
            for name in RAW_COLUMNS[2:]
        ),
    ]
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)

# A plausible Adult row; tests override only the columns they are about.
DEFAULTS: dict[str, Any] = {
    ENTITY_KEY: 1,
    TIMESTAMP: T0,
    "age": 39,
    "workclass": "State-gov",
    "fnlwgt": 77516,
    "education": "Bachelors",
    "education_num": 13,
    "marital_status": "Never-married",
    "occupation": "Adm-clerical",
    "relationship": "Not-in-family",
    "race": "White",
    "sex": "Male",
    "capital_gain": 0,
    "capital_loss": 0,
    "hours_per_week": 40,
    "native_country": "United-States",
    "income": "<=50K",
}


def at(days: int = 0, micros: int = 0) -> datetime:
    """A UTC timestamp `days` days and `micros` microseconds after T0."""
    return T0 + timedelta(days=days, microseconds=micros)


def make_records(spark: SparkSession, *rows: dict[str, Any]) -> DataFrame:
    """Raw records with the raw schema: each row is DEFAULTS updated with the given dict."""
    unknown = {key for row in rows for key in row} - set(RAW_COLUMNS)
    assert not unknown, f"not raw columns: {unknown}"
    return spark.createDataFrame(
        [tuple({**DEFAULTS, **row}[name] for name in RAW_COLUMNS) for row in rows], RAW_SCHEMA
    )


def table(spark: SparkSession, ddl: str, rows: list[tuple]) -> DataFrame:
    """An expected table, its columns and types given as a DDL string."""
    return spark.createDataFrame(rows, ddl)
