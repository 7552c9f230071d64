"""Feature pipeline: a batch -> raw history -> Spark features -> offline store -> Feast -> Valkey.

pyflyte run workflows/feature_pipeline.py feature_pipeline
pyflyte run workflows/feature_pipeline.py feature_pipeline --run_time 2026-07-02T02:00:00Z
pyflyte run workflows/feature_pipeline.py feature_pipeline --batch_file ../shared/data/adult/adult_train.csv
"""

from __future__ import annotations

from datetime import datetime

from flytekit import workflow
from flytekit.types.file import FlyteFile

from tasks.config import FeaturePipelineConfig
from tasks.data import ingest_batch
from tasks.features import PublishedFeatures, build_features, publish_features


@workflow
def feature_pipeline(
    run_time: datetime | None = None,
    batch_file: FlyteFile | None = None,
    cfg: FeaturePipelineConfig = FeaturePipelineConfig(),
) -> PublishedFeatures:
    """Ingest one batch (`batch_file`, else the synthetic day before `run_time`); publish features."""
    ingested = ingest_batch(run_time=run_time, batch_file=batch_file, cfg=cfg)
    tables = build_features(ingested=ingested, cfg=cfg)
    return publish_features(tables=tables, ingested=ingested, cfg=cfg)
