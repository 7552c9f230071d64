"""Batch scoring through Flyte: point-in-time scores equal the model's on pandas-computed features,
only users with every view within its TTL are scored (the others counted), partitions are replaced
(never duplicated), the feature contract is enforced, populations from files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from income.data.schema import ENTITY_KEY, FEATURE_TABLES, HISTORY_FEATURES, TIMESTAMP, VIEW_ATTRIBUTES
from income.features.offline_store import current
from income.inference.contract import ContractMismatchError
from income.inference.population import PopulationError, population_from_file
from income.inference.predictions import read_predictions
from income.training.model import FEATURES
from tests.conftest import CHAMPION_THRESHOLD

pytestmark = pytest.mark.integration

AS_OF = "2025-07-01T00:00:00Z"
LATER = "2026-01-01T12:30:00Z"
TTL = timedelta(days=730)
VIEW_FEATURES = {**VIEW_ATTRIBUTES, "history": HISTORY_FEATURES}


def _table(root: str, name: str) -> pd.DataFrame:
    """The published table `name` of the offline store under `root`."""
    return ds.dataset(current(root).uri(name), format="parquet", partitioning="hive").to_table().to_pandas()


def oracle_features(root: str, users: np.ndarray, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per view: the user's latest row at or before as_of and within the TTL (pandas only, no Feast).

    `scoreable`: every view has such a row (the rule batch scoring applies, found here from the
    rows themselves, not from the features being null).
    """
    out = pd.DataFrame({ENTITY_KEY: np.sort(users), "scoreable": True})
    for view, features in VIEW_FEATURES.items():
        table = _table(root, view)
        ts = pd.to_datetime(table[TIMESTAMP], utc=True)
        fresh = table[(ts <= as_of) & (ts >= as_of - TTL)].sort_values([ENTITY_KEY, TIMESTAMP])
        latest = fresh.drop_duplicates(ENTITY_KEY, keep="last")[[ENTITY_KEY, *features]]
        out = out.merge(latest, on=ENTITY_KEY, how="left")
        out["scoreable"] &= out[ENTITY_KEY].isin(latest[ENTITY_KEY])
    return out


def latest_records(root: str) -> pd.Series:
    """Per user, the time of their latest row in any table."""
    tables = pd.concat([_table(root, t)[[ENTITY_KEY, TIMESTAMP]] for t in FEATURE_TABLES])
    return pd.to_datetime(tables[TIMESTAMP], utc=True).groupby(tables[ENTITY_KEY]).max()


@pytest.fixture(scope="module")
def model_uri(champion, tmp_path_factory) -> str:
    """The session champion, with the training set it was trained on saved and tagged as its reference."""
    from income.platform.tracking import configure
    from income.training.training_set import save_training_set

    name, version, training_set = champion
    configure()
    client = mlflow.MlflowClient()
    if "training_set_uri" not in client.get_model_version(name, version).tags:
        uri = str(tmp_path_factory.mktemp("reference") / "training_set.parquet")
        save_training_set(training_set, uri)
        client.set_model_version_tag(name, version, "training_set_uri", uri)
    return f"models:/{name}/{version}"


@pytest.fixture(scope="module")
def predictions_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("predictions"))


@pytest.fixture(scope="module")
def population(feature_run, pipeline_env) -> np.ndarray:
    users = [_table(str(pipeline_env), t)[ENTITY_KEY] for t in FEATURE_TABLES]
    return np.unique(pd.concat(users).to_numpy())


@pytest.fixture(scope="module")
def first_run(model_uri, predictions_root, spark):
    from tasks.inference import ScoringConfig
    from workflows.batch_scoring import batch_scoring

    cfg = ScoringConfig(model_uri=model_uri, as_of=AS_OF, predictions_uri=predictions_root, partitions=4)
    return batch_scoring(cfg=cfg)


def _partitions(root: str) -> list[str]:
    return sorted(p.name for p in Path(root).iterdir() if p.name.startswith("as_of="))


