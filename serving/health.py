"""The /health answer: which model version serves (or why none does) and whether Valkey answers."""

from __future__ import annotations

import asyncio
import os

from income.platform.settings import ValkeySettings
from serving.schemas import FeaturesStatus, HealthResponse, ModelStatus, TrafficStatus, ValkeyStatus
from serving.served_model import ServedModel
from serving.service import Service


def model_status(served: ServedModel) -> ModelStatus:
    model, failure = served.loaded, served.failure
    return ModelStatus(
        name=served.settings.model_name,
        alias=served.alias,
        version=model.version if model else None,
        loaded_at=model.loaded_at if model else None,
        fast_path=model.scorer.uses_lookups if model else None,
        runtime=model.scorer.runtime if model else None,
        error=served.error,
        failed_version=failure.version if failure else None,
        failed_attempts=failure.attempts if failure else 0,
        next_retry_at=failure.next_retry_at if failure else None,
    )


async def health_report(service: Service) -> HealthResponse:
    """Status "ok" only when a champion is loaded and Valkey answers within the service's timeout.

    A challenger that cannot be loaded is reported, not fatal: the champion answers everyone.
    """
    settings = service.settings
    valkey_status = await ping_valkey(service.valkey, settings.valkey_timeout_seconds)
    ok = service.champion.loaded is not None and valkey_status.ok
    traffic = TrafficStatus(
        mode=settings.challenger_mode,
        ab_share=settings.ab_share,
        active=service.challenger_model() is not None,
        prediction_log=service.log is not None,
    )
    return HealthResponse(
        status="ok" if ok else "unavailable",
        model=model_status(service.champion),
        challenger=model_status(service.challenger) if service.challenger else None,
        traffic=traffic,
        features=FeaturesStatus(reader=service.features.reader, note=service.features.reader_note),
        valkey=valkey_status,
        process_id=os.getpid(),
    )


async def ping_valkey(settings: ValkeySettings, timeout: float) -> ValkeyStatus:
    """PING over a new connection of the project's own Valkey client, timed."""
    address = f"{settings.host}:{settings.port}"
    client = settings.async_client(timeout)
    started = asyncio.get_running_loop().time()
    try:
        await asyncio.wait_for(client.ping(), timeout)
        latency = (asyncio.get_running_loop().time() - started) * 1000
        return ValkeyStatus(ok=True, address=address, latency_ms=round(latency, 3))
    except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
        return ValkeyStatus(ok=False, address=address, error=f"{type(exc).__name__}: {exc or 'timed out'}")
    finally:
        await client.aclose()
