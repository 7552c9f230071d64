"""The service's settings (ServeSettings), read from the environment only.

`.runtime/env` fills in what the environment does not set (load_runtime_env):

| variable | default | meaning |
| --- | --- | --- |
| INCOME_SERVE_HOST / INCOME_SERVE_PORT | 127.0.0.1 / 8000 | where uvicorn listens |
| INCOME_SERVE_MODEL | income-classifier | registered model to serve |
| INCOME_SERVE_ALIAS | champion | its alias to follow |
| INCOME_SERVE_RELOAD_SECONDS | 10 | how often the alias is checked |
| INCOME_SERVE_RETRY_SECONDS | 2 | first wait before a version that failed is tried again |
| INCOME_SERVE_RETRY_MAX_SECONDS | 60 | the longest wait between two tries (doubling up to it) |
| INCOME_SERVE_VALKEY_TIMEOUT | 0.5 | seconds before Valkey counts as unreachable |
| INCOME_SERVE_ACCESS_LOG | 0 | 1: uvicorn logs every request |
| INCOME_SERVE_CHALLENGER_MODE | off | off, shadow or ab (serving.traffic) |
| INCOME_SERVE_AB_SHARE | 0.1 | in `ab` mode, the share of users the challenger answers |
| INCOME_SERVE_CHALLENGER_ALIAS | challenger | the alias of the model in the challenger's seat |
| INCOME_SERVE_PREDICTION_LOG | 1 | 0: no prediction log (income.monitoring.prediction_log) |
| INCOME_SERVE_PREDICTION_LOG_STREAM | income:prediction_log | the stream logged to (only it is drained) |
| INCOME_SERVE_FEATURE_READER | direct | direct or feast: how features are read (serving.online_features) |
| INCOME_SERVE_WORKERS | 1 | uvicorn worker processes (`python -m serving`); `make serve` runs one per core |
| VALKEY_* / MLFLOW_TRACKING_URI / FEAST_REGISTRY_PATH | see README | the services |
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from income.monitoring.prediction_log import STREAM
from income.platform.settings import ValkeySettings, load_runtime_env
from income.platform.tracking import MODEL_NAME
from income.training.registry import CHALLENGER, CHAMPION
from serving.online_features import DIRECT, READERS
from serving.traffic import MODES, OFF


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    model_name: str = MODEL_NAME
    alias: str = CHAMPION
    reload_seconds: float = 10.0
    retry_seconds: float = 2.0
    retry_max_seconds: float = 60.0
    valkey_timeout_seconds: float = 0.5
    access_log: bool = False
    challenger_mode: str = OFF
    ab_share: float = 0.1
    challenger_alias: str = CHALLENGER
    prediction_log: bool = True
    prediction_log_stream: str = STREAM
    feature_reader: str = DIRECT
    workers: int = 1
    valkey: ValkeySettings | None = None  # None: ValkeySettings.from_env() at startup

    @classmethod
    def from_env(cls) -> ServeSettings:
        load_runtime_env()
        env = os.environ
        return cls(
            host=env.get("INCOME_SERVE_HOST", cls.host),
            port=int(env.get("INCOME_SERVE_PORT", cls.port)),
            model_name=env.get("INCOME_SERVE_MODEL", cls.model_name),
            alias=env.get("INCOME_SERVE_ALIAS", cls.alias),
            reload_seconds=float(env.get("INCOME_SERVE_RELOAD_SECONDS", cls.reload_seconds)),
            retry_seconds=float(env.get("INCOME_SERVE_RETRY_SECONDS", cls.retry_seconds)),
            retry_max_seconds=float(env.get("INCOME_SERVE_RETRY_MAX_SECONDS", cls.retry_max_seconds)),
            valkey_timeout_seconds=float(env.get("INCOME_SERVE_VALKEY_TIMEOUT", cls.valkey_timeout_seconds)),
            access_log=_flag(env.get("INCOME_SERVE_ACCESS_LOG", "0")),
            challenger_mode=env.get("INCOME_SERVE_CHALLENGER_MODE", cls.challenger_mode).strip().lower(),
            ab_share=float(env.get("INCOME_SERVE_AB_SHARE", cls.ab_share)),
            challenger_alias=env.get("INCOME_SERVE_CHALLENGER_ALIAS", cls.challenger_alias),
            prediction_log=_flag(env.get("INCOME_SERVE_PREDICTION_LOG", "1")),
            prediction_log_stream=env.get("INCOME_SERVE_PREDICTION_LOG_STREAM", cls.prediction_log_stream),
            feature_reader=env.get("INCOME_SERVE_FEATURE_READER", cls.feature_reader).strip().lower(),
            workers=int(env.get("INCOME_SERVE_WORKERS", cls.workers)),
        )

    def __post_init__(self) -> None:
        if self.challenger_mode not in MODES:
            raise ValueError(
                f"INCOME_SERVE_CHALLENGER_MODE={self.challenger_mode!r}: expected one of {', '.join(MODES)}"
            )
        if self.feature_reader not in READERS:
            raise ValueError(
                f"INCOME_SERVE_FEATURE_READER={self.feature_reader!r}: expected one of {', '.join(READERS)}"
            )
        if self.workers < 1:
            raise ValueError(f"INCOME_SERVE_WORKERS={self.workers}: expected at least 1")
        if not 0.0 <= self.ab_share <= 1.0:
            raise ValueError(f"INCOME_SERVE_AB_SHARE={self.ab_share}: expected a share between 0 and 1")