@pytest.fixture(scope="module")
def expected(population, pipeline_env) -> pd.DataFrame:
    """The oracle's features of every user as of AS_OF, with `scoreable`."""
    return oracle_features(str(pipeline_env), population, pd.Timestamp(AS_OF))


def test_scores_the_scoreable_users_with_the_models_point_in_time_scores(
    first_run, population, expected, champion
):
    scoring = first_run.scoring
    name, version, _ = champion
    scored = expected[expected["scoreable"]].reset_index(drop=True)
    assert 0.5 * len(population) < len(scored) < len(population)  # most users, not all
    assert scoring.rows == len(scored)
    assert scoring.unscored_users == len(population) - len(scored)
    got = read_predictions(scoring.predictions_root, pd.Timestamp(AS_OF))
    assert sorted(got.columns) == sorted(
        [
            ENTITY_KEY,
            "probability",
            "predicted_label",
            "model_name",
            "model_version",
            "feature_service",
            "scored_at",
            "as_of",
        ]
    )
    assert len(got) == len(scored) and got[ENTITY_KEY].is_unique
    assert set(got[ENTITY_KEY]) == set(scored[ENTITY_KEY])
    assert got["probability"].between(0, 1).all()
    assert scoring.threshold == CHAMPION_THRESHOLD  # the model version's own
    assert (got["predicted_label"] == (got["probability"] >= CHAMPION_THRESHOLD).astype(int)).all()
    assert set(got["model_version"]) == {version} and set(got["model_name"]) == {name}
    assert set(got["feature_service"]) == {"income_v1"}
    assert scoring.positive_share == pytest.approx(got["predicted_label"].mean(), abs=1e-6)

    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    scored["probability"] = np.asarray(model.predict(scored[FEATURES]), dtype=float)
    joined = got.merge(scored[[ENTITY_KEY, "probability"]], on=ENTITY_KEY, suffixes=("", "_pandas"))
    assert len(joined) == len(scored)
    np.testing.assert_allclose(joined["probability"], joined["probability_pandas"], rtol=0, atol=1e-9)


def test_users_without_every_view_within_the_ttl_are_counted_not_scored(first_run, expected):
    scoring = first_run.scoring
    got = set(read_predictions(scoring.predictions_root, pd.Timestamp(AS_OF))[ENTITY_KEY])
    unscored = expected.loc[~expected["scoreable"], ENTITY_KEY]
    assert len(unscored) > 0 and not got & set(unscored)  # here: users whose first record is later
    # Every view comes from the same records here, so an unscored user misses every view.
    assert scoring.unscored_by_view == dict.fromkeys(VIEW_FEATURES, len(unscored))
    assert scoring.unscored_reason.startswith(f"{len(unscored):,} users not scored (")
    assert "no feature of view history within its TTL" in scoring.unscored_reason
    from income.platform.files import read_text
    from income.platform.settings import reports_uri

    html = read_text(f"{reports_uri()}/batch-scoring.html")
    assert "every view of the feature service has a row within its TTL" in html


def test_a_user_whose_records_are_all_older_than_the_ttl_gets_no_prediction(
    model_uri, tmp_path, population, pipeline_env
):
    from tasks.inference import ScoringConfig, score_batch

    latest = latest_records(str(pipeline_env))
    as_of = latest.min() + TTL + timedelta(days=1)  # the earliest-leaving user's records all expired
    stale = int(latest.idxmin())
    expected = oracle_features(str(pipeline_env), population, as_of)
    assert not expected.set_index(ENTITY_KEY).at[stale, "scoreable"]
    fresh = int(expected.loc[expected["scoreable"], ENTITY_KEY].iloc[0])
    unknown = 10**9
    users = tmp_path / "users.csv"
    pd.DataFrame({ENTITY_KEY: [stale, fresh, unknown]}).to_csv(users, index=False)
    root = str(tmp_path / "predictions")
    result = score_batch(
        cfg=ScoringConfig(
            model_uri=model_uri, as_of=as_of.isoformat(), population_uri=str(users), predictions_uri=root
        )
    )
    assert (result.summary.rows, result.summary.unscored_users) == (1, 2)
    assert result.summary.unscored_by_view == dict.fromkeys(VIEW_FEATURES, 2)
    assert read_predictions(root, as_of)[ENTITY_KEY].tolist() == [fresh]
    assert result.features.open(pd.DataFrame).all()[ENTITY_KEY].tolist() == [fresh]  # the drift input


