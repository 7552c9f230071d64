"""Time splits: train before validation before test, and no timestamp in two of them."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from income.data.schema import ENTITY_KEY, LABEL, TIMESTAMP
from income.training.splits import split_by_time

EPOCH = pd.Timestamp("2020-01-01", tz="UTC")


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.integers(0, 40), min_size=1, max_size=80),
    valid_share=st.sampled_from([0.0, 0.1, 0.15, 0.3]),
    test_share=st.sampled_from([0.0, 0.1, 0.15, 0.3]),
)
def test_split_by_time_orders_splits_and_never_shares_a_timestamp(times, valid_share, test_share):
    df = pd.DataFrame(
        {
            ENTITY_KEY: np.arange(len(times), dtype="int64"),
            TIMESTAMP: EPOCH + pd.to_timedelta(times, unit="D"),
            LABEL: 0,
        }
    )
    train, valid, test = split_by_time(df, valid_share, test_share)
    assert len(train) + len(valid) + len(test) == len(df)
    parts = [p[TIMESTAMP] for p in (train, valid, test) if len(p)]
    for earlier, later in itertools.pairwise(parts):
        assert earlier.max() < later.min()
    if len(set(times)) == len(times):  # no ties: the shares are met to the row
        assert abs(len(test) - round(len(df) * test_share)) <= 1
        assert abs(len(valid) + len(test) - round(len(df) * (valid_share + test_share))) <= 1
