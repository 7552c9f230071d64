"""Feature services: the versioned sets of features a model version is trained on and served."""

from feast import FeatureService
from feature_views import demographic_fv, history_fv, occupation_fv, relationship_fv

income_v1 = FeatureService(
    name="income_v1",
    features=[demographic_fv, relationship_fv, occupation_fv, history_fv],
    description="Every feature the income classifier v1 reads, offline and online.",
    tags={"team": "income", "model": "income-classifier"},
)
