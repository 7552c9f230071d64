"""The Spark configuration shared by the Flyte Spark tasks and the tests."""

from __future__ import annotations

import os
import sys

# Spark starts its Python workers with PYSPARK_PYTHON, else `python3` from PATH, which is
# often another environment than this one (a venv that is not activated). Every Spark task
# imports this module before its session starts; the image sets the variable itself.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.driver.memory": "4g",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Executors in Kubernetes (see the Dockerfile): sized in the cluster profile.
    "spark.executor.memory": "4g",
}


def local_session(app_name: str = "income", cores: int = 2):
    """A local SparkSession with the project's configuration (tests, benchmarks, scripts)."""
    from pyspark.sql import SparkSession

    from income.platform.java import ensure_java

    ensure_java()
    # The host name may resolve to an unrouted address; a local session talks to itself.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(f"local[{cores}]").appName(app_name)
    for key, value in {**SPARK_CONF, "spark.sql.shuffle.partitions": str(cores)}.items():
        builder = builder.config(key, value)
    return builder.config("spark.driver.bindAddress", "127.0.0.1").getOrCreate()
