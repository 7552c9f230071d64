"""Model registry: pick the best trial, register it, promote it only when it is better.

`python -m income.training.registry status`   shows the aliases and the champion history;
`python -m income.training.registry rollback` moves `champion` back to the previous champion
(the red button).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from income.data.schema import LABEL
from income.platform.tracking import MODEL_NAME, configure
from income.training.trials import ROLE_TAG, evaluate

CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "champion_history"  # registered-model tag: JSON list of champion versions, oldest first
DECISION_TAG = "promotion.decision"  # model-version tag: "promoted" or "rejected"
ROLLED_BACK_TAG = "rolled_back"  # model-version tag: set when rollback moved champion away from it


@dataclass(frozen=True)
class PromotionDecision:
    model_version: str
    promoted: bool
    reason: str
    challenger_test_roc_auc: float
    champion_version: str  # the champion after the decision
    champion_test_roc_auc: float  # the previous champion on the same test data; -1.0 when none


def best_trial(parent_run_id: str, metric: str = "val_roc_auc"):
    """The finished trial run under `parent_run_id` with the highest `metric` (an MLflow query)."""
    runs = mlflow.search_runs(
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and tags.{ROLE_TAG} = 'trial' "
        "and attributes.status = 'FINISHED'",
        order_by=[f"metrics.{metric} DESC"],
        max_results=1,
        output_format="list",
    )
    if not runs:
        raise RuntimeError(f"no finished trial under MLflow run {parent_run_id}: every trial failed")
    return runs[0]


def _champion_version(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def champion_history(client: MlflowClient, name: str) -> list[str]:
    """The versions that have been champion, oldest first (rollback drops the last)."""
    tags = client.get_registered_model(name).tags
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def _set_champion(client: MlflowClient, name: str, version: str, history: list[str]) -> None:
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))


def roc_auc_on(model_uri: str, test: pd.DataFrame) -> float:
    """The model's test ROC AUC, fed the features its signature names (its feature service's)."""
    model = mlflow.pyfunc.load_model(model_uri)
    scores = model.predict(test[model.metadata.get_input_schema().input_names()])
    return evaluate(test[LABEL].to_numpy(), scores, "test")["test_roc_auc"]


def _registered_version(client: MlflowClient, name: str, run_id: str) -> str | None:
    """The version of `name` registered from `run_id`'s model, if any (the first one)."""
    # MLflow sets a version's run_id to the run that logged the model, also when the model is
    # registered by its LoggedModel URI (models:/m-...), so a retry finds what it registered.
    found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return str(min(int(v.version) for v in found)) if found else None


def _register(client: MlflowClient, run_id: str, name: str, tags: dict[str, str]) -> str:
    # MLflow 3 keeps models as their own entities: register the one the run logged.
    model_uri = client.get_run(run_id).data.tags.get("model_uri", f"runs:/{run_id}/model")
    return str(mlflow.register_model(model_uri, name, tags=tags).version)


def _recorded_decision(client: MlflowClient, name: str, version: str) -> PromotionDecision | None:
    """The decision recorded on `version` by an earlier gate, or None when there is none yet."""
    tags = client.get_model_version(name, version).tags
    if DECISION_TAG not in tags:
        return None
    promoted = tags[DECISION_TAG] == "promoted"
    return PromotionDecision(
        model_version=version,
        promoted=promoted,
        reason=tags["promotion.reason"],
        challenger_test_roc_auc=float(tags["promotion.challenger_test_roc_auc"]),
        champion_version=version if promoted else tags["promotion.champion_version_before"],
        champion_test_roc_auc=float(tags["promotion.champion_test_roc_auc"]),
    )


def _decide(
    client: MlflowClient, name: str, version: str, test: pd.DataFrame, margin: float, blocked: str = ""
) -> PromotionDecision:
    """Score `version` against the champion on `test` and record the decision on the version.

    `blocked`: a reason to refuse promotion whatever the scores (e.g. a fairness gap).
    """
    challenger_auc = roc_auc_on(f"models:/{name}/{version}", test)
    current = _champion_version(client, name)
    if blocked:
        promoted = False
        champion_auc = roc_auc_on(f"models:/{name}@{CHAMPION}", test) if current is not None else -1.0
        reason = f"challenger v{version} not promoted: {blocked}"
    elif current is None:
        promoted, champion_auc = True, -1.0
        reason = "first model: no champion yet"
    else:
        champion_auc = roc_auc_on(f"models:/{name}@{CHAMPION}", test)
        promoted = challenger_auc >= champion_auc + margin
        verdict = "beats" if promoted else "does not beat"
        reason = (
            f"challenger v{version} test ROC AUC {challenger_auc:.4f} {verdict} champion v{current} "
            f"{champion_auc:.4f} + margin {margin}"
        )
    # Scores in full (str of a float round-trips) so that a re-run returns the very same decision;
    # the decision tag goes last: once it is there, the record is complete.
    for key, value in {
        "promotion.reason": reason,
        "promotion.challenger_test_roc_auc": str(challenger_auc),
        "promotion.champion_test_roc_auc": str(champion_auc),
        "promotion.champion_version_before": str(current),
        "promotion.margin": str(margin),
        DECISION_TAG: "promoted" if promoted else "rejected",
    }.items():
        client.set_model_version_tag(name, version, key, value)
    return PromotionDecision(
        model_version=version,
        promoted=promoted,
        reason=reason,
        challenger_test_roc_auc=challenger_auc,
        champion_version=version if promoted else str(current),
        champion_test_roc_auc=champion_auc,
    )


