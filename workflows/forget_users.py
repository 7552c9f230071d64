"""Forget users everywhere (GDPR): raw history, every feature set version, training sets, predictions, Valkey.

pyflyte run workflows/forget_users.py forget_users --user_ids ids.csv
"""

from __future__ import annotations

from flytekit import workflow
from flytekit.types.file import FlyteFile

from tasks.forget import ForgetReport, forget


@workflow
def forget_users(user_ids: FlyteFile, predictions_uri: str = "") -> ForgetReport:
    """Erase the users of `user_ids` (a CSV or parquet file with a user_id column) from every store."""
    return forget(user_ids=user_ids, predictions_uri=predictions_uri)
