"""The feature contract against a real Feast registry: matching tags pass, anything else is refused."""

from __future__ import annotations

import pytest

from income.data.schema import FEATURE_SERVICES
from income.features.feature_store import FEATURE_SERVICE, get_store
from income.inference.contract import ContractMismatchError, check_contract, service_refs

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(feature_run):
    return get_store()


@pytest.fixture(scope="module")
def refs(store) -> list[str]:
    return service_refs(store)


def test_service_refs_are_view_and_feature_in_the_services_order(store, refs):
    for service, views in FEATURE_SERVICES.items():
        found = refs if service == FEATURE_SERVICE else service_refs(store, service)
        assert found == [f"{view}:{feature}" for view, features in views.items() for feature in features]
    assert "history:records_total" in service_refs(store, "income_v2") and "history:records_total" not in refs


def test_matching_tags_pass_in_any_order(store, refs):
    tags = {"feature_service": FEATURE_SERVICE, "feature_refs": ",".join(reversed(refs))}
    assert check_contract("m", "1", tags, store) == refs


@pytest.mark.parametrize(
    "tags",
    [{}, {"feature_service": FEATURE_SERVICE}, {"feature_refs": "demographic:age"}, {"feature_refs": ""}],
    ids=["none", "service only", "refs only", "empty refs"],
)
def test_a_version_without_both_tags_is_refused(store, tags):
    with pytest.raises(ContractMismatchError, match=r"^model m v7 has no feature contract"):
        check_contract("m", "7", tags, store)


def test_another_feature_service_is_refused_naming_both(store, refs):
    tags = {"feature_service": "income_v0", "feature_refs": ",".join(refs)}
    with pytest.raises(ContractMismatchError, match=r"'income_v0'.*'income_v1'"):
        check_contract("m", "2", tags, store)


def test_other_features_are_refused_naming_both_sides(store, refs):
    wrong = [r for r in refs if r != "demographic:age"] + ["demographic:height"]
    tags = {"feature_service": FEATURE_SERVICE, "feature_refs": ",".join(wrong)}
    with pytest.raises(ContractMismatchError) as refused:
        check_contract("m", "3", tags, store)
    message = str(refused.value)
    assert "expects ['demographic:height'] that the registry lacks" in message
    assert "serves ['demographic:age'] that the model was not trained on" in message


def test_a_service_missing_from_the_registry_is_refused(store, refs):
    tags = {"feature_service": "income_v9", "feature_refs": ",".join(refs)}
    with pytest.raises(ContractMismatchError, match="'income_v9', which the Feast registry does not hold"):
        check_contract("m", "4", tags, store, "income_v9")
