"""The scoreable rule, shared by batch scoring and the online service.

A user is scored at time t only when EVERY view of the feature service has a row for the
user within the view's TTL at t: the latest row at or before t with event_timestamp >=
t - ttl. A user missing any view is not scored: batch scoring writes no prediction and
counts the user (`unscored_users`), `/predict` answers 404. Scoring such a user would mean
scoring on imputed values the model never saw together in training, and the two paths
would disagree (the online store holds no value for an expired view).

Presence of a view is measured where each path can see it:
- point-in-time output (income.features.point_in_time): only feature columns, so a view
  is present when at least one of its features is non-null (`offline_presence`). That is
  exact because every view has a feature that is never null in a row of its table:
  demographic `age`, relationship `marital_status`, occupation `education`
  (income.data.validation rejects records missing a numeric attribute or a categorical one
  outside NULLABLE_ATTRIBUTES), history `records_365d` (a count) and `capital_net` (the
  difference of two non-null attributes). All features null therefore means no row
  within the TTL, never a row of nulls;
- Feast's online response: a view is present when it carries an event timestamp for the
  user (serving.online_features gives None where the view has no row).

The views are the service's, read from the Feast registry (`service_views`). Batch scoring
applies the rule on Spark (`spark_split_scoreable`: the same presence test as Spark
columns, counted on the executors while the batch is scored); the drift reference and
the tests apply it to pandas (`split_scoreable`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce

import numpy as np
import pandas as pd

from income.features.feature_store import FEATURE_SERVICE


def service_views(store, service_name: str = FEATURE_SERVICE) -> dict[str, list[str]]:
    """View -> its features in the service, from the Feast registry, in the service's order."""
    service = store.get_feature_service(service_name)
    return {p.name: [f.name for f in p.features] for p in service.feature_view_projections}


def scoreable(presence: Mapping[str, Sequence[bool]]) -> np.ndarray:
    """Per user, True when every view is present (the rule above); `presence`: view -> one flag per user."""
    flags = [np.asarray(present, dtype=bool) for present in presence.values()]
    if not flags:
        raise ValueError("no views: the feature service defines the views a user must have")
    return np.logical_and.reduce(flags)


def offline_presence(features: pd.DataFrame, views: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
    """Per view, per row of point-in-time output: True when at least one of its features is non-null."""
    return {view: features[list(names)].notna().any(axis=1).to_numpy() for view, names in views.items()}


@dataclass(frozen=True)
class Unscored:
    """How many users the rule leaves unscored, and why."""

    unscored_users: int
    missing_by_view: dict[str, int]  # per view: unscored users with no row of it within its TTL

    def reason(self) -> str:
        """Why users are not scored, e.g. 'no feature of view history within its TTL: 12 users'."""
        if not self.unscored_users:
            return "every user has a row of every view within its TTL"
        parts = [
            f"no feature of view {view} within its TTL: {count:,} users"
            for view, count in self.missing_by_view.items()
            if count
        ]
        return f"{self.unscored_users:,} users not scored ({'; '.join(parts)})"


@dataclass(frozen=True)
class ScoreableSplit(Unscored):
    """Point-in-time output split by the rule: the rows to score, and how many are not scored and why."""

    scored: pd.DataFrame


def split_scoreable(features: pd.DataFrame, views: Mapping[str, Sequence[str]]) -> ScoreableSplit:
    """The scoreable rows of point-in-time output (index reset), and the others counted per missing view."""
    presence = offline_presence(features, views)
    keep = scoreable(presence)
    return ScoreableSplit(
        scored=features[keep].reset_index(drop=True),
        unscored_users=int((~keep).sum()),
        missing_by_view={view: int((~present).sum()) for view, present in presence.items()},
    )


class SparkScoreableSplit:
    """Point-in-time output on Spark split by the rule: `scored`, a lazy DataFrame of the rows to
    score, and `unscored()`, the counts, known once an action has run `scored` to the end.

    The counts are Spark observed metrics (DataFrame.observe) taken over every row on its way
    through the plan, before the filter: the batch is read once, and nothing is collected but
    the counts.
    """

    def __init__(self, features, views: Mapping[str, Sequence[str]]) -> None:
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        if not views:
            raise ValueError("no views: the feature service defines the views a user must have")
        present = {view: _any_non_null([F.col(f) for f in names]) for view, names in views.items()}
        keep = reduce(lambda a, b: a & b, present.values())
        self._observation = Observation("scoreable")
        missing = [F.count_if(~flag).alias(view) for view, flag in present.items()]
        observed = features.observe(self._observation, F.count_if(~keep).alias(_UNSCORED), *missing)
        self.scored = observed.where(keep)
        self._views = list(views)

    def unscored(self) -> Unscored:
        """The counts of the action that ran `scored` (waits for it: run one first)."""
        counts = self._observation.get
        return Unscored(
            unscored_users=int(counts[_UNSCORED] or 0),
            missing_by_view={view: int(counts[view] or 0) for view in self._views},
        )


_UNSCORED = "__unscored_users"


def _any_non_null(columns):
    return reduce(lambda a, b: a | b, [c.isNotNull() for c in columns])
