"""Feature services: the versioned sets of features a model version is trained on and served.

Their features come from income.data.schema.FEATURE_SERVICES: income_v2 adds the user's
survey tenure (`records_total`, history view) to income_v1, which reads that view without it.
A model version's contract names its service; both are applied and materialized.
"""

from feast import FeatureService
from feature_views import demographic_fv, history_fv, occupation_fv, relationship_fv

from income.data.schema import FEATURE_SERVICES

VIEWS = {
    "demographic": demographic_fv,
    "relationship": relationship_fv,
    "occupation": occupation_fv,
    "history": history_fv,
}


def _service(name: str, description: str) -> FeatureService:
    features = [VIEWS[view][names] for view, names in FEATURE_SERVICES[name].items()]
    return FeatureService(
        name=name,
        features=features,
        description=description,
        tags={"team": "income", "model": "income-classifier"},
    )


income_v1 = _service("income_v1", "Every feature the income classifier v1 reads, offline and online.")
income_v2 = _service("income_v2", "income_v1 and the user's survey tenure (records_total).")
