"""The scoreable rule: a user is scored only when every view of the service has a row within its TTL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from income.data.schema import FEATURE_VIEWS
from income.data.validation import RAW_RECORDS_SCHEMA
from income.inference.scoreable import (
    SparkScoreableSplit,
    offline_presence,
    scoreable,
    service_views,
    split_scoreable,
)

VIEWS = {"demographic": ["age", "native_country"], "history": ["records_365d", "capital_net"]}


def _frame() -> pd.DataFrame:
    """Four users: both views; demographic only; history only (a nullable feature null); none."""
    return pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "event_timestamp": pd.Timestamp("2025-07-01", tz="UTC"),
            "age": pd.array([40, 30, None, None], dtype="Int64"),
            "native_country": [None, "France", None, None],
            "records_365d": pd.array([2, None, 1, None], dtype="Int64"),
            "capital_net": pd.array([0, None, 5, None], dtype="Int64"),
        }
    )


def test_a_view_is_present_when_any_of_its_features_is_non_null():
    presence = offline_presence(_frame(), VIEWS)
    assert presence["demographic"].tolist() == [True, True, False, False]
    assert presence["history"].tolist() == [True, False, True, False]


def test_scoreable_needs_every_view():
    presence = {"a": [True, True, False, False], "b": [True, False, True, False]}
    assert scoreable(presence).tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="no views"):
        scoreable({})


def test_split_keeps_the_scoreable_rows_and_counts_the_others_per_missing_view():
    split = split_scoreable(_frame(), VIEWS)
    assert split.scored["user_id"].tolist() == [1]
    assert split.scored.index.tolist() == [0]
    assert split.unscored_users == 3
    assert split.missing_by_view == {"demographic": 2, "history": 2}
    assert split.reason() == (
        "3 users not scored (no feature of view demographic within its TTL: 2 users; "
        "no feature of view history within its TTL: 2 users)"
    )


def test_split_of_a_fully_scoreable_frame_keeps_everything():
    frame = _frame().iloc[[0]]
    split = split_scoreable(frame, VIEWS)
    pd.testing.assert_frame_equal(split.scored, frame.reset_index(drop=True))
    assert (split.unscored_users, split.missing_by_view) == (0, {"demographic": 0, "history": 0})
    assert split.reason() == "every user has a row of every view within its TTL"


# The never-null feature of each view that makes "all features null" mean "no row" (the
# module docstring); history's are computed from every record (spark_jobs/history.py).
NEVER_NULL = {"demographic": "age", "relationship": "marital_status", "occupation": "education"}


def test_every_census_view_has_a_feature_validation_never_lets_be_null():
    assert set(FEATURE_VIEWS) == {*NEVER_NULL, "history"}
    for view, feature in NEVER_NULL.items():
        assert feature in FEATURE_VIEWS[view].feature_names
        assert RAW_RECORDS_SCHEMA.columns[feature].nullable is False
    for attribute in ("capital_gain", "capital_loss"):  # capital_net's operands
        assert RAW_RECORDS_SCHEMA.columns[attribute].nullable is False
    assert {"records_365d", "capital_net"} <= set(FEATURE_VIEWS["history"].feature_names)


class _Projection:
    def __init__(self, name: str, features: list[str]) -> None:
        self.name = name
        self.features = [type("Field", (), {"name": f})() for f in features]


class _Store:
    def get_feature_service(self, name: str):
        assert name == "income_v1"
        return type(
            "Service", (), {"feature_view_projections": [_Projection(v, f) for v, f in VIEWS.items()]}
        )


def test_service_views_come_from_the_registry_in_its_order():
    assert service_views(_Store()) == VIEWS
    assert list(service_views(_Store())) == ["demographic", "history"]


def test_an_empty_frame_splits_into_nothing():
    split = split_scoreable(_frame().iloc[0:0], VIEWS)
    assert split.scored.empty and split.unscored_users == 0
    assert np.asarray(scoreable(offline_presence(_frame().iloc[0:0], VIEWS))).size == 0


def test_the_spark_split_keeps_and_counts_as_the_pandas_split(spark):
    frame = _frame()
    pandas_split = split_scoreable(frame, VIEWS)
    split = SparkScoreableSplit(spark.createDataFrame(frame), VIEWS)
    scored = split.scored.toPandas()  # the action the counts are observed in
    assert scored["user_id"].tolist() == pandas_split.scored["user_id"].tolist()
    unscored = split.unscored()
    assert (unscored.unscored_users, unscored.missing_by_view) == (3, {"demographic": 2, "history": 2})
    assert unscored.reason() == pandas_split.reason()
