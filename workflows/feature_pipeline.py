"""Feature pipeline: raw records -> validation -> Spark features -> offline store -> Feast -> Valkey.

pyflyte run workflows/feature_pipeline.py feature_pipeline
pyflyte run workflows/feature_pipeline.py feature_pipeline --raw_csv ../shared/data/adult/adult_train.csv
"""

from __future__ import annotations

from flytekit import workflow
from flytekit.types.file import FlyteFile

from tasks.config import FeaturePipelineConfig
from tasks.data import load_raw_records, validate_raw_records
from tasks.features import PublishedFeatures, build_features, publish_features


@workflow
def feature_pipeline(
    raw_csv: FlyteFile | None = None, cfg: FeaturePipelineConfig = FeaturePipelineConfig()
) -> PublishedFeatures:
    raw = load_raw_records(raw_csv=raw_csv, cfg=cfg)
    checked = validate_raw_records(records=raw.records, source=raw.source, cfg=cfg)
    tables = build_features(valid=checked.valid)
    return publish_features(
        tables=tables, raw_source=raw.source, raw_sha256=raw.sha256, validation=checked.summary, cfg=cfg
    )
