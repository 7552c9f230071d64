"""`python -m serving`: run the service with uvicorn on INCOME_SERVE_HOST:INCOME_SERVE_PORT.

INCOME_SERVE_WORKERS=N runs N worker processes on the one port (`make serve`: one per core),
each a whole service (its own Valkey connections, models and prediction-log writer). Their
metrics are added up through prometheus-client's multiprocess mode (serving.metrics): the
directory it needs is made here, empty, before the workers start, and removed after.
"""

from __future__ import annotations

import logging
import os
import tempfile

import uvicorn

from serving.app import create_app
from serving.metrics import MULTIPROC_DIRS, WORKERS_DIR
from serving.settings import ServeSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = ServeSettings.from_env()
    options = {
        "host": settings.host,
        "port": settings.port,
        "access_log": settings.access_log,
        "log_level": "info",
        "timeout_graceful_shutdown": 5,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    with tempfile.TemporaryDirectory(prefix="income-serve-metrics-") as folder:
        # Inherited by the workers, and read when they import prometheus-client.
        os.environ.update(dict.fromkeys((WORKERS_DIR, *MULTIPROC_DIRS), folder))
        # The workers build their app themselves (create_app reads the same settings from the environment).
        uvicorn.run("serving.app:create_app", factory=True, workers=settings.workers, **options)


if __name__ == "__main__":
    main()
