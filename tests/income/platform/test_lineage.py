"""A feature run's lineage travels inside the feature set version it published, wherever the store is."""

from __future__ import annotations

import pandas as pd

from income.features.offline_store import current, publish_pandas_tables
from income.platform import lineage
from income.platform.settings import offline_store_uri


def test_the_manifest_is_written_and_read_in_a_version_on_object_storage(s3_bucket, monkeypatch):
    monkeypatch.setenv("INCOME_OFFLINE_STORE", f"{s3_bucket}/offline_store")
    root = offline_store_uri()
    labels = pd.DataFrame({"user_id": pd.Series([1], dtype="int64")})
    published = publish_pandas_tables(root, {"labels": labels})
    entry = {
        "id": "0123456789ab",
        "kind": "feature_pipeline",
        "raw": {"source": "synthetic", "sha256": "f" * 64},
        "offline_store": root,
        "feature_set_version": published.version,
    }

    lineage.write_manifest(published.folder, entry)

    assert published.folder.startswith(f"{s3_bucket}/offline_store/versions/")
    assert lineage.read_manifest(current(root).folder) == entry
    assert lineage.as_tags(lineage.read_manifest(current(root).folder))["lineage.raw_sha256"] == "f" * 64
    assert lineage.read_manifest(f"{root}/versions/none") == {}
