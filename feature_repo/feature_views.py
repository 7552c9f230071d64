"""Feature views: the three census attribute groups plus derived history features.

TTLs say how old a value may be and still describe the user at prediction time: a
census answer is a yearly survey, so a value older than two years is not used.
"""

from datetime import timedelta

from data_sources import demographic_source, history_source, occupation_source, relationship_source
from entities import user
from feast import FeatureView, Field
from feast.types import Float64, Int64, String

TTL = timedelta(days=730)
TAGS = {"team": "income", "source": "census survey", "pipeline": "feature_pipeline"}

demographic_fv = FeatureView(
    name="demographic",
    entities=[user],
    ttl=TTL,
    schema=[
        Field(name="age", dtype=Int64, description="Age in years at the survey."),
        Field(name="sex", dtype=String),
        Field(name="race", dtype=String),
        Field(name="native_country", dtype=String, description="Missing when not answered."),
    ],
    source=demographic_source,
    online=True,
    description="Who the user is: age, sex, race and native country.",
    tags={**TAGS, "group": "demographic"},
)

relationship_fv = FeatureView(
    name="relationship",
    entities=[user],
    ttl=TTL,
    schema=[
        Field(name="marital_status", dtype=String),
        Field(name="relationship", dtype=String, description="Role in the household."),
    ],
    source=relationship_source,
    online=True,
    description="Family situation: marital status and role in the household.",
    tags={**TAGS, "group": "relationship"},
)

occupation_fv = FeatureView(
    name="occupation",
    entities=[user],
    ttl=TTL,
    schema=[
        Field(name="workclass", dtype=String, description="Missing when not answered."),
        Field(name="education", dtype=String),
        Field(name="education_num", dtype=Int64, description="Education level, 1 to 16."),
        Field(name="occupation", dtype=String, description="Missing when not answered."),
        Field(name="hours_per_week", dtype=Int64),
        Field(name="capital_gain", dtype=Int64),
        Field(name="capital_loss", dtype=Int64),
    ],
    source=occupation_source,
    online=True,
    description="Work and education: employer type, schooling, job, hours, capital.",
    tags={**TAGS, "group": "occupation"},
)

history_fv = FeatureView(
    name="history",
    entities=[user],
    ttl=TTL,
    schema=[
        Field(name="capital_net", dtype=Int64, description="capital_gain minus capital_loss."),
        Field(name="records_365d", dtype=Int64, description="Survey records in the prior 365 days."),
        Field(name="job_changes_365d", dtype=Int64, description="Occupation changes, prior 365 days."),
        Field(name="marital_changes_365d", dtype=Int64, description="Marital changes, prior 365 days."),
        Field(name="hours_per_week_mean_365d", dtype=Float64, description="Mean hours, prior 365 days."),
    ],
    source=history_source,
    online=True,
    description="Derived and time-window features over the user's survey history (Spark windows).",
    tags={**TAGS, "group": "history"},
)
