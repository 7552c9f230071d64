"""Column names and types of the raw census records, the feature tables and the labels.

One place for the data model: the generator, the importer, the validation schema,
the Spark jobs and the Feast definitions all refer to these names.
"""

ENTITY_KEY = "user_id"
TIMESTAMP = "event_timestamp"
LABEL_SOURCE = "income"  # raw column: ">50K", "<=50K" or missing (no label observed)
LABEL = "label"  # label table column: 1 when income > 50K

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

RAW_COLUMNS = [ENTITY_KEY, TIMESTAMP, *ADULT_ATTRIBUTES, LABEL_SOURCE]

# Feature views: name -> raw attributes they carry (see feature_repo/feature_views.py).
VIEW_ATTRIBUTES = {
    "demographic": ["age", "sex", "race", "native_country"],
    "relationship": ["marital_status", "relationship"],
    "occupation": [
        "workclass",
        "education",
        "education_num",
        "occupation",
        "hours_per_week",
        "capital_gain",
        "capital_loss",
    ],
}
# Derived and time-window features over each user's history (spark_jobs/history.py).
HISTORY_FEATURES = [
    "capital_net",
    "records_365d",
    "job_changes_365d",
    "marital_changes_365d",
    "hours_per_week_mean_365d",
]
FEATURE_TABLES = [*VIEW_ATTRIBUTES, "history"]
LABEL_TABLE = "labels"
