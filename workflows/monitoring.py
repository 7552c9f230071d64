"""Monitoring: prediction log -> offline store, outcomes joined, live metrics, the experiment's decision.

pyflyte run workflows/monitoring.py monitoring
pyflyte run workflows/monitoring.py monitoring --cfg '{"mode": "shadow", "minimal_effect": 0.02}'
pyflyte run workflows/monitoring.py monitoring --cfg '{"fail_on_alert": true}'   # non-zero exit on any alert
"""

from __future__ import annotations

from typing import NamedTuple

from flytekit import workflow

from tasks.monitoring import (
    LiveSummary,
    MonitoringConfig,
    MonitorSummary,
    drain_prediction_log,
    live_metrics_report,
    monitor_predictions,
)


class MonitoringOutcome(NamedTuple):
    live: LiveSummary
    alerts: MonitorSummary


@workflow
def monitoring(cfg: MonitoringConfig = MonitoringConfig()) -> MonitoringOutcome:
    """Drain the service's prediction log; measure each model version on live outcomes; check the
    champion's recent predictions against its training reference."""
    drained = drain_prediction_log()
    live = live_metrics_report(cfg=cfg, drained=drained)
    alerts = monitor_predictions(cfg=cfg, drained=drained)
    return MonitoringOutcome(live=live, alerts=alerts)
