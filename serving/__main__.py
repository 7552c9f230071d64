"""`python -m serving`: run the service with uvicorn on INCOME_SERVE_HOST:INCOME_SERVE_PORT."""

from __future__ import annotations

import logging

import uvicorn

from serving.app import create_app
from serving.settings import ServeSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = ServeSettings.from_env()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=settings.access_log,
        log_level="info",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
