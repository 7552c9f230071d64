"""The drift report's sample: bounded, the same users on both sides, everything below the limit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from income.inference.drift_sample import in_sample, read_sample, sample_fraction


def test_the_fraction_keeps_the_larger_side_at_the_limit():
    assert sample_fraction(1_000, 5_000, limit=10_000) == 1.0
    assert sample_fraction(10_000, limit=10_000) == 1.0
    assert sample_fraction(40_000, 10, limit=10_000) == 0.25


def test_the_sample_is_the_same_users_whatever_else_is_on_a_side():
    ids = np.arange(1, 400_001)
    keep = in_sample(ids, 0.25)
    assert keep.sum() == pytest.approx(100_000, rel=0.01)
    shuffled = np.random.default_rng(0).permutation(ids)[:1_000]  # another side, some of the users
    assert set(shuffled[in_sample(shuffled, 0.25)]) == set(shuffled) & set(ids[keep])
    assert in_sample(ids[:10], 1.0).all()


def test_read_sample_reads_the_sampled_rows_only(tmp_path):
    frame = pd.DataFrame({"user_id": np.arange(1, 10_001), "age": pd.array([30] * 9_999 + [None], "Int64")})
    frame.iloc[:5_000].to_parquet(tmp_path / "part-0.parquet")
    frame.iloc[5_000:].to_parquet(tmp_path / "part-1.parquet")
    got = read_sample(str(tmp_path), 0.1)
    expected = frame[in_sample(frame["user_id"], 0.1)]
    assert sorted(got["user_id"]) == expected["user_id"].tolist()
    everything = read_sample(str(tmp_path), 1.0)
    assert len(everything) == 10_000 and everything["age"].isna().sum() == 1
