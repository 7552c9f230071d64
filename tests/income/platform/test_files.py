"""Parquet files under a folder are found and rewritten whatever folder that one sits in."""

from __future__ import annotations

import pandas as pd
from pyarrow import fs as pafs

from income.platform.files import (
    filesystem_and_path,
    parquet_files,
    read_text,
    remove_rows,
    write_parquet_atomically,
    write_text_atomically,
)


def test_files_under_a_hidden_folder_are_found_and_hidden_files_below_it_are_not(tmp_path):
    root = tmp_path / ".runtime" / "store"
    frame = pd.DataFrame({"user_id": pd.Series([1, 2, 3], dtype="int64")})
    write_parquet_atomically(frame, str(root / "t" / "month=1" / "part-0.parquet"))
    write_parquet_atomically(frame, str(root / "t" / ".staging" / "part-0.parquet"))

    assert parquet_files(str(root)) == [str(root / "t" / "month=1" / "part-0.parquet")]
    assert remove_rows(str(root), "user_id", [2]) == 1
    assert pd.read_parquet(root / "t" / "month=1" / "part-0.parquet")["user_id"].tolist() == [1, 3]
    assert pd.read_parquet(root / "t" / ".staging" / "part-0.parquet")["user_id"].tolist() == [1, 2, 3]


def test_a_relative_local_path_is_read_from_the_working_directory(tmp_path, monkeypatch):
    frame = pd.DataFrame({"user_id": pd.Series([7], dtype="int64")})
    write_parquet_atomically(frame, str(tmp_path / "in" / "batch.parquet"))
    monkeypatch.chdir(tmp_path / "in")

    filesystem, path = filesystem_and_path("../in/batch.parquet")

    assert path == str(tmp_path / "in" / "batch.parquet")
    assert filesystem.get_file_info(path).type.name == "File"


def test_on_object_storage_files_are_written_found_rewritten_and_read_back(s3_bucket):
    """Against a real S3 server (moto): the same contract as on a local disk."""
    root = f"{s3_bucket}/store"
    frame = pd.DataFrame({"user_id": pd.Series([1, 2, 3], dtype="int64")})
    write_parquet_atomically(frame, f"{root}/t/month=1/part-0.parquet")
    write_parquet_atomically(frame, f"{root}/t/.staging/part-0.parquet")
    write_text_atomically(f"{root}/notes/a.txt", "first")
    write_text_atomically(f"{root}/notes/a.txt", "second")

    assert parquet_files(root) == [f"{root}/t/month=1/part-0.parquet"]
    assert remove_rows(root, "user_id", [2]) == 1
    assert pd.read_parquet(f"{root}/t/month=1/part-0.parquet")["user_id"].tolist() == [1, 3]
    assert pd.read_parquet(f"{root}/t/.staging/part-0.parquet")["user_id"].tolist() == [1, 2, 3]
    assert read_text(f"{root}/notes/a.txt") == "second"
    assert read_text(f"{root}/notes/missing.txt") is None
    filesystem, path = filesystem_and_path(root)
    assert filesystem.type_name == "s3"
    left = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    assert not [f.path for f in left if f.path.endswith(".tmp")]  # every temporary name moved into place
