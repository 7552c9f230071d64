"""The lineage of a run as a picture: raw input → validation → feature set and tables → Feast →
training set → MLflow runs → model version → predictions, each box linking where it can.

Built from the records in `income.platform.lineage` (what each run read and wrote, at the time
it ran) plus what only the registry knows now (the version's aliases, the experiment of the
runs). Boxes link to the MLflow UI (`income.platform.tracking.ui_url`) and to local files with
file:// URLs; a file that a run recorded but that is gone since (an old feature set version
removed by the garbage collection, say) is drawn dashed and not linked.
"""

from __future__ import annotations

from pathlib import Path

from income.platform import lineage
from income.platform import report_html as h
from income.platform.svg_graph import Graph, Node, render
from income.platform.tracking import MODEL_NAME, model_version_page, run_page

PREDICTION_PARTITIONS = 4  # the latest partitions drawn per model version


def _short(digest: object) -> str:
    return str(digest)[:12]


def _local(uri: str) -> Path | None:
    """The local path behind `uri`, or None for object storage (s3://, gs://, ...)."""
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    return None if "://" in uri else Path(uri)


def _file_node(node_id: str, title: str, uri: str, lines: list[str], tone: str) -> Node:
    """A box for something a run wrote to `uri`: linked while it exists, dashed once it is gone."""
    path = _local(uri)
    if path is None:
        return Node(node_id, title, (*lines, uri), tone=tone)
    if not path.exists():
        return Node(node_id, title, (*lines, "(removed since)"), tone="gone")
    return Node(node_id, title, tuple(lines), href=path.resolve().as_uri(), tone=tone)


def _raw_node(raw: dict) -> Node:
    source = str(raw.get("source", "unknown"))
    lines = [source, f"sha256 {_short(raw.get('sha256', 'unknown'))}"]
    path = _local(source)
    # A generated input is described, not stored: only a file that exists gets a link.
    href = path.resolve().as_uri() if path is not None and path.is_file() else ""
    return Node("raw", "raw input", tuple(lines), href=href)


def feature_run_graph(feature_run: dict, definitions_version: str = "") -> Graph:
    """Raw input → validation → feature set version → its tables → Feast definitions and service."""
    raw = feature_run.get("raw", {})
    rows, quarantined = int(raw.get("rows", 0)), int(feature_run.get("quarantined_rows", 0))
    version = str(feature_run.get("feature_set_version", "unknown"))
    store = str(feature_run.get("offline_store", ""))
    feast_lines = [f"service {feature_run.get('feature_service', 'unknown')}"]
    if definitions_version:
        feast_lines.insert(0, f"definitions {_short(definitions_version)}")
    nodes = [
        _raw_node(raw),
        Node(
            "validation",
            "validation",
            (f"{rows:,} rows checked", f"{quarantined:,} quarantined"),
            tone="check",
        ),
        _file_node(
            "feature_set", "feature set", f"{store.rstrip('/')}/versions/{version}", [version], "data"
        ),
        Node("feast", "Feast", tuple(feast_lines), tone="feast"),
    ]
    edges = [("raw", "validation"), ("validation", "feature_set")]
    label_table = feature_run.get("label_table")
    for name, table in feature_run.get("tables", {}).items():
        nodes.append(
            _file_node(f"table:{name}", f"table {name}", table["uri"], [f"{table['rows']:,} rows"], "data")
        )
        edges.append(("feature_set", f"table:{name}"))
        if name != label_table:  # labels are the entity rows of the join, not a Feast view
            edges.append((f"table:{name}", "feast"))
    return Graph(nodes, edges)


