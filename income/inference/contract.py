"""The feature contract: a model version is used only with the Feast feature service it was trained on."""

from __future__ import annotations

from collections.abc import Mapping

from income.features.feature_store import FEATURE_SERVICE


class ContractMismatchError(RuntimeError):
    """The model has no feature contract, or was trained on other features than the service serves."""


def service_refs(store, service_name: str = FEATURE_SERVICE) -> list[str]:
    """'view:feature' for every feature of the service in the Feast registry, in its order."""
    service = store.get_feature_service(service_name)
    return [f"{p.name}:{f.name}" for p in service.feature_view_projections for f in p.features]


def check_contract(
    name: str, version: str, tags: Mapping[str, str], store, service_name: str = FEATURE_SERVICE
) -> list[str]:
    """Refuse a version whose `feature_service` / `feature_refs` tags are missing or not the registry's.

    `tags` are the version's tags in the MLflow registry: `feature_service` (the service's
    name) and `feature_refs` ('view:feature' per feature, comma-separated), both required.
    Returns the service's refs when they match; raises ContractMismatchError naming the
    version and both sides. Batch scoring and the online service both call it before they
    use a version, so what one refuses the other refuses too.
    """
    who = f"model {name} v{version}"
    tagged_service = tags.get("feature_service", "")
    tagged_refs = [r for r in tags.get("feature_refs", "").split(",") if r]
    if not tagged_service or not tagged_refs:
        raise ContractMismatchError(
            f"{who} has no feature contract (tags feature_service={tagged_service!r}, "
            f"feature_refs={tags.get('feature_refs', '')!r}); both are required to use it"
        )
    if tagged_service != service_name:
        raise ContractMismatchError(
            f"{who} was trained on feature service {tagged_service!r}, but the features read are "
            f"{service_name!r}"
        )
    try:
        registry_refs = service_refs(store, service_name)
    except Exception as error:  # noqa: BLE001 - Feast raises its own not-found types
        raise ContractMismatchError(
            f"{who} needs feature service {service_name!r}, which the Feast registry does not hold: {error}"
        ) from error
    if set(tagged_refs) != set(registry_refs):
        missing = sorted(set(tagged_refs) - set(registry_refs))
        extra = sorted(set(registry_refs) - set(tagged_refs))
        raise ContractMismatchError(
            f"{who} feature_refs do not match feature service {service_name!r} in the Feast registry: "
            f"the model expects {missing or 'nothing more'} that the registry lacks; the registry serves "
            f"{extra or 'nothing more'} that the model was not trained on.\n"
            f"  model:    {','.join(tagged_refs)}\n  registry: {','.join(registry_refs)}"
        )
    return registry_refs
