"""Launch plans with schedules for a Flyte cluster (registered with the workflows).

Times are UTC. Features land daily; batch scoring follows them two hours later; the
training pipeline retrains weekly and promotes only a better model.
"""

from __future__ import annotations

from flytekit import CronSchedule, LaunchPlan

from workflows.batch_scoring import batch_scoring
from workflows.feature_pipeline import feature_pipeline
from workflows.training_pipeline import training_pipeline

FEATURES_DAILY = "0 2 * * *"
TRAINING_WEEKLY = "0 3 * * 0"
SCORING_DAILY = "0 4 * * *"

feature_pipeline_daily = LaunchPlan.get_or_create(
    feature_pipeline, name="feature_pipeline_daily", schedule=CronSchedule(schedule=FEATURES_DAILY)
)
training_pipeline_weekly = LaunchPlan.get_or_create(
    training_pipeline, name="training_pipeline_weekly", schedule=CronSchedule(schedule=TRAINING_WEEKLY)
)
batch_scoring_daily = LaunchPlan.get_or_create(
    batch_scoring, name="batch_scoring_daily", schedule=CronSchedule(schedule=SCORING_DAILY)
)
