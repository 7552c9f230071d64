"""The service's side of the prediction log (income.monitoring.prediction_log): appends that
cost one Valkey round trip per burst of requests, not one per request.

A request hands its entries to `append` and waits until they are in the stream: a 200 is
answered only for logged predictions. Concurrent requests share one pipelined write (group
commit): while a write is in flight, new entries queue up and go together in the next one.
A log that cannot be written (Valkey down, timeout) fails the requests waiting on it with
ServiceUnavailable (503), never an unlogged 200.
"""

from __future__ import annotations

import asyncio
import logging

from income.monitoring.prediction_log import STREAM, encode
from income.platform.settings import ValkeySettings
from serving.errors import ServiceUnavailable

log = logging.getLogger("serving")


class PredictionLogWriter:
    def __init__(self, settings: ValkeySettings, timeout: float, stream: str = STREAM) -> None:
        self._client = settings.async_client(timeout)
        self._stream = stream
        self._address = f"{settings.host}:{settings.port}"
        self._timeout = 4 * timeout
        self._queue: list[tuple[list[bytes], asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def append(self, records: list[dict]) -> None:
        """Return once every record is in the stream; ServiceUnavailable if they cannot be."""
        done = asyncio.get_running_loop().create_future()
        self._queue.append(([encode(r) for r in records], done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        await done

    async def _write_queued(self) -> None:
        """Write what is queued, in one pipeline per round, until nothing is."""
        while self._queue:
            batch, self._queue = self._queue, []
            pipe = self._client.pipeline(transaction=False)
            for payloads, _ in batch:
                for payload in payloads:
                    pipe.xadd(self._stream, {"e": payload})
            try:
                await asyncio.wait_for(pipe.execute(), timeout=self._timeout)
            except Exception as exc:  # noqa: BLE001 - every waiting request learns why
                error = ServiceUnavailable(
                    f"prediction log (Valkey at {self._address}) not writable: {type(exc).__name__}: {exc}"
                )
                log.error("%s", error)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        await self._client.aclose()
