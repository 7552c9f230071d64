"""The green and the red button.

    python -m income.monitoring.buttons promote                      # only if the live experiment says so
    python -m income.monitoring.buttons promote --force "REASON"     # overrides it, reason recorded
    python -m income.monitoring.buttons rollback                     # the previous champion, at once
    python -m income.monitoring.buttons status

`make promote` / `make promote FORCE=1 REASON="..."` / `make rollback` call these.

Promotion asks the latest live analysis (`make monitor` writes it, tasks.monitoring): it must
compare the versions in the seats now and have decided `promote` at its planned size.
Each model version's contract names the feature service it was trained on, and the service
and batch scoring read each model's own service: moving `champion` moves the model and its
feature version together, so a rollback restores both. The service follows an alias move
within INCOME_SERVE_RELOAD_SECONDS (10 s), keeping the old version until the new one is loaded.
Both buttons are recorded in the registry (champion history, version tags) and in lineage.
"""

from __future__ import annotations

import argparse
import sys

from income.monitoring.ab_test import PROMOTE, ABAnalysis, read_analysis
from income.platform import lineage
from income.platform.settings import offline_store_uri
from income.platform.tracking import MODEL_NAME, configure
from income.training.registry import ROLLED_BACK_TAG, promote_challenger, rollback, seats, status


def promotion_refused(
    analysis: ABAnalysis | None, champion: str | None, challenger: str | None, rolled_back: str = ""
) -> str | None:
    """Why the challenger may not be promoted on this evidence, or None when it may.

    `rolled_back`: the challenger's rollback note, if the red button once moved champion away
    from it; the evidence from before the rollback does not bring it back.
    """
    if challenger is None or challenger == champion:
        return f"no challenger to promote (champion v{champion}, challenger v{challenger})"
    if rolled_back:
        return f"v{challenger} was rolled back ({rolled_back}): promote it again only with a forced reason"
    if analysis is None:
        return "no live analysis yet: serve the challenger in shadow or A/B mode, then `make monitor`"
    if (analysis.champion_version, analysis.challenger_version) != (champion, challenger):
        return (
            f"the latest analysis compares v{analysis.champion_version} with v{analysis.challenger_version}, "
            f"the seats hold v{champion} and v{challenger}: run `make monitor` again"
        )
    if analysis.decision != PROMOTE:
        return f"the live analysis says '{analysis.decision}': {analysis.reason}"
    return None


def promote(name: str = MODEL_NAME, force_reason: str = "", analysis: ABAnalysis | None = None) -> str:
    """Promote the challenger when the analysis says so (or, forced, with the reason); the new champion."""
    from mlflow import MlflowClient

    champion, challenger = seats(name)
    rolled_back = ""
    if challenger is not None:
        rolled_back = MlflowClient().get_model_version(name, challenger).tags.get(ROLLED_BACK_TAG, "")
    refused = promotion_refused(analysis, champion, challenger, rolled_back)
    if refused and not force_reason:
        raise PermissionError(f"not promoted: {refused}")
    reason = f"forced: {force_reason} (analysis: {refused or 'promote'})" if force_reason else analysis.reason
    promoted = promote_challenger(name, reason)
    lineage.record("promotion", model_name=name, champion=promoted, previous=champion, reason=reason)
    return promoted


def roll_back(name: str = MODEL_NAME) -> str:
    """The red button: the previous champion (with its feature service, named in its contract)."""
    from mlflow import MlflowClient

    current, _ = seats(name)
    previous = rollback(name)
    service = MlflowClient().get_model_version(name, previous).tags.get("feature_service", "?")
    lineage.record("rollback", model_name=name, champion=previous, previous=current, feature_service=service)
    return previous


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m income.monitoring.buttons")
    parser.add_argument("action", choices=["promote", "rollback", "status"])
    parser.add_argument("--force", default="", metavar="REASON", help="promote whatever the analysis says")
    parser.add_argument("--model", default=MODEL_NAME)
    args = parser.parse_args(argv)
    configure()
    try:
        if args.action == "promote":
            version = promote(args.model, args.force, read_analysis(offline_store_uri()))
            print(f"champion is now v{version}")
        elif args.action == "rollback":
            print(f"champion is now v{roll_back(args.model)}")
    except (PermissionError, RuntimeError) as exc:
        sys.exit(str(exc))
    print(status(args.model))


if __name__ == "__main__":
    main(sys.argv[1:])
