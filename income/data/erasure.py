"""The erasure list: who was forgotten, as salted hashes, so later batches about them are dropped.

`forget_users` removes people from every store; data about them can still arrive later
(a labels-only batch for an old record, an upstream re-send). Ingestion drops such rows
before validation (they are counted, never stored, not even in the quarantine). The list
keeps only salted sha256 hashes of the ids, one file per erasure request:

    erasure/_salt                       random, written once per offline store
    erasure/<request digest>.parquet    one column `user_hash`

A hash of a small integer id can be recovered by trying every id with the salt, which
sits beside it: this keeps the ids out of plain sight, not out of reach of someone who can
read the store. A keyed hash with a secret from the environment would close that.
"""

from __future__ import annotations

import hashlib
import secrets

import numpy as np
import pandas as pd

from income.data.schema import ENTITY_KEY
from income.platform.files import parquet_files, read_text, write_parquet_atomically, write_text_atomically

HASH_COLUMN = "user_hash"


def _folder(root: str) -> str:
    return f"{root.rstrip('/')}/erasure"


def _salt(root: str) -> str:
    uri = f"{_folder(root)}/_salt"
    salt = read_text(uri)
    if salt is None:
        write_text_atomically(uri, secrets.token_hex(16))
        salt = read_text(uri)
    return salt


def user_hashes(root: str, user_ids) -> np.ndarray:
    salt = _salt(root)
    return np.array([hashlib.sha256(f"{salt}:{int(u)}".encode()).hexdigest() for u in user_ids], dtype=object)


def record_erasure(root: str, user_ids, request_digest: str) -> None:
    """Add the users to the erasure list (idempotent per request)."""
    frame = pd.DataFrame({HASH_COLUMN: user_hashes(root, sorted(set(int(u) for u in user_ids)))})
    write_parquet_atomically(frame, f"{_folder(root)}/{request_digest[:16]}.parquet")


def erased_hashes(root: str) -> set[str]:
    hashes: set[str] = set()
    for uri in parquet_files(_folder(root)):
        hashes.update(pd.read_parquet(uri)[HASH_COLUMN])
    return hashes


def drop_erased(root: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The rows of `frame` not about an erased user, and how many were dropped."""
    erased = erased_hashes(root)
    if not erased or frame.empty:
        return frame, 0
    ids = pd.to_numeric(frame[ENTITY_KEY], errors="coerce")
    known = ids.notna() & (ids == ids.round())
    hit = np.zeros(len(frame), dtype=bool)
    hit[known.to_numpy()] = np.isin(user_hashes(root, ids[known].astype("int64")), list(erased))
    return frame[~hit].reset_index(drop=True), int(hit.sum())
