"""The overview page and the champion's lineage page: what they say, that every link leads somewhere,
and that Chromium shows them with every image and drawing."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from tests.browser import broken_links, chromium, render

pytestmark = pytest.mark.integration

AS_OF = "2025-09-01T00:00:00Z"
SHOTS = Path("/tmp/reports-shots")


@pytest.fixture(scope="module")
def scored(training_run, spark, tmp_path_factory):
    """The pipeline's champion scores a batch: predictions and a drift verdict for the page."""
    from tasks.inference import ScoringConfig
    from workflows.batch_scoring import batch_scoring

    cfg = ScoringConfig(as_of=AS_OF, predictions_uri=str(tmp_path_factory.mktemp("predictions")))
    return batch_scoring(cfg=cfg)


@pytest.fixture(scope="module")
def pages(scored):
    from income.overview import write

    index = Path(write())
    return index, index.parent / "lineage-champion.html"


def test_the_overview_shows_runs_models_drift_and_every_report(pages, training_run, scored):
    index, lineage_page = pages
    html = index.read_text()
    assert index.name == "index.html" and lineage_page.exists()
    for pipeline in ("feature_pipeline", "training_pipeline", "batch_scoring", "monitoring"):
        assert f"<td>{pipeline}</td>" in html
    version = training_run.decision.model_version
    assert f"registered income-classifier v{version}, promoted to champion" in html
    assert f"#/models/income-classifier/versions/{version}'>v{version}</a>" in html
    assert f"Champion history (oldest first): <b>v{version}</b>" in html
    # The champion's validation score is its trial's (the registered refit has none of its own).
    trial = mlflow.MlflowClient().get_run(training_run.best_run_id).data.metrics["val_roc_auc"]
    assert f"<td>{trial:.4f}</td>" in html and "<td>nan</td>" not in html
    drift_report = Path(scored.drift.report_path).name
    assert f"href='{drift_report}'" in html  # the drift table links the run's report
    ks = scored.drift.ks_statistic
    worst = max(ks, key=ks.get)
    assert f"<td>{worst} {ks[worst]:.4f}</td>" in html  # the rule behind most verdicts, beside PSI
    assert html.count("data:image/png;base64,") == 1  # the trend plot
    for report in index.parent.glob("*.html"):
        if report.name != "index.html":
            assert f"href='{report.name}'" in html
    assert "make mlflow-ui" in html and "make feast-ui" in html


def test_the_champions_lineage_page_draws_every_step(pages, training_run, scored):
    _, lineage_page = pages
    html = lineage_page.read_text()
    for step in ("raw input", "validation", "feature set", "table demographic", "Feast", "training set"):
        assert f">{step}</text>" in html
    assert f"/runs/{training_run.parent_run_id}'" in html and f"/runs/{training_run.final_run_id}'" in html
    assert Path(scored.scoring.path).as_uri() in html  # the predictions it scored


def test_no_link_of_the_pages_leads_nowhere(pages):
    index, lineage_page = pages
    for page in (index, lineage_page, index.parent / "training.html"):
        assert broken_links(page) == [], page.name


def test_chromium_shows_the_pages_with_every_image_and_drawing(pages):
    chromium()
    index, lineage_page = pages
    SHOTS.mkdir(exist_ok=True)
    shown = {page.name: render(page, SHOTS / f"test-{page.stem}.png") for page in (index, lineage_page)}
    shown["training.html"] = render(index.parent / "training.html")
    assert shown["index.html"]["broken"] == [] and shown["index.html"]["images"] == 1
    # The search chart, and the final model's reliability plots on validation and test (and SHAP for XGBoost).
    assert shown["training.html"]["broken"] == [] and shown["training.html"]["images"] >= 3
    [(width, height)] = shown["lineage-champion.html"]["drawings"]
    assert width > 600 and height > 150


def test_the_checks_catch_a_missing_file_and_a_broken_image(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head></head><body>"
        f"<a href='{(tmp_path / 'gone.parquet').as_uri()}'>gone</a><a href='missing.html'>x</a>"
        "<img src='data:image/png;base64,AAAA' alt='not a png'><img src='absent.png' alt='absent'>"
        f"<svg><a href='{page.as_uri()}'><text>fine</text></a></svg></body></html>"
    )
    assert broken_links(page) == [
        (tmp_path / "gone.parquet").as_uri(),
        "missing.html",
        "data:image/png;base64,AAAA",
        "absent.png",
    ]
    chromium()
    assert sorted(render(page)["broken"]) == ["absent", "not a png"]
