"""The registered model version a `models:/` URI names, by alias or by number, with its tags."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    version: str
    uri: str  # models:/<name>/<version>: immutable, unlike an alias
    tags: dict[str, str]

    @property
    def threshold(self) -> float:
        """The decision threshold chosen at training (tag decision_threshold); 0.5 for older versions."""
        return float(self.tags.get("decision_threshold", 0.5))


def parse_model_uri(model_uri: str) -> tuple[str, str | None, str | None]:
    """'models:/name@alias' -> (name, None, alias); 'models:/name/3' -> (name, '3', None)."""
    rest = model_uri.removeprefix("models:/")
    if rest == model_uri or not rest:
        raise ValueError(f"expected models:/<name>@<alias> or models:/<name>/<version>, got {model_uri!r}")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, None, alias
    name, _, version = rest.rpartition("/")
    if not name or not version.isdigit():
        raise ValueError(f"expected models:/<name>@<alias> or models:/<name>/<version>, got {model_uri!r}")
    return name, version, None


def resolve_model(model_uri: str) -> ResolvedModel:
    """The registered version an alias (or version) URI points at, with its tags."""
    from mlflow import MlflowClient

    client = MlflowClient()
    name, version, alias = parse_model_uri(model_uri)
    found = (
        client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    )
    return ResolvedModel(name, str(found.version), f"models:/{name}/{found.version}", dict(found.tags))
