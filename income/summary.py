"""`python -m income.summary`: where a run's outputs are, and how big they are.

Everything is read from the stores (the offline store and its reports, the Feast registry,
Valkey, MLflow), so the summary is the same wherever the tasks ran.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from income.data.schema import FEATURE_TABLES, LABEL_TABLE
from income.features.materialize import MARKER_PREFIX
from income.features.offline_store import current_or_none
from income.platform.files import filesystem_and_path, is_remote, list_files, parquet_files, read_text
from income.platform.settings import (
    ValkeySettings,
    feast_registry_location,
    load_runtime_env,
    offline_store_uri,
    predictions_uri,
    reports_uri,
)


def _rows(uri: str) -> int:
    """Rows of the parquet files under `uri` (a file or a folder, local or on object storage)."""
    rows = 0
    for file in parquet_files(uri):
        filesystem, path = filesystem_and_path(file)
        with filesystem.open_input_file(path) as handle:
            rows += pq.ParquetFile(handle).metadata.num_rows
    return rows


def _print_champion() -> None:
    """The registered champion and its scores, when a training run has happened."""
    from income.platform.tracking import MODEL_NAME, tracking_uri

    uri = tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return
    from mlflow import MlflowClient

    from income.platform.tracking import configure

    configure()
    client = MlflowClient()
    try:
        champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    except Exception:  # noqa: BLE001 - no champion yet
        print("\nModel registry: no champion yet (run the training pipeline)")
        return
    metrics = client.get_run(champion.run_id).data.metrics
    tags = champion.tags
    # The registered run is the best trial refit on training + validation rows: its validation
    # score is the trial's (older versions were the trial itself).
    trial = client.get_run(tags["trial_run_id"]).data.metrics if "trial_run_id" in tags else metrics
    print(f"\nModel registry   {MODEL_NAME} champion v{champion.version} ({tags.get('model_family')})")
    print(
        f"  test ROC AUC {metrics['test_roc_auc']:.4f}, accuracy {metrics['test_accuracy']:.4f}, "
        f"F1 {metrics['test_f1']:.4f} (validation ROC AUC {trial['val_roc_auc']:.4f})"
    )
    if "decision_threshold" in tags:
        print(
            f"  decision threshold {float(tags['decision_threshold']):.3f} "
            f"(best {tags['threshold_criterion']} on validation), calibration: {tags['calibration']}"
        )
    print(f"  promoted because: {tags.get('promotion.reason', 'n/a')}")
    print("  MLflow UI: make mlflow-ui  ·  rollback: make rollback")


def _print_scoring() -> None:
    """Batch predictions and the demo's online prediction, when they exist."""
    import json

    from pyarrow import fs as pafs

    predictions = predictions_uri()
    filesystem, path = filesystem_and_path(predictions)
    folders = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    partitions = sorted(f.base_name for f in folders if f.type == pafs.FileType.Directory)
    partitions = [p for p in partitions if p.startswith("as_of=")]
    if partitions:
        print(f"\nBatch scoring     {len(partitions)} partition(s) in {predictions}")
        latest = partitions[-1]
        print(f"  latest          {latest} ({_rows(f'{predictions}/{latest}'):,} predictions)")
    reports = list_files(reports_uri(), ".html")
    drift = sorted((modified, uri) for uri, modified in reports if "/drift-" in uri)
    if drift:
        print(f"  drift report    {drift[-1][1]}")
    answer = read_text(f"{reports_uri()}/demo-prediction.json")
    if answer:
        body = json.loads(answer)
        first = (body.get("predictions") or [body])[0]
        print(
            f"\nOnline /predict   user {first.get('user_id')}: probability {first.get('probability'):.4f}, "
            f"label {first.get('label')}, model v{first.get('model_version')}"
        )


def main() -> None:
    load_runtime_env()
    root = offline_store_uri()
    here = Path.cwd()

    def show(uri: str) -> str:
        """A local path relative to the working directory when it is below it; a URI as it is."""
        path = Path(uri)
        return str(path.relative_to(here)) if not is_remote(uri) and path.is_relative_to(here) else uri

    print("\nFeature pipeline outputs")
    published = current_or_none(root)
    print(
        f"  offline store    {show(root)}, feature set {published.version if published else 'none published'}"
    )
    for table in [*FEATURE_TABLES, LABEL_TABLE] if published else []:
        print(f"    {table:<14} {published.tables[table].rows:>10,} rows")
    quarantined = _rows(f"{root.rstrip('/')}/quarantine")
    if quarantined:
        print(f"  quarantine       {show(root.rstrip('/') + '/quarantine')} ({quarantined:,} rows)")
    registry = feast_registry_location()
    print(f"  Feast registry   {show(registry)} (feature service income_v1)")
    try:
        valkey = ValkeySettings.from_env()
        client = valkey.client()
        markers = sum(1 for _ in client.scan_iter(match=f"{MARKER_PREFIX}:*"))
        users = client.dbsize() - markers
        print(f"  online store     Valkey {valkey.host}:{valkey.port}, {users:,} users (the scoreable ones)")
    except Exception as exc:  # noqa: BLE001 - a summary reports, it does not fail
        print(f"  online store     not reachable ({exc})")
    for report, _ in list_files(reports_uri(), ".html"):
        if "/drift-" not in report:  # one per as_of: the latest is shown below
            print(f"  report           {show(report)}")
    _print_champion()
    _print_scoring()
    print(
        "\nExplore: `make feast-ui`, or in a shell: set -a; . .runtime/env; set +a; "
        "cd feature_repo; feast feature-views list"
    )


if __name__ == "__main__":
    main()
