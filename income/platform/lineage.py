"""Lineage: what each pipeline run read and wrote, from raw input to predictions.

Each run leaves one JSON record in the offline store (`<offline store>/lineage/runs/`, one object
per record, so that tasks on separate machines and an object store need no shared file to
append to); the feature pipeline also
leaves `_lineage.json` in the feature set version it publishes, so whatever reads the published
tables (training, batch scoring) knows which raw input and which feature run produced them, and
copies that onto its MLflow run and model version tags (`lineage.*`).

    python -m income.platform.lineage champion   # which raw data and features produced the champion?
    python -m income.platform.lineage runs       # the latest pipeline runs
"""

from __future__ import annotations

import hashlib
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from income.platform import report_html
from income.platform.files import list_files, read_text, write_text_atomically
from income.platform.settings import in_offline_store, load_runtime_env, reports_uri

MANIFEST = "_lineage.json"


def content_hash(df: pd.DataFrame) -> str:
    """sha256 of a table's values (row order and dtypes included), stable across runs."""
    hashes = pd.util.hash_pandas_object(df, index=False).to_numpy()
    return hashlib.sha256(hashes.tobytes() + ",".join(df.columns).encode()).hexdigest()


def file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def log_uri() -> str:
    """The folder of the records: <offline store>/lineage/runs."""
    return in_offline_store("lineage/runs")


def record(kind: str, **facts) -> dict:
    """Write a lineage record as an object of its own; returns it (with its id and time).

    The object's name starts with the time, so the names sort the records in the order they
    were made; it is written atomically, so a reader never meets half a record.
    """
    now = datetime.now(UTC)
    entry = {"id": uuid.uuid4().hex[:12], "kind": kind, "at": now.isoformat(), **facts}
    name = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{entry['id']}.json"
    write_text_atomically(f"{log_uri()}/{name}", json.dumps(entry, default=str))
    return entry


def write_manifest(version_folder: str, entry: dict) -> None:
    """Leave the feature run's lineage in the feature set version it wrote (atomic replace)."""
    write_text_atomically(
        f"{version_folder.rstrip('/')}/{MANIFEST}", json.dumps(entry, indent=2, default=str)
    )


def read_manifest(version_folder: str) -> dict:
    """The lineage a feature run left in its feature set version; {} when there is none."""
    text = read_text(f"{version_folder.rstrip('/')}/{MANIFEST}")
    return json.loads(text) if text else {}


def runs() -> list[dict]:
    """Every record, oldest first."""
    texts = (read_text(uri) for uri, _ in list_files(log_uri(), ".json"))
    return [json.loads(text) for text in texts if text]


def as_tags(feature_run: dict) -> dict[str, str]:
    """The feature run's lineage as flat MLflow tags."""
    raw = feature_run.get("raw", {})
    return {
        "lineage.feature_run_id": str(feature_run.get("id", "unknown")),
        "lineage.raw_source": str(raw.get("source", "unknown")),
        "lineage.raw_sha256": str(raw.get("sha256", "unknown")),
        "lineage.offline_store": str(feature_run.get("offline_store", "unknown")),
        "lineage.feature_set_version": str(feature_run.get("feature_set_version", "unknown")),
    }


def flat(entry: dict, prefix: str = "") -> list[tuple[str, str]]:
    """A record's facts as (dotted key, value) pairs: nested facts get a key each."""
    pairs = []
    for key, value in entry.items():
        if isinstance(value, dict) and value:
            pairs += flat(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", str(value)))
    return pairs


def html(entry: dict) -> str:
    return report_html.key_values((k, report_html.code(v)) for k, v in flat(entry))


def champion_chain() -> list[tuple[str, str]]:
    """From the champion model version back to the raw input."""
    from mlflow import MlflowClient

    from income.platform.tracking import MODEL_NAME, configure

    configure()
    version = MlflowClient().get_model_version_by_alias(MODEL_NAME, "champion")
    tags = version.tags
    feature_run = next((r for r in runs() if r["id"] == tags.get("lineage.feature_run_id")), {})
    chain = [
        ("model", f"{MODEL_NAME} v{version.version} (champion), {tags.get('model_family')}"),
        ("MLflow run", version.run_id),
        ("Flyte execution", tags.get("flyte_execution_id", "unknown")),
        ("git commit", tags.get("git_commit", "unknown")),
        ("training set", f"{tags.get('training_set_uri')} ({tags.get('training_set_rows')} rows)"),
        ("training set sha256", tags.get("training_set_sha256", "unknown")),
        (
            "feature service",
            f"{tags.get('feature_service')} (Feast definitions {tags.get('feast_definitions_version')})",
        ),
        ("feature run", tags.get("lineage.feature_run_id", "unknown")),
        ("feature set", tags.get("lineage.feature_set_version", "unknown")),
    ]
    for table, info in feature_run.get("tables", {}).items():
        chain.append((f"  table {table}", f"{info['uri']} ({info['rows']:,} rows)"))
    chain += [
        ("raw input", tags.get("lineage.raw_source", "unknown")),
        ("raw sha256", tags.get("lineage.raw_sha256", "unknown")),
    ]
    scored = [
        r
        for r in runs()
        if r["kind"] == "batch_scoring"
        and str(r.get("model_version")) == str(version.version)
        and r.get("model_name", MODEL_NAME) == MODEL_NAME
    ]
    if scored:
        chain.append(("latest predictions", scored[-1].get("predictions", "unknown")))
    return chain


def write_champion_page() -> str:
    """The champion's lineage graph as lineage-champion.html among the reports; returns its URI."""
    # lineage_graph reads this module's records: imported here, where both are loaded
    from income.platform import lineage_graph

    entry = lineage_graph.champion_run()
    body = lineage_graph.section(
        f"Lineage of the champion, v{entry.get('model_version')}",
        lineage_graph.for_training_run(entry),
        entry,
    )
    uri = f"{reports_uri()}/lineage-champion.html"
    write_text_atomically(uri, report_html.page("Lineage of the champion", body))
    return uri


def main(argv: list[str]) -> None:
    load_runtime_env()
    if argv == ["champion"]:
        for key, value in champion_chain():
            print(f"{key:<22} {value}")
        print(f"\nas a picture: {write_champion_page()}")
    elif argv == ["runs"]:
        for entry in runs()[-20:]:
            print(json.dumps(entry, default=str))
    else:
        sys.exit("usage: python -m income.platform.lineage {champion|runs}")


if __name__ == "__main__":
    main(sys.argv[1:])