def _promote_once(client: MlflowClient, name: str, version: str) -> None:
    """Make `version` champion unless that already happened (it is in the history) or was undone."""
    history = champion_history(client, name)
    if version in history or ROLLED_BACK_TAG in client.get_model_version(name, version).tags:
        return
    _set_champion(client, name, version, [*history, version])


def register_and_gate(
    run_id: str,
    test: pd.DataFrame,
    margin: float,
    tags: dict[str, str],
    name: str = MODEL_NAME,
    blocked: str = "",
) -> PromotionDecision:
    """Register the run's model as `challenger`; make it `champion` only if it beats the champion.

    Both are scored on the same `test` rows; the challenger must exceed the champion's
    test ROC AUC by at least `margin`. The decision and both scores are recorded on the
    model version.

    Idempotent per run, so that a task retry may call it again: the run's model is registered
    once, and a version with a recorded decision is not gated again (by then the champion may
    be the version itself); the recorded decision is returned. The decision is recorded before
    `champion` moves, so a re-run also finishes a promotion that a failure interrupted.
    """
    client = MlflowClient()
    version = _registered_version(client, name, run_id) or _register(client, run_id, name, tags)
    decision = _recorded_decision(client, name, version)
    if decision is None:
        client.set_registered_model_alias(name, CHALLENGER, version)
        decision = _decide(client, name, version, test, margin, blocked)
    if decision.promoted:
        _promote_once(client, name, version)
    return decision


def seats(name: str = MODEL_NAME) -> tuple[str | None, str | None]:
    """(champion version, challenger version), None where the alias is not set."""
    aliases = MlflowClient().get_registered_model(name).aliases
    champion, challenger = aliases.get(CHAMPION), aliases.get(CHALLENGER)
    return (None if champion is None else str(champion)), (None if challenger is None else str(challenger))


def promote_challenger(name: str, reason: str) -> str:
    """The green button's mechanics: `champion` moves to the `challenger` version; returns it.

    The decision and its reason are recorded on the version and the move in the champion
    history, as the training gate records its own. Whether the challenger deserves it is the
    caller's question (income.monitoring.buttons asks the live experiment).
    """
    client = MlflowClient()
    champion, challenger = seats(name)
    if challenger is None or challenger == champion:
        raise RuntimeError(f"no challenger to promote: champion v{champion}, challenger v{challenger}")
    client.set_model_version_tag(name, challenger, DECISION_TAG, "promoted")
    client.set_model_version_tag(name, challenger, "promotion.reason", reason[:5000])
    if ROLLED_BACK_TAG in client.get_model_version(name, challenger).tags:  # promoted again after a rollback
        client.delete_model_version_tag(name, challenger, ROLLED_BACK_TAG)
    _set_champion(client, name, challenger, [*champion_history(client, name), challenger])
    return challenger


def rollback(name: str = MODEL_NAME) -> str:
    """Point `champion` at the previous champion version; return it."""
    client = MlflowClient()
    history = champion_history(client, name)
    current = _champion_version(client, name)
    if len(history) < 2 or current is None:
        raise RuntimeError(f"nothing to roll back to: champion history is {history or 'empty'}")
    previous = history[-2]
    _set_champion(client, name, previous, history[:-1])
    client.set_model_version_tag(name, current, ROLLED_BACK_TAG, f"champion moved back to v{previous}")
    return previous


def status(name: str = MODEL_NAME) -> str:
    client = MlflowClient()
    model = client.get_registered_model(name)
    aliases = ", ".join(f"{alias} -> v{version}" for alias, version in sorted(model.aliases.items()))
    return f"{name}: {aliases or 'no aliases'}; champion history {champion_history(client, name)}"


def main(argv: list[str]) -> None:
    configure()
    if argv == ["rollback"]:
        previous = rollback()
        print(f"champion is now v{previous}")
        print(status())
    elif argv == ["status"]:
        print(status())
    else:
        sys.exit("usage: python -m income.training.registry {status|rollback}")


if __name__ == "__main__":
    main(sys.argv[1:])
