"""A tiny simulation through the same driver as `make simulate`: days run, the timeline report is written."""

from __future__ import annotations

import pytest

from income import timeline

pytestmark = pytest.mark.integration

DAYS = 3


@pytest.fixture(scope="module")
def simulation(pipeline_env, spark):
    from income.platform.settings import runtime_dir
    from workflows.simulate import SimulationConfig, simulate

    cfg = SimulationConfig(days=DAYS, users=300, drift_day=1, trials=2, train_every=0, valkey_db=7)
    base = runtime_dir()
    return base, simulate(cfg, base / "simulation", base / "reports" / "timeline.html", echo=lambda _: None)


def test_the_timeline_report_has_its_sections(simulation):
    _, result = simulation
    page = result.report.read_text()
    for section in [
        "Simulation timeline",
        "Verdict",
        "Ingestion",
        "Drift",
        "Model quality and promotions",
        "Per day",
    ]:
        assert section in page
    assert page.count("data:image/png;base64,") == 6
    assert result.mlflow_run_id


def test_one_row_per_day_with_every_measurement(simulation):
    _, result = simulation
    table = result.table
    assert list(table["day"]) == list(range(DAYS))
    measured = [
        "records",
        "scored",
        "champion_version",
        "prediction_psi_vs_day0",
        "auc_labels",
        "seconds_total",
    ]
    assert table[measured].notna().all().all()
    assert (table["records"] > 0).all() and (table["scored"] > 0).all()
    assert table.loc[0, "promoted"] and table.loc[0, "promotion_reason"]
    assert (table.loc[1:, "labels"] > 0).all(), "labels-only batches arrive every later day"
    assert table[[c for c in table.columns if c.startswith(timeline.RECORD_PSI)]].notna().all().all()
    assert result.spark_applications == 1, "one SparkSession for the whole simulation"
    assert len(result.csv.read_text().splitlines()) == DAYS + 1


def test_the_simulation_leaves_the_environment_as_it_was(simulation, pipeline_env):
    import os

    base, _ = simulation
    assert os.environ["INCOME_RUNTIME"] == str(base)
    assert "VALKEY_DB" not in os.environ or os.environ["VALKEY_DB"] != "7"
