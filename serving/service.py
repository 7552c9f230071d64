"""What the app holds while it runs: the online store, the models, the prediction log, the metrics.

Opened once at startup (`Service.open`), closed at shutdown. The champion is always
followed; the challenger only when the traffic mode is not `off` (serving.traffic).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from income.platform.settings import ValkeySettings
from income.platform.tracking import configure
from serving.errors import ServiceUnavailable
from serving.metrics import ServiceMetrics
from serving.online_features import OnlineFeatures
from serving.prediction_log import PredictionLogWriter
from serving.served_model import LoadedModel, ServedModel
from serving.settings import ServeSettings
from serving.traffic import OFF

log = logging.getLogger("serving")


@dataclass
class Service:
    settings: ServeSettings
    valkey: ValkeySettings
    features: OnlineFeatures
    champion: ServedModel
    challenger: ServedModel | None  # None: traffic mode `off`
    log: PredictionLogWriter | None  # None: INCOME_SERVE_PREDICTION_LOG=0
    metrics: ServiceMetrics
    _watchers: list[asyncio.Task] | None = None

    @classmethod
    async def open(cls, settings: ServeSettings, metrics: ServiceMetrics) -> Service:
        valkey = settings.valkey or ValkeySettings.from_env()
        configure()
        features = await OnlineFeatures.open(valkey, settings.valkey_timeout_seconds, settings.feature_reader)
        champion = ServedModel(settings, features.store)
        challenger = None
        if settings.challenger_mode != OFF:
            challenger = ServedModel(settings, features.store, alias=settings.challenger_alias)
        for served in filter(None, (champion, challenger)):
            await served.refresh()
        try:  # warm the read path (registry cache, connection); Valkey may be down: fine
            await features.read([1])
        except ServiceUnavailable as exc:
            log.warning("%s", exc)
        writer = None
        if settings.prediction_log:
            writer = PredictionLogWriter(
                valkey, settings.valkey_timeout_seconds, settings.prediction_log_stream
            )
        service = cls(settings, valkey, features, champion, challenger, writer, metrics)
        service._watchers = [asyncio.create_task(s.watch()) for s in filter(None, (champion, challenger))]
        return service

    def challenger_model(self) -> LoadedModel | None:
        """The challenger to route to, or None: none loaded, or it is the champion's own version."""
        if self.challenger is None or self.challenger.loaded is None:
            return None
        champion = self.champion.loaded
        if champion is not None and champion.version == self.challenger.loaded.version:
            return None
        return self.challenger.loaded

    async def close(self) -> None:
        for watcher in self._watchers or []:
            watcher.cancel()
        if self.log is not None:
            await self.log.close()
        await self.features.close()
