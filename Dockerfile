# One image for every task of the project: Flyte Python tasks, Spark drivers and Spark
# executors (Flyte Spark plugin + Spark operator on Kubernetes), and the online service.
#   docker build -t localhost:30000/income-ml:$(git rev-parse --short HEAD) .
ARG PYTHON_VERSION=3.11

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

# --- final stage: runtime only (Java for Spark, no compilers, no uv) --------------------
FROM python:${PYTHON_VERSION}-slim-bookworm
ARG PYTHON_VERSION
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
# Spark on Kubernetes starts pods with `driver` or `executor`; anything else (pyflyte-execute,
# python -m serving) runs as given.
ENTRYPOINT ["/opt/entrypoint.sh"]
CMD ["python", "-m", "serving"]