def test_model_is_loaded_once_per_python_worker(first_run, spark):
    scoring = first_run.scoring
    cores = spark.sparkContext.defaultParallelism
    assert scoring.batches >= 4  # four partitions, at least one Arrow batch each
    assert 1 <= scoring.model_loads <= cores < scoring.batches


def test_drift_report_is_saved_logged_and_typed(first_run):
    drift = first_run.drift
    assert set(drift.psi) == set(FEATURES)
    assert all(v >= 0 for v in drift.psi.values())
    assert set(drift.drifted_features) <= set(FEATURES)
    assert drift.drifted == (bool(drift.drifted_features) or drift.prediction_psi > 0.25)
    html = Path(drift.report_path).read_text()
    assert Path(drift.report_path).name == "drift-2025-07-01T00-00-00Z.html"
    assert "data:image/png;base64," in html and "prediction (probability)" in html
    run = mlflow.get_run(drift.mlflow_run_id)
    assert run.info.run_name == "batch-scoring-2025-07-01T00-00-00Z"
    assert run.data.tags["model_version"] == first_run.scoring.model_version
    assert run.data.tags["predictions_path"] == first_run.scoring.path
    assert run.data.metrics["prediction_psi"] == pytest.approx(drift.prediction_psi, abs=1e-6)
    artifacts = mlflow.MlflowClient().list_artifacts(drift.mlflow_run_id, "drift")
    assert [a.path for a in artifacts] == ["drift/drift-2025-07-01T00-00-00Z.html"]


def test_rerun_replaces_the_partition_and_another_as_of_adds_one(
    first_run, model_uri, predictions_root, population
):
    from tasks.inference import ScoringConfig, score_batch

    rows = first_run.scoring.rows
    before = read_predictions(predictions_root, pd.Timestamp(AS_OF))
    again = score_batch(cfg=ScoringConfig(model_uri=model_uri, as_of=AS_OF, predictions_uri=predictions_root))
    assert again.summary.rows == rows
    assert _partitions(predictions_root) == ["as_of=2025-07-01T00-00-00Z"]
    after = read_predictions(predictions_root, pd.Timestamp(AS_OF))
    assert len(after) == rows
    assert after["scored_at"].min() > before["scored_at"].max()  # replaced, not appended
    pd.testing.assert_series_equal(
        after.sort_values(ENTITY_KEY)["probability"].reset_index(drop=True),
        before.sort_values(ENTITY_KEY)["probability"].reset_index(drop=True),
    )

    later = score_batch(cfg=ScoringConfig(model_uri=model_uri, as_of=LATER, predictions_uri=predictions_root))
    assert later.summary.path.endswith("as_of=2026-01-01T12-30-00Z")
    assert _partitions(predictions_root) == ["as_of=2025-07-01T00-00-00Z", "as_of=2026-01-01T12-30-00Z"]
    assert later.summary.rows + later.summary.unscored_users == len(population)
    everything = read_predictions(predictions_root)
    assert len(everything) == rows + later.summary.rows
    assert everything.groupby("as_of").size().to_dict() == {
        pd.Timestamp(AS_OF): rows,
        pd.Timestamp(LATER): later.summary.rows,
    }
    assert not (Path(predictions_root) / "_staging").exists() or not any(
        (Path(predictions_root) / "_staging").iterdir()
    )


