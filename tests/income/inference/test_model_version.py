"""Model URIs: an alias or a version number, anything else refused."""

from __future__ import annotations

import pytest

from income.inference.model_version import parse_model_uri


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("models:/income-classifier@champion", ("income-classifier", None, "champion")),
        ("models:/income-classifier/3", ("income-classifier", "3", None)),
    ],
)
def test_alias_and_version_uris_are_parsed(uri, parsed):
    assert parse_model_uri(uri) == parsed


@pytest.mark.parametrize("uri", ["income-classifier@champion", "models:/", "models:/m/latest"])
def test_other_uris_are_refused_naming_them(uri):
    with pytest.raises(ValueError, match="expected models:/<name>@<alias>") as caught:
        parse_model_uri(uri)
    assert repr(uri) in str(caught.value)
