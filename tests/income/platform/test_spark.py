"""Spark's s3a settings: fixed in code, endpoint and region from the environment of each JVM."""

from __future__ import annotations

from income.platform.settings import SparkSizing
from income.platform.spark import HADOOP_CONF


def test_hadoop_resolves_the_endpoint_and_region_from_the_jvms_own_environment(spark):
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    getenv = spark.sparkContext._jvm.java.lang.System.getenv

    assert hadoop.get("fs.s3a.endpoint") == (getenv("AWS_ENDPOINT_URL") or "")
    assert hadoop.get("fs.s3a.endpoint.region") == (
        getenv("AWS_REGION") or getenv("AWS_DEFAULT_REGION") or "us-east-1"
    )
    assert hadoop.get("fs.s3.impl") == HADOOP_CONF["fs.s3.impl"]
    assert hadoop.getRaw("fs.s3a.endpoint") == "${env.AWS_ENDPOINT_URL:-}"


def test_spark_sizes_come_from_the_profile_and_default_to_the_local_sizes(monkeypatch):
    for name in ("DRIVER_MEMORY", "DRIVER_CORES", "EXECUTOR_MEMORY", "EXECUTOR_CORES", "EXECUTOR_INSTANCES"):
        monkeypatch.delenv(f"INCOME_SPARK_{name}", raising=False)
    assert SparkSizing.from_env().spark_conf() == {"spark.driver.memory": "4g", "spark.executor.memory": "4g"}

    monkeypatch.setenv("INCOME_SPARK_EXECUTOR_MEMORY", "8g")
    monkeypatch.setenv("INCOME_SPARK_EXECUTOR_INSTANCES", "4")
    assert SparkSizing.from_env().spark_conf() == {
        "spark.driver.memory": "4g",
        "spark.executor.memory": "8g",
        "spark.executor.instances": "4",
    }
