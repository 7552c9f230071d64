"""The model version an MLflow alias points at, loaded, and swapped when the alias moves.

A background task (watch) asks the registry every INCOME_SERVE_RELOAD_SECONDS which
version holds the alias and loads a new one beside the old one, then swaps. A version is
used only if its feature contract holds (income.inference.contract, the check batch
scoring makes too). A version that cannot be used (artifact store down, contract refused)
is tried again after INCOME_SERVE_RETRY_SECONDS, the wait doubling per failure up to
INCOME_SERVE_RETRY_MAX_SECONDS, for as long as the alias points at it; meanwhile the
previous version, if any, keeps serving and `error` / `failure` say why and when it is
tried next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from income.features.feature_store import FEATURE_SERVICE
from income.inference.contract import check_contract
from income.inference.lookup_scorer import LookupScorer
from serving.settings import ServeSettings

log = logging.getLogger("serving")


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    scorer: LookupScorer
    loaded_at: datetime
    feature_service: str  # the one its contract names


@dataclass(frozen=True)
class LoadFailure:
    """The alias's version could not be used `attempts` times in a row; next try at `retry_at`."""

    version: str
    error: str
    attempts: int
    retry_at: float  # time.monotonic(): immune to wall-clock jumps
    next_retry_at: datetime  # the same moment on the wall clock, for /health


class ServedModel:
    """`loaded`: the version serving now (None until one loads); `error`: why the alias's is not."""

    def __init__(self, settings: ServeSettings, store, alias: str | None = None) -> None:
        self.settings = settings
        self.alias = alias or settings.alias
        self.store = store  # the Feast registry the feature contract is checked against
        self.loaded: LoadedModel | None = None
        self.error: str | None = None
        self.failure: LoadFailure | None = None
        self._client = None
        self._reload_lock = asyncio.Lock()

    def _registry(self):
        from mlflow import MlflowClient

        if self._client is None:  # one client: its store (engine, connection pool) is reused
            self._client = MlflowClient()
        return self._client

    def _alias_version(self) -> str:
        version = self._registry().get_model_version_by_alias(self.settings.model_name, self.alias)
        return str(version.version)

    def _load(self, version: str) -> LoadedModel:
        """Load one registered version, refusing one without the feature contract of what is served."""
        import mlflow

        name = self.settings.model_name
        tags = self._registry().get_model_version(name, version).tags
        # The version's own service (its contract names it): the service reads each model's features.
        service = tags.get("feature_service") or FEATURE_SERVICE
        check_contract(name, version, tags, self.store, service)
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        scorer = LookupScorer(pyfunc.unwrap_python_model().model)
        scorer.predict({f: [None] for f in scorer.model.features})  # warm up: first calls allocate
        return LoadedModel(name, version, scorer, datetime.now(UTC), service)

    def _failed(self, version: str, exc: Exception) -> LoadFailure:
        """The failure of `version` with `exc`, counted, and when to try again (doubling wait, capped)."""
        attempts = self.failure.attempts + 1 if self.failure and self.failure.version == version else 1
        doublings = min(attempts - 1, 32)  # after days of failures 2**n would overflow a float
        wait = min(self.settings.retry_seconds * 2**doublings, self.settings.retry_max_seconds)
        error = f"cannot use {self.settings.model_name} v{version}: {exc}"
        return LoadFailure(
            version, error, attempts, time.monotonic() + wait, datetime.now(UTC) + timedelta(seconds=wait)
        )

    async def refresh(self) -> None:
        """Load the version the alias points at, unless it is loaded or its next try is not due."""
        async with self._reload_lock:
            try:
                version = await asyncio.to_thread(self._alias_version)
            except Exception as exc:  # noqa: BLE001 - registry down or no alias yet: keep serving
                self.error = f"cannot resolve {self.settings.model_name}@{self.alias}: {exc}"
                log.warning(self.error)
                return
            if self.loaded and self.loaded.version == version:
                # Nothing to load; a failure of another version (the alias moved back) is moot.
                self.error, self.failure = None, None
                return
            failure = self.failure
            if failure and failure.version == version and time.monotonic() < failure.retry_at:
                self.error = failure.error  # a registry hiccup meanwhile is over
                return
            try:
                loaded = await asyncio.to_thread(self._load, version)
            except Exception as exc:  # noqa: BLE001 - a bad version must not take the service down
                self.failure = self._failed(version, exc)
                self.error = self.failure.error
                log.error(
                    "%s (attempt %d; next at %s)",
                    self.failure.error,
                    self.failure.attempts,
                    self.failure.next_retry_at.isoformat(timespec="seconds"),
                )
                return
            previous = self.loaded.version if self.loaded else None
            self.loaded, self.error, self.failure = loaded, None, None
            log.info("serving %s@%s v%s (was %s)", loaded.name, self.alias, loaded.version, previous)

    def _next_check_seconds(self) -> float:
        """Until the next alias check, or sooner when a failed version's retry falls due first."""
        if self.failure is None:
            return self.settings.reload_seconds
        return max(0.0, min(self.settings.reload_seconds, self.failure.retry_at - time.monotonic()))

    async def watch(self) -> None:
        """Refresh for ever (until cancelled), at the pace _next_check_seconds sets."""
        while True:
            await asyncio.sleep(self._next_check_seconds())
            await self.refresh()
