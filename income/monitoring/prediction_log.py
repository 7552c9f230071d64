"""The prediction log: every prediction the service answers (and every shadow score), kept.

Online, the service appends one entry per prediction to a Valkey stream (STREAM) before it
answers, so that every 200 is in the log even if the process is killed right after
(serving.prediction_log batches the appends of concurrent requests into one pipeline). A
scheduled task drains the stream into the offline store as parquet (`drain`), and the
readers of the log (outcomes, live metrics, monitoring) read that parquet (`read_log`).

An entry is one JSON object (`encode`) with the fields of LOG_COLUMNS plus the feature values
(`features`: name -> value) and, per feature view, the event time of the values used
(`feature_times`: view -> epoch seconds). In parquet, features become columns of their own
names and feature times columns `ts__<view>` (UTC timestamps), so a log written by models of
different feature services reads back as one table with the union of their columns.

Draining is at-least-once: a chunk is written (atomically, named after its first and last
stream ids) before it is trimmed from the stream, so a crash in between writes it again on
the next run, in a file of its own; `read_log` keeps one row per stream id (`log_id`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import pyarrow.parquet as pq

from income.features.offline_store import table_uri
from income.platform.files import filesystem_and_path, parquet_files, write_parquet_atomically

STREAM = "income:prediction_log"
TABLE = "prediction_log"  # under the offline store root; partitioned by the entries' UTC date
TIME_PREFIX = "ts__"
LOG_COLUMNS = (
    "request_id",
    "time",  # epoch seconds when the prediction was made
    "user_id",
    "model_name",
    "model_version",
    "variant",  # champion | challenger | shadow
    "served",  # False for shadow scores: logged, never returned
    "feature_service",
    "probability",
    "label",
    "threshold",
    "latency_ms",  # from the request's arrival to its scores
)
DRAIN_CHUNK = 50_000


def encode(record: dict) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def decode(log_id: str, payload: bytes) -> dict:
    """One stream entry as a flat row: log fields, feature columns, `ts__<view>` columns."""
    record = json.loads(payload)
    row = {"log_id": log_id, **{k: record[k] for k in LOG_COLUMNS}}
    row.update(record["features"])
    row.update({TIME_PREFIX + view: t for view, t in record["feature_times"].items()})
    return row


def to_frame(rows: list[dict]) -> pd.DataFrame:
    """Decoded rows as a table with UTC timestamps for `time` and the feature times."""
    frame = pd.DataFrame(rows)
    for column in ["time", *(c for c in frame.columns if c.startswith(TIME_PREFIX))]:
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
    return frame


@dataclass(frozen=True)
class DrainSummary:
    entries: int
    files: list[str]
    remaining: int  # entries left in the stream (appended while draining)


def _id_after(log_id: str) -> str:
    """The smallest stream id greater than `log_id` (XTRIM MINID keeps ids >= it)."""
    millis, sequence = log_id.split("-")
    return f"{millis}-{int(sequence) + 1}"


def drain(client, offline_root: str, chunk: int = DRAIN_CHUNK) -> DrainSummary:
    """Move every entry of the stream into parquet under `<offline_root>/prediction_log/`.

    `client`: a synchronous valkey client. Each chunk is written, then trimmed from the
    stream; entries appended meanwhile stay for the next run.
    """
    files, entries = [], 0
    while True:
        batch = client.xrange(STREAM, min="-", max="+", count=chunk)
        if not batch:
            break
        rows = [decode(i.decode(), fields[b"e"]) for i, fields in batch]
        frame = to_frame(rows)
        first, last = rows[0]["log_id"], rows[-1]["log_id"]
        for day, part in frame.groupby(frame["time"].dt.strftime("%Y-%m-%d"), sort=True):
            uri = table_uri(offline_root, f"{TABLE}/date={day}/log-{first}-{last}.parquet")
            write_parquet_atomically(part.reset_index(drop=True), uri)
            files.append(uri)
        client.xtrim(STREAM, minid=_id_after(last), approximate=False)
        entries += len(rows)
    return DrainSummary(entries=entries, files=files, remaining=client.xlen(STREAM))


def _read(uri: str) -> pd.DataFrame:
    filesystem, path = filesystem_and_path(uri)
    return pq.read_table(path, filesystem=filesystem, partitioning=None).to_pandas()


def read_log(offline_root: str) -> pd.DataFrame:
    """Every drained entry, one row per stream id, in stream order (empty frame when none)."""
    files = parquet_files(table_uri(offline_root, TABLE))
    if not files:
        return pd.DataFrame(columns=["log_id", *LOG_COLUMNS])
    frame = pd.concat([_read(f) for f in files], ignore_index=True)
    order = frame["log_id"].str.split("-", expand=True).astype("int64")
    frame = frame.assign(_ms=order[0], _seq=order[1]).sort_values(["_ms", "_seq"], kind="stable")
    return frame.drop_duplicates("log_id").drop(columns=["_ms", "_seq"]).reset_index(drop=True)


def forget_in_stream(client, user_ids) -> int:
    """Delete the users' entries still waiting in the stream (erasure); returns how many."""
    users, removed, start = {int(u) for u in user_ids}, 0, "-"
    while True:
        batch = client.xrange(STREAM, min=start, max="+", count=DRAIN_CHUNK)
        if not batch:
            return removed
        doomed = [i for i, fields in batch if int(json.loads(fields[b"e"])["user_id"]) in users]
        if doomed:
            removed += client.xdel(STREAM, *doomed)
        start = "(" + batch[-1][0].decode()  # exclusive: after the last entry read
