"""The service as its own process (`python -m serving`), for tests that need a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


@contextmanager
def service_process(**settings: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, process) of the service on a free loopback port with `settings` (INCOME_SERVE_*
    variables) over the environment, once /health answers 200; stopped afterwards if still running."""
    from income.platform.valkey_server import free_port

    port = free_port()
    env = {**os.environ, "INCOME_SERVE_PORT": str(port), **settings}
    server = subprocess.Popen([sys.executable, "-m", "serving"], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # two workers load Feast and the models: slow when busy
        while not _healthy(base):
            assert server.poll() is None and time.monotonic() < deadline, (
                f"the service did not start on {base}"
            )
            time.sleep(0.3)
        yield base, server
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
