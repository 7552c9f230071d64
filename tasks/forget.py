"""Forget users (GDPR erasure): every store that holds rows about them loses those rows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from flytekit.types.file import FlyteFile

from income.data import batches
from income.data.erasure import record_erasure
from income.data.schema import ENTITY_KEY
from income.features.feature_store import get_store
from income.features.materialize import forget_online
from income.features.offline_store import VERSIONS, table_uri
from income.inference.population import population_from_file
from income.monitoring import prediction_log
from income.platform import lineage
from income.platform import report_html as h
from income.platform.files import remove_rows
from income.platform.settings import ValkeySettings, offline_store_uri, training_sets_uri
from income.platform.settings import predictions_uri as default_predictions_uri
from tasks.decks import show
from tasks.execution import execution_id
from tasks.resources import DECK_FIELDS, LONG, MEDIUM, SMALL, VALKEY_SECRET, task


@dataclass(frozen=True)
class ForgetReport:
    users: int
    ids_sha256: str  # of the sorted ids: the audit can prove which request ran without keeping the ids
    removed: dict[str, int] = field(default_factory=dict)  # rows (keys for Valkey) removed per store


def ids_digest(user_ids: list[int]) -> str:
    return hashlib.sha256(",".join(str(u) for u in sorted(user_ids)).encode()).hexdigest()


def forget_everywhere(user_ids: list[int], predictions_uri: str = "") -> dict[str, int]:
    """Remove the users from every store; rows (or keys) removed per store.

    - the raw history (bronze records and labels) and the quarantine;
    - every table of every retained feature set version (published or not);
    - the saved training sets and the prediction partitions;
    - their keys in Valkey;
    - the prediction log: drained (parquet) and still waiting in its Valkey stream;
    and puts them on the erasure list, so later batches about them are dropped at ingestion.
    Files are rewritten one by one, each atomically; a run that dies half-way is finished
    by running it again (every step is idempotent).
    """
    root = offline_store_uri()
    record_erasure(root, user_ids, ids_digest(user_ids))  # first: batches arriving meanwhile are dropped
    removed = {
        "raw history and quarantine": batches.remove_users(root, user_ids),
        "feature and label tables (every version)": remove_rows(
            table_uri(root, VERSIONS), ENTITY_KEY, user_ids
        ),
        "training sets": remove_rows(training_sets_uri(), ENTITY_KEY, user_ids),
        "predictions": remove_rows(predictions_uri or default_predictions_uri(), ENTITY_KEY, user_ids),
        "prediction log (drained)": remove_rows(table_uri(root, prediction_log.TABLE), ENTITY_KEY, user_ids),
    }
    valkey = ValkeySettings.from_env()
    removed["online store keys"] = forget_online(get_store(valkey), valkey.client(), user_ids)
    removed["prediction log (stream)"] = prediction_log.forget_in_stream(valkey.client(), user_ids)
    return removed


@task(
    requests=SMALL,
    limits=MEDIUM,
    timeout=LONG,
    retries=2,
    enable_deck=True,
    deck_fields=DECK_FIELDS,
    secret_requests=[VALKEY_SECRET],
)
def forget(user_ids: FlyteFile, predictions_uri: str = "") -> ForgetReport:
    """Erase the users listed in `user_ids` (CSV or parquet with a user_id column) from every store.

    Lineage keeps an audit record with the number of users and a digest of the ids, never
    the ids themselves.
    """
    ids = population_from_file(user_ids.download())[ENTITY_KEY].tolist()
    removed = forget_everywhere(ids, predictions_uri)
    report = ForgetReport(users=len(ids), ids_sha256=ids_digest(ids), removed=removed)
    lineage.record(
        "forget_users",
        flyte_execution_id=execution_id(),
        users=report.users,
        ids_sha256=report.ids_sha256,
        removed=removed,
    )
    show(
        "Forgotten",
        h.paragraph(f"{report.users:,} users erased (ids digest ", h.code(report.ids_sha256[:16]), ").")
        + h.table(["store", "rows or keys removed"], [(k, f"{v:,}") for k, v in removed.items()]),
    )
    return report
