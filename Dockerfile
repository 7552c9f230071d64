# One image for every task of the project: Flyte Python tasks, Spark drivers and Spark
# executors (Flyte Spark plugin + Spark operator on Kubernetes), and the online service.
#   docker build -t localhost:30000/income-ml:$(git rev-parse --short HEAD) .
ARG PYTHON_VERSION=3.11
# The Hadoop version pyspark bundles (pyspark/jars/hadoop-client-api-*.jar): hadoop-aws matches it.
ARG HADOOP_VERSION=3.5.0

# --- build stage: resolve the locked environment into /opt/venv -------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /build
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# --- jars stage: Spark's s3a connector, fetched from Maven Central and checksum-verified ---
# hadoop-aws must be the Hadoop version pyspark bundles (its jars/hadoop-client-api-*.jar; the
# final stage checks it), with the AWS SDK v2 bundle and the analytics accelerator that this
# hadoop-aws release declares (hadoop-project's aws-java-sdk-v2.version). SHA-1s: Maven Central's.
FROM python:${PYTHON_VERSION}-slim-bookworm AS jars
ARG HADOOP_VERSION
ARG AWS_SDK_BUNDLE_VERSION=2.35.4
ARG ANALYTICS_ACCELERATOR_VERSION=1.3.1
ARG HADOOP_AWS_SHA1=9e594525d264c0db653c7f68da98b245f7d61ea5
ARG AWS_SDK_BUNDLE_SHA1=7252265e3970b214708e68a8b74a8fa8c875af1e
ARG ANALYTICS_ACCELERATOR_SHA1=6c9bd0f6c440c9a78e82d272f5f0252d942419f6
COPY docker/fetch-jars.sh /usr/local/bin/fetch-jars.sh
RUN fetch-jars.sh /jars \
    "org.apache.hadoop:hadoop-aws:${HADOOP_VERSION}:${HADOOP_AWS_SHA1}" \
    "software.amazon.awssdk:bundle:${AWS_SDK_BUNDLE_VERSION}:${AWS_SDK_BUNDLE_SHA1}" \
    "software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3:${ANALYTICS_ACCELERATOR_VERSION}:${ANALYTICS_ACCELERATOR_SHA1}"

# --- final stage: runtime only (Java for Spark, no compilers, no uv) --------------------
FROM python:${PYTHON_VERSION}-slim-bookworm
ARG PYTHON_VERSION
ARG HADOOP_VERSION
ARG UID=1000
# Debian's JRE package versions move with security updates; the image is rebuilt, not pinned.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps tini \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /opt/java \
    && useradd --uid "${UID}" --create-home --shell /usr/sbin/nologin flyte
ENV JAVA_HOME=/opt/java \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/opt/java/bin:$PATH \
    SPARK_HOME=/opt/venv/lib/python${PYTHON_VERSION}/site-packages/pyspark \
    PYTHONPATH=/app \
    PYSPARK_PYTHON=/opt/venv/bin/python \
    PYTHONUNBUFFERED=1 \
    FLYTE_LOCAL_CACHE_ENABLED=false
COPY --from=build /opt/venv /opt/venv
COPY --from=jars /jars/ ${SPARK_HOME}/jars/
# A pyspark upgrade that moves to another Hadoop must move hadoop-aws with it (ARG HADOOP_VERSION).
RUN test -f "${SPARK_HOME}/jars/hadoop-client-api-${HADOOP_VERSION}.jar"
COPY docker/spark-entrypoint.sh /opt/entrypoint.sh
WORKDIR /app
COPY income/ income/
COPY spark_jobs/ spark_jobs/
COPY tasks/ tasks/
COPY workflows/ workflows/
COPY feature_repo/ feature_repo/
COPY serving/ serving/
COPY pyproject.toml uv.lock ./
USER ${UID}
# DuckDB's httpfs extension, for DuckDB sessions in a pod that query s3:// themselves (a pod may not
# reach DuckDB's extension repository at run time). The project's own DuckDB queries read object
# storage through pyarrow (income.platform.parquet_tables) and do not load it.
RUN python -c "import duckdb; duckdb.sql('INSTALL httpfs')"
# Spark on Kubernetes starts pods with `driver` or `executor`; anything else (pyflyte-execute,
# python -m serving) runs as given.
ENTRYPOINT ["/opt/entrypoint.sh"]
CMD ["python", "-m", "serving"]
