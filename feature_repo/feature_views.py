"""Feature views: the three census attribute groups plus derived history features.

Names, types, descriptions and TTLs come from income.data.schema.FEATURE_VIEWS, the one
place the Spark jobs, the model and these definitions read them from.
"""

from data_sources import demographic_source, history_source, occupation_source, relationship_source
from entities import user
from feast import FeatureView, Field
from feast import types as feast_types

from income.data.schema import FEATURE_VIEWS

TAGS = {"team": "income", "source": "census survey", "pipeline": "feature_pipeline"}


def _view(name: str, source) -> FeatureView:
    spec = FEATURE_VIEWS[name]
    return FeatureView(
        name=spec.name,
        entities=[user],
        ttl=spec.ttl,
        schema=[
            Field(name=f.name, dtype=getattr(feast_types, f.dtype), description=f.description)
            for f in spec.features
        ],
        source=source,
        online=True,
        description=spec.description,
        tags={**TAGS, "group": spec.name},
    )


demographic_fv = _view("demographic", demographic_source)
relationship_fv = _view("relationship", relationship_source)
occupation_fv = _view("occupation", occupation_source)
history_fv = _view("history", history_source)
