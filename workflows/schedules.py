"""Launch plans with schedules for a Flyte cluster (registered with the workflows).

Times are UTC. Each scheduled run receives its kickoff time as an input, so what it does
is defined by the schedule, not by when it happens to start: the daily feature run at
day D ingests the batch of day D-1 (the synthetic day, or the file for that date in the
landing folder) and publishes features true as of its kickoff; the same date twice is a
no-op. Batch scoring follows two hours later, as of its own kickoff time; training runs
weekly on the labels that had arrived by its kickoff and promotes only a better model.
Monitoring runs hourly: it drains the service's prediction log into the offline store and
measures every model version on the outcomes that have arrived (workflows/monitoring.py).
"""

from __future__ import annotations

from flytekit import CronSchedule, LaunchPlan

from workflows.batch_scoring import batch_scoring
from workflows.feature_pipeline import feature_pipeline
from workflows.monitoring import monitoring
from workflows.training_pipeline import training_pipeline

FEATURES_DAILY = "0 2 * * *"
TRAINING_WEEKLY = "0 3 * * 0"
SCORING_DAILY = "0 4 * * *"
MONITORING_HOURLY = "15 * * * *"

feature_pipeline_daily = LaunchPlan.get_or_create(
    feature_pipeline,
    name="feature_pipeline_daily",
    schedule=CronSchedule(schedule=FEATURES_DAILY, kickoff_time_input_arg="run_time"),
)
training_pipeline_weekly = LaunchPlan.get_or_create(
    training_pipeline,
    name="training_pipeline_weekly",
    schedule=CronSchedule(schedule=TRAINING_WEEKLY, kickoff_time_input_arg="as_of"),
)
batch_scoring_daily = LaunchPlan.get_or_create(
    batch_scoring,
    name="batch_scoring_daily",
    schedule=CronSchedule(schedule=SCORING_DAILY, kickoff_time_input_arg="run_time"),
)
monitoring_hourly = LaunchPlan.get_or_create(
    monitoring, name="monitoring_hourly", schedule=CronSchedule(schedule=MONITORING_HOURLY)
)
