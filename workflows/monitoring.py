"""Monitoring: prediction log -> offline store, outcomes joined, live metrics, the experiment's decision.

pyflyte run workflows/monitoring.py monitoring
pyflyte run workflows/monitoring.py monitoring --cfg '{"mode": "shadow", "minimal_effect": 0.02}'
"""

from __future__ import annotations

from flytekit import workflow

from tasks.monitoring import LiveSummary, MonitoringConfig, drain_prediction_log, live_metrics_report


@workflow
def monitoring(cfg: MonitoringConfig = MonitoringConfig()) -> LiveSummary:
    """Drain the service's prediction log, then measure each model version on live outcomes."""
    drained = drain_prediction_log()
    return live_metrics_report(cfg=cfg, drained=drained)
