"""Column names and types of the raw census records, the feature tables and the labels.

One place for the data model: the generator, the importer, the validation schema,
the Spark jobs and the Feast definitions (feature_repo/ builds its views from
FEATURE_VIEWS: names, types, descriptions, TTLs) all refer to these names.
"""

from dataclasses import dataclass
from datetime import timedelta

ENTITY_KEY = "user_id"
TIMESTAMP = "event_timestamp"
LABEL_SOURCE = "income"  # raw column: ">50K", "<=50K" or missing (no label observed)
LABEL = "label"  # label table column: 1 when income > 50K
ARRIVED_AT = "arrived_at"  # label table column: when the label reached us (its batch's ingest date)

HIGH_INCOME = ">50K"
LOW_INCOME = "<=50K"

# The 14 UCI Adult attributes, with their snake_case names.
NUMERIC_ATTRIBUTES = [
    "age",
    "fnlwgt",
    "education_num",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
]
CATEGORICAL_ATTRIBUTES = [
    "workclass",
    "education",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native_country",
]
ADULT_ATTRIBUTES = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
]
# Attributes that are legitimately missing in census data ('?' in the Adult files).
NULLABLE_ATTRIBUTES = ["workclass", "occupation", "native_country"]
# A missing categorical value as the model encodes it and the reports show it.
MISSING_CATEGORY = "missing"

RAW_COLUMNS = [ENTITY_KEY, TIMESTAMP, *ADULT_ATTRIBUTES, LABEL_SOURCE]


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    dtype: str  # a Feast type name: Int64, Float64 or String
    description: str = ""


@dataclass(frozen=True)
class ViewSpec:
    """A feature table and the Feast feature view over it (feature_repo/feature_views.py)."""

    name: str
    description: str
    features: tuple[FeatureSpec, ...]
    # How old a value may be and still describe the user at prediction time: a census
    # answer is a yearly survey, so a value older than two years is not used.
    ttl: timedelta = timedelta(days=730)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


FEATURE_VIEWS = {
    view.name: view
    for view in (
        ViewSpec(
            "demographic",
            "Who the user is: age, sex, race and native country.",
            (
                FeatureSpec("age", "Int64", "Age in years at the survey."),
                FeatureSpec("sex", "String"),
                FeatureSpec("race", "String"),
                FeatureSpec("native_country", "String", "Missing when not answered."),
            ),
        ),
        ViewSpec(
            "relationship",
            "Family situation: marital status and role in the household.",
            (
                FeatureSpec("marital_status", "String"),
                FeatureSpec("relationship", "String", "Role in the household."),
            ),
        ),
        ViewSpec(
            "occupation",
            "Work and education: employer type, schooling, job, hours, capital.",
            (
                FeatureSpec("workclass", "String", "Missing when not answered."),
                FeatureSpec("education", "String"),
                FeatureSpec("education_num", "Int64", "Education level, 1 to 16."),
                FeatureSpec("occupation", "String", "Missing when not answered."),
                FeatureSpec("hours_per_week", "Int64"),
                FeatureSpec("capital_gain", "Int64"),
                FeatureSpec("capital_loss", "Int64"),
            ),
        ),
        # Derived and time-window features over each user's history (spark_jobs/history.py).
        ViewSpec(
            "history",
            "Derived and time-window features over the user's survey history (Spark windows).",
            (
                FeatureSpec("capital_net", "Int64", "capital_gain minus capital_loss."),
                FeatureSpec("records_365d", "Int64", "Survey records in the prior 365 days."),
                FeatureSpec("job_changes_365d", "Int64", "Occupation changes, prior 365 days."),
                FeatureSpec("marital_changes_365d", "Int64", "Marital changes, prior 365 days."),
                FeatureSpec("hours_per_week_mean_365d", "Float64", "Mean hours, prior 365 days."),
                FeatureSpec(
                    "records_total", "Int64", "Survey records so far: how long the user has answered."
                ),
            ),
        ),
    )
}
HISTORY_VIEW = "history"
# The raw attributes each census view carries, and the derived history features.
VIEW_ATTRIBUTES = {name: view.feature_names for name, view in FEATURE_VIEWS.items() if name != HISTORY_VIEW}
HISTORY_FEATURES = FEATURE_VIEWS[HISTORY_VIEW].feature_names
# Feature services: the versioned sets of features a model version is trained on and served
# (feature_repo/feature_services.py). income_v2 adds the user's survey tenure to income_v1.
V2_FEATURES = ("records_total",)
FEATURE_SERVICES = {
    "income_v1": {
        name: [f for f in view.feature_names if f not in V2_FEATURES] for name, view in FEATURE_VIEWS.items()
    },
    "income_v2": {name: view.feature_names for name, view in FEATURE_VIEWS.items()},
}


def service_features(service: str) -> list[str]:
    """The features of a feature service, view by view, in the service's order."""
    if service not in FEATURE_SERVICES:
        raise ValueError(f"unknown feature service {service!r}; known: {', '.join(FEATURE_SERVICES)}")
    return [f for features in FEATURE_SERVICES[service].values() for f in features]


FEATURE_TABLES = list(FEATURE_VIEWS)
LABEL_TABLE = "labels"
# Every feature and label table is partitioned by the month of event_timestamp (UTC), as
# yyyymm (202611): a daily batch rewrites the partitions of the months it touches only.
PARTITION_COLUMN = "event_month"