def training_run_graph(
    training_run: dict,
    feature_run: dict,
    scorings: list[dict],
    aliases: list[str],
    experiment_id: str,
) -> Graph:
    """The feature run's graph continued: training set → MLflow parent and best run → model
    version (and its aliases now) → the prediction partitions scored with it."""
    graph = feature_run_graph(feature_run, str(training_run.get("feast_definitions_version", "")))
    nodes, edges = list(graph.nodes), list(graph.edges)
    if not feature_run:  # the feature run's record is not in this runtime's log
        nodes = [
            Node(
                "feast", "Feast", (f"service {training_run.get('feature_service', 'unknown')}",), tone="feast"
            )
        ]
        edges = []
    name = str(training_run.get("model_name", MODEL_NAME))
    version = str(training_run.get("model_version", "?"))
    data = training_run.get("training_set", {})
    parent, best = training_run.get("mlflow_parent_run_id", ""), training_run.get("mlflow_best_run_id", "")
    decision = "promoted" if training_run.get("promoted") else "not promoted"
    nodes += [
        _file_node(
            "training_set",
            "training set",
            str(data.get("uri", "")),
            [f"{int(data.get('rows', 0)):,} rows", f"sha256 {_short(data.get('sha256', ''))}"],
            "data",
        ),
        Node(
            "parent_run",
            "MLflow parent run",
            (f"run {_short(parent)}", f"Flyte {training_run.get('flyte_execution_id', '')}"),
            href=run_page(experiment_id, parent) if parent else "",
            tone="mlflow",
        ),
        Node(
            "best_run",
            "best trial run",
            (f"run {_short(best)}", str(training_run.get("model_family", ""))),
            href=run_page(experiment_id, best) if best else "",
            tone="mlflow",
        ),
        Node(
            "model",
            f"{name} v{version}",
            (decision, f"aliases: {', '.join(aliases) or 'none'}"),
            href=model_version_page(name, version),
            tone="model",
        ),
    ]
    label_table = feature_run.get("label_table")
    edges += [("feast", "training_set")]
    if label_table in feature_run.get("tables", {}):
        edges.append((f"table:{label_table}", "training_set"))
    edges += [("training_set", "parent_run"), ("parent_run", "best_run"), ("best_run", "model")]
    latest = {str(s.get("predictions")): s for s in scorings}  # a re-scored as_of replaces its partition
    for k, scoring in enumerate(list(latest.values())[-PREDICTION_PARTITIONS:]):
        verdict = "drift" if scoring.get("drifted") else "no drift"
        nodes.append(
            _file_node(
                f"predictions:{k}",
                "predictions",
                str(scoring.get("predictions", "")),
                [
                    f"as of {str(scoring.get('as_of', ''))[:16].replace('T', ' ')}",
                    f"{int(scoring.get('rows', 0)):,} rows, {verdict}",
                ],
                "output",
            )
        )
        edges.append(("model", f"predictions:{k}"))
    return Graph(nodes, edges)


def scorings_of(name: str, version: str, records: list[dict]) -> list[dict]:
    """The batch scoring records of one model version, oldest first."""
    return [
        r
        for r in records
        if r.get("kind") == "batch_scoring"
        and str(r.get("model_version")) == str(version)
        and r.get("model_name", MODEL_NAME) == name
    ]


def for_training_run(training_run: dict) -> Graph:
    """The graph of a recorded training run, with what the registry says about its version now."""
    from mlflow import MlflowClient

    records = lineage.runs()
    feature_run = next((r for r in records if r["id"] == training_run.get("feature_run_id")), {})
    name = str(training_run.get("model_name", MODEL_NAME))
    version = str(training_run.get("model_version"))
    client = MlflowClient()
    aliases = sorted(client.get_model_version(name, version).aliases)
    experiment_id = client.get_run(training_run["mlflow_parent_run_id"]).info.experiment_id
    scorings = scorings_of(name, version, records)
    return training_run_graph(training_run, feature_run, scorings, aliases, experiment_id)


def champion_run() -> dict:
    """The training run that registered the current champion (its latest record)."""
    from mlflow import MlflowClient

    from income.platform.tracking import configure

    configure()
    version = str(MlflowClient().get_model_version_by_alias(MODEL_NAME, "champion").version)
    recorded = [
        r
        for r in lineage.runs()
        if r.get("kind") == "training_pipeline"
        and str(r.get("model_version")) == version
        and r.get("model_name", MODEL_NAME) == MODEL_NAME
    ]
    if not recorded:
        raise LookupError(f"no training run in {lineage.log_uri()} registered {MODEL_NAME} v{version}")
    return recorded[-1]


def section(title: str, graph: Graph, entry: dict) -> h.Markup:
    """The picture, a line on how to read it, and the record itself below it."""
    return (
        h.heading(title, 2)
        + h.paragraph(
            "Left to right: what each step read and wrote. Blue titles link to the MLflow UI "
            "(run `make mlflow-ui`) or to the file; dashed boxes were removed since the run."
        )
        + h.Markup(f"<div style='overflow-x:auto'>{render(graph)}</div>")
        + h.heading("Record", 3)
        + lineage.html(entry)
    )