def test_a_model_whose_feature_contract_differs_is_refused(champion, predictions_root):
    from income.platform.tracking import configure
    from tasks.inference import ScoringConfig, score_batch

    name, version, _ = champion
    configure()
    client = mlflow.MlflowClient()
    source = client.get_model_version(name, version)
    refs = source.tags.get("feature_refs", "").split(",")
    wrong = ",".join([r for r in refs if r != "demographic:age"] + ["demographic:height"])
    other = "income-classifier-contract-test"  # its own registered model: the session champion stays as is
    registered = mlflow.register_model(
        f"runs:/{source.run_id}/model", other, tags={"feature_service": "income_v1", "feature_refs": wrong}
    )
    client.set_registered_model_alias(other, "champion", registered.version)

    with pytest.raises(Exception) as caught:
        score_batch(
            cfg=ScoringConfig(model_uri=f"models:/{other}@champion", predictions_uri=predictions_root)
        )
    message = str(caught.value)
    assert "ContractMismatchError" in repr(caught.value) or isinstance(caught.value, ContractMismatchError)
    assert f"model {other} v{registered.version}" in message
    assert "demographic:height" in message and "demographic:age" in message  # both sides named
    assert "income_v1" in message


def test_a_model_without_a_feature_contract_is_refused(champion, predictions_root):
    """The online service refuses the same version with the same message (tests/serving/test_app.py)."""
    from income.platform.tracking import configure
    from tasks.inference import ScoringConfig, score_batch

    name, version, _ = champion
    configure()
    source = mlflow.MlflowClient().get_model_version(name, version)
    other = "income-classifier-untagged-test"
    registered = mlflow.register_model(f"runs:/{source.run_id}/model", other)

    uri = f"models:/{other}/{registered.version}"
    with pytest.raises(Exception) as caught:
        score_batch(cfg=ScoringConfig(model_uri=uri, predictions_uri=predictions_root))
    assert "ContractMismatchError" in repr(caught.value) or isinstance(caught.value, ContractMismatchError)
    assert f"model {other} v{registered.version} has no feature contract" in str(caught.value)


def test_population_from_a_csv_file(model_uri, tmp_path, population, expected):
    from tasks.inference import ScoringConfig, score_batch

    chosen = expected.loc[expected["scoreable"], ENTITY_KEY].to_numpy()[::7]
    users = tmp_path / "users.csv"
    pd.DataFrame({ENTITY_KEY: [*chosen, chosen[0]], "note": "x"}).to_csv(users, index=False)  # a duplicate
    root = str(tmp_path / "predictions")
    result = score_batch(
        cfg=ScoringConfig(model_uri=model_uri, as_of=AS_OF, population_uri=str(users), predictions_uri=root)
    )
    assert result.summary.rows == len(chosen)
    assert result.summary.population == str(users)
    got = read_predictions(root, pd.Timestamp(AS_OF))
    assert sorted(got[ENTITY_KEY]) == sorted(chosen.tolist())


def test_a_missing_population_file_fails_naming_it(model_uri, tmp_path):
    from tasks.inference import ScoringConfig, score_batch

    missing = tmp_path / "nobody.parquet"
    with pytest.raises(Exception, match="nobody.parquet"):
        score_batch(cfg=ScoringConfig(model_uri=model_uri, population_uri=str(missing)))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("id\n1\n2\n", "has no 'user_id' column"),
        ("user_id\n1\nabc\n", "not integers"),
        ("user_id\n", "holds no user_id"),
    ],
)
def test_bad_population_files_are_refused_with_their_name(tmp_path, content, problem):
    path = tmp_path / "users.csv"
    path.write_text(content)
    with pytest.raises(PopulationError, match=problem) as caught:
        population_from_file(str(path))
    assert str(path) in str(caught.value)
    garbage = tmp_path / "users.parquet"
    garbage.write_text("not parquet")
    with pytest.raises(PopulationError, match="cannot read population file .*users.parquet"):
        population_from_file(str(garbage))
