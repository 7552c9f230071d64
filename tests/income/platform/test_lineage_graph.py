"""The lineage graph built from lineage records: every step in order, links where they lead somewhere."""

from __future__ import annotations

import pytest

from income.platform.lineage_graph import feature_run_graph, scorings_of, training_run_graph


@pytest.fixture
def records(tmp_path, monkeypatch):
    """A feature run and a training run as the pipelines record them, over real files in tmp_path."""
    monkeypatch.setenv("MLFLOW_UI_URL", "http://mlflow.example:5000/")
    store = tmp_path / "offline_store"
    version = "20260101T000000Z-abc"
    tables = {}
    for name in ("demographic", "history", "labels"):
        folder = store / "versions" / version / name
        folder.mkdir(parents=True)
        tables[name] = {"uri": str(folder), "rows": 1200}
    raw = tmp_path / "adult.csv"
    raw.write_text("age\n1\n")
    feature_run = {
        "id": "f1",
        "kind": "feature_pipeline",
        "raw": {"source": str(raw), "sha256": "ab" * 32, "rows": 1250},
        "quarantined_rows": 50,
        "offline_store": str(store),
        "feature_set_version": version,
        "tables": tables,
        "feature_service": "income_v1",
        "label_table": "labels",
    }
    training_set = tmp_path / "training_set.parquet"
    training_set.write_bytes(b"PAR1")
    training_run = {
        "id": "t1",
        "kind": "training_pipeline",
        "flyte_execution_id": "local-1",
        "feature_run_id": "f1",
        "feature_service": "income_v1",
        "feast_definitions_version": "d3f",
        "training_set": {"uri": str(training_set), "rows": 900, "sha256": "cd" * 32},
        "mlflow_parent_run_id": "parent123",
        "mlflow_best_run_id": "best456",
        "model_name": "income-classifier",
        "model_family": "xgboost",
        "model_version": "3",
        "promoted": True,
    }
    return feature_run, training_run, tmp_path


def test_a_feature_run_goes_from_raw_input_through_its_tables_to_feast(records):
    feature_run, _, tmp_path = records
    graph = feature_run_graph(feature_run, definitions_version="d3f")
    nodes = {n.id: n for n in graph.nodes}
    assert set(graph.edges) == {
        ("raw", "validation"),
        ("validation", "feature_set"),
        ("feature_set", "table:demographic"),
        ("feature_set", "table:history"),
        ("feature_set", "table:labels"),
        ("table:demographic", "feast"),
        ("table:history", "feast"),  # the label table is no Feast view
    }
    assert nodes["raw"].href == (tmp_path / "adult.csv").as_uri()
    assert nodes["validation"].lines == ("1,250 rows checked", "50 quarantined")
    assert (
        nodes["table:labels"].href
        == (tmp_path / "offline_store/versions/20260101T000000Z-abc/labels").as_uri()
    )
    assert nodes["table:labels"].lines == ("1,200 rows",)
    assert nodes["feast"].lines == ("definitions d3f", "service income_v1")


def test_a_training_run_continues_to_its_runs_model_and_predictions(records):
    feature_run, training_run, tmp_path = records
    partition = tmp_path / "predictions" / "as_of=2026-01-01T00-00-00Z"
    partition.mkdir(parents=True)
    scoring = {"kind": "batch_scoring", "predictions": str(partition), "as_of": "2026-01-01T00:00:00+00:00"}
    scorings = [{**scoring, "rows": 10, "drifted": True}, {**scoring, "rows": 11, "drifted": False}]
    graph = training_run_graph(training_run, feature_run, scorings, ["champion"], "7")
    nodes = {n.id: n for n in graph.nodes}
    assert {
        ("table:labels", "training_set"),
        ("feast", "training_set"),
        ("training_set", "parent_run"),
        ("parent_run", "best_run"),
        ("best_run", "model"),
        ("model", "predictions:0"),
    } <= set(graph.edges)
    assert nodes["parent_run"].href == "http://mlflow.example:5000/#/experiments/7/runs/parent123"
    assert nodes["best_run"].href == "http://mlflow.example:5000/#/experiments/7/runs/best456"
    assert nodes["model"].href == "http://mlflow.example:5000/#/models/income-classifier/versions/3"
    assert nodes["model"].title == "income-classifier v3"
    assert nodes["model"].lines == ("promoted", "aliases: champion")
    assert nodes["training_set"].lines == ("900 rows", "sha256 cdcdcdcdcdcd")
    # The same partition scored twice is one partition: the later run replaced it.
    predictions = [n for n in graph.nodes if n.id.startswith("predictions:")]
    assert [n.lines for n in predictions] == [("as of 2026-01-01 00:00", "11 rows, no drift")]
    assert predictions[0].href == partition.as_uri()


def test_what_is_gone_is_drawn_dashed_and_what_is_remote_is_named_not_linked(records):
    feature_run, training_run, tmp_path = records
    (tmp_path / "training_set.parquet").unlink()
    feature_run["tables"]["history"]["uri"] = "s3://bucket/versions/v/history"
    feature_run["raw"]["source"] = "synthetic(users=600, seed=11)"
    nodes = {n.id: n for n in training_run_graph(training_run, feature_run, [], [], "0").nodes}
    assert (nodes["training_set"].tone, nodes["training_set"].href) == ("gone", "")
    assert nodes["training_set"].lines[-1] == "(removed since)"
    assert (
        nodes["table:history"].href == "" and "s3://bucket/versions/v/history" in nodes["table:history"].lines
    )
    assert nodes["raw"].href == "" and nodes["raw"].tone == "data"  # generated, not a missing file


def test_scorings_are_those_of_the_model_name_and_version():
    runs = [
        {"kind": "batch_scoring", "model_name": "income-classifier", "model_version": "1", "id": "a"},
        {"kind": "batch_scoring", "model_name": "other-model", "model_version": "1", "id": "b"},
        {"kind": "batch_scoring", "model_name": "income-classifier", "model_version": "2", "id": "c"},
        {"kind": "training_pipeline", "model_name": "income-classifier", "model_version": "1", "id": "d"},
    ]
    assert [r["id"] for r in scorings_of("income-classifier", "1", runs)] == ["a"]
