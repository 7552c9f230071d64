"""Where things live and how to reach the services, read from the environment.

`make up` writes `.runtime/env` with these variables as `export` lines; the Makefile
sources it, and `load_runtime_env()` reads it for processes started some other way
(an IDE, a plain `pyflyte run`). Nothing here is a secret baked into code.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def runtime_dir() -> Path:
    return Path(os.environ.get("INCOME_RUNTIME", PROJECT_ROOT / ".runtime")).resolve()


def load_runtime_env(path: Path | None = None) -> None:
    """Set variables from `.runtime/env` that the environment does not already set."""
    env_file = path or runtime_dir() / "env"
    if not env_file.exists():
        return
    for line in env_file.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, value = words[1].split("=", 1)
            os.environ.setdefault(key, value)


SECRET_GROUP = "income"  # Flyte secrets on a cluster: kubectl create secret generic income ...


def secret(env_name: str, key: str) -> str:
    """A secret from the environment, else from Flyte's secrets (group `income`), else ''."""
    if os.environ.get(env_name):
        return os.environ[env_name]
    try:
        from flytekit import current_context

        return current_context().secrets.get(SECRET_GROUP, key)
    except Exception:  # noqa: BLE001 - not in a Flyte task, or no such secret
        return ""


@dataclass(frozen=True)
class ValkeySettings:
    host: str
    port: int
    password: str
    db: int = 0  # a second data set (e.g. the real Adult data) can live beside the demo's

    @classmethod
    def from_env(cls) -> ValkeySettings:
        load_runtime_env()
        if "VALKEY_PORT" not in os.environ:
            raise RuntimeError(
                "Valkey settings not found: run `make up` (it writes .runtime/env), "
                "or set VALKEY_HOST, VALKEY_PORT and VALKEY_PASSWORD."
            )
        return cls(
            host=os.environ.get("VALKEY_HOST", "127.0.0.1"),
            port=int(os.environ["VALKEY_PORT"]),
            password=secret("VALKEY_PASSWORD", "valkey-password"),
            db=int(os.environ.get("VALKEY_DB", "0")),
        )

    @property
    def feast_connection_string(self) -> str:
        """Feast's redis connection string: host:port[,db=N][,password=...]."""
        parts = [f"{self.host}:{self.port}"]
        if self.db:
            parts.append(f"db={self.db}")
        if self.password:
            parts.append(f"password={self.password}")
        return ",".join(parts)

    def client(self):
        import valkey

        return valkey.Valkey(host=self.host, port=self.port, password=self.password or None, db=self.db)

    def async_client(self, timeout: float, **options):
        """An asyncio client that gives up on a socket after `timeout` seconds (connect and reply)."""
        import valkey.asyncio

        return valkey.asyncio.Valkey(
            host=self.host,
            port=self.port,
            password=self.password or None,
            db=self.db,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            **options,
        )


OFFLINE_ENGINES = ("file", "duckdb", "spark")  # Feast's offline stores this project configures
# Feast's own default; the training-set join engine is chosen apart (income.features.point_in_time).
DEFAULT_OFFLINE_ENGINE = "file"


def offline_store_uri() -> str:
    """Root of the offline store: a local folder by default, any Spark/pyarrow URI at scale."""
    load_runtime_env()
    return os.environ.get("INCOME_OFFLINE_STORE", str(runtime_dir() / "offline_store"))


# What one task leaves for another, or for a person after the run, lives in the offline store,
# never in the runtime folder: on a cluster that folder is local to each task's pod.
def in_offline_store(name: str) -> str:
    """<offline store>/<name>: a URI join (the store may be s3://...), never a pathlib one."""
    return f"{offline_store_uri().rstrip('/')}/{name}"


def predictions_uri() -> str:
    """Where batch scoring writes its partitions unless its configuration names a place."""
    return in_offline_store("predictions")


def training_sets_uri() -> str:
    """Where training sets are saved, content-addressed (training_set-<sha>.parquet)."""
    return in_offline_store("training_sets")


def reports_uri() -> str:
    """The reports: the Decks of the last runs, drift reports, the overview page."""
    return in_offline_store("reports")


def feast_registry_location() -> str:
    """FEAST_REGISTRY_PATH: an SQLAlchemy URL, a local sqlite file (the default) or a file registry URI."""
    load_runtime_env()
    return os.environ.get("FEAST_REGISTRY_PATH", str(runtime_dir() / "feast" / "registry.sqlite"))


SQL_SCHEMES = ("sqlite:", "postgresql", "mysql")


def _header(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(16)


def registry_config(location: str) -> tuple[str, str]:
    """(registry_type, path) for feature_store.yaml from FEAST_REGISTRY_PATH.

    Feast's SQL registry, which changes one object at a time in a transaction and so survives
    concurrent workflows: an SQLAlchemy URL (postgresql+psycopg://... on a cluster) as given, a
    local path as a sqlite database. An object-store URI (s3://, gs://) keeps Feast's file
    registry, which one writer at a time may use.
    """
    if location.startswith(SQL_SCHEMES):
        return "sql", location
    if "://" in location:
        return "file", location
    path = Path(location)
    if path.is_file() and path.stat().st_size and _header(path) != b"SQLite format 3\x00":
        raise ValueError(
            f"FEAST_REGISTRY_PATH={location} is a Feast file registry; the project now keeps Feast's "
            "SQL registry in a sqlite database (.runtime/feast/registry.sqlite). Run `make up` "
            "(it rewrites .runtime/env), then the feature pipeline again to fill the new registry."
        )
    return "sql", f"sqlite:///{os.path.abspath(location)}"


@dataclass(frozen=True)
class SparkSizing:
    """Driver and executor sizes of the Spark tasks, from the profile (deploy/cluster.env).

    Read when the tasks are defined, so `make register` bakes the profile's sizes into each
    Spark task (the Spark operator sizes the pods from them); a local run keeps the defaults.
    Memory in Spark's notation (4g, 2048m); Kubernetes adds spark.kubernetes.memoryOverheadFactor
    (10%, at least 384m) to each pod's request. Cores and instances unset: Spark's own defaults.
    """

    driver_memory: str = "4g"
    executor_memory: str = "4g"
    driver_cores: str | None = None
    executor_cores: str | None = None
    executor_instances: str | None = None

    @classmethod
    def from_env(cls) -> SparkSizing:
        defaults = cls()
        return cls(
            driver_memory=os.environ.get("INCOME_SPARK_DRIVER_MEMORY", defaults.driver_memory),
            executor_memory=os.environ.get("INCOME_SPARK_EXECUTOR_MEMORY", defaults.executor_memory),
            driver_cores=os.environ.get("INCOME_SPARK_DRIVER_CORES"),
            executor_cores=os.environ.get("INCOME_SPARK_EXECUTOR_CORES"),
            executor_instances=os.environ.get("INCOME_SPARK_EXECUTOR_INSTANCES"),
        )

    def spark_conf(self) -> dict[str, str]:
        conf = {
            "spark.driver.memory": self.driver_memory,
            "spark.executor.memory": self.executor_memory,
            "spark.driver.cores": self.driver_cores,
            "spark.executor.cores": self.executor_cores,
            "spark.executor.instances": self.executor_instances,
        }
        return {key: value for key, value in conf.items() if value}
