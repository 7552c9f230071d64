"""The Spark configuration shared by the Flyte Spark tasks and the tests."""

from __future__ import annotations

import os
import sys

from income.platform.settings import SparkSizing

# Spark starts its Python workers with PYSPARK_PYTHON, else `python3` from PATH, which is
# often another environment than this one (a venv that is not activated). Every Spark task
# imports this module before its session starts; the image sets the variable itself.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Driver and executor sizes: the profile's (INCOME_SPARK_*, deploy/cluster.env) when the
    # tasks are registered, else the local defaults.
    **SparkSizing.from_env().spark_conf(),
}

# Object storage through Hadoop's s3a connector (hadoop-aws and the AWS SDK bundle are in the
# image, see the Dockerfile): s3:// URIs too, so Spark reads and writes the same URIs as pyarrow,
# DuckDB and Feast. Nothing here is a secret or an endpoint: `${env.NAME:-default}` is resolved by
# Hadoop in each driver and executor JVM from its own environment, the standard AWS variables of
# the profile (AWS_ENDPOINT_URL for MinIO and the like; unset on AWS itself).
HADOOP_CONF = {
    "fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
    "fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
    "fs.AbstractFileSystem.s3a.impl": "org.apache.hadoop.fs.s3a.S3A",
    "fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
    # The SDK's default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a web identity token
    # (IRSA on EKS), a profile, then the container or instance role.
    "fs.s3a.aws.credentials.provider": "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
    "fs.s3a.endpoint": "${env.AWS_ENDPOINT_URL:-}",
    "fs.s3a.endpoint.region": "${env.AWS_REGION:-${env.AWS_DEFAULT_REGION:-us-east-1}}",
    # Path-style addressing (bucket in the path), as pyarrow uses: MinIO and moto need it, AWS accepts it.
    "fs.s3a.path.style.access": "true",
}


def local_session(app_name: str = "income", cores: int = 2):
    """A local SparkSession with the project's configuration (tests, benchmarks, scripts)."""
    from pyspark.sql import SparkSession

    from income.platform.java import ensure_java

    ensure_java()
    # The host name may resolve to an unrouted address; a local session talks to itself.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(f"local[{cores}]").appName(app_name)
    conf = {
        **SPARK_CONF,
        "spark.sql.shuffle.partitions": str(cores),
        **{f"spark.hadoop.{key}": value for key, value in HADOOP_CONF.items()},
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.config("spark.driver.bindAddress", "127.0.0.1").getOrCreate()
