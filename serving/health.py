"""The /health answer: which model version serves (or why none does) and whether Valkey answers."""

from __future__ import annotations

import asyncio

import valkey.asyncio

from income.platform.settings import ValkeySettings
from serving.schemas import HealthResponse, ModelStatus, ValkeyStatus
from serving.served_model import ServedModel


async def health_report(
    served: ServedModel, valkey_settings: ValkeySettings, timeout: float
) -> HealthResponse:
    """Status "ok" only when a model is loaded and Valkey answers within `timeout` seconds."""
    model, failure = served.loaded, served.failure
    status = ModelStatus(
        name=served.settings.model_name,
        alias=served.settings.alias,
        version=model.version if model else None,
        loaded_at=model.loaded_at if model else None,
        fast_path=model.scorer.uses_lookups if model else None,
        error=served.error,
        failed_version=failure.version if failure else None,
        failed_attempts=failure.attempts if failure else 0,
        next_retry_at=failure.next_retry_at if failure else None,
    )
    valkey_status = await ping_valkey(valkey_settings, timeout)
    ok = model is not None and valkey_status.ok
    return HealthResponse(status="ok" if ok else "unavailable", model=status, valkey=valkey_status)


async def ping_valkey(settings: ValkeySettings, timeout: float) -> ValkeyStatus:
    """PING over a new connection of the project's own Valkey client, timed."""
    address = f"{settings.host}:{settings.port}"
    client = valkey.asyncio.Valkey(
        host=settings.host,
        port=settings.port,
        password=settings.password or None,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    started = asyncio.get_running_loop().time()
    try:
        await asyncio.wait_for(client.ping(), timeout)
        latency = (asyncio.get_running_loop().time() - started) * 1000
        return ValkeyStatus(ok=True, address=address, latency_ms=round(latency, 3))
    except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
        return ValkeyStatus(ok=False, address=address, error=f"{type(exc).__name__}: {exc or 'timed out'}")
    finally:
        await client.aclose()
