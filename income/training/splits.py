"""Train, validation and test splits by label time, so no timestamp lands in two splits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from income.data.schema import ENTITY_KEY, TIMESTAMP


def split_by_time(
    df: pd.DataFrame, valid_share: float = 0.15, test_share: float = 0.15
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, valid, test) by label time: earlier rows train, later validate, latest test.

    The cuts fall between distinct timestamps, so no timestamp lands in two splits; the
    shares are met as closely as ties allow.
    """
    if not (valid_share >= 0 and test_share >= 0 and valid_share + test_share < 1):
        raise ValueError("valid_share and test_share must be >= 0 and sum to less than 1")
    ordered = df.sort_values([TIMESTAMP, ENTITY_KEY], kind="stable").reset_index(drop=True)
    times = ordered[TIMESTAMP].to_numpy()
    n = len(ordered)

    def cut(share_before: float) -> int:
        """Index of the first row at or after the timestamp found at the share's position."""
        position = int(round(n * share_before))
        if position >= n:
            return n
        return int(np.searchsorted(times, times[position], side="left"))

    valid_start = cut(1 - valid_share - test_share)
    test_start = max(cut(1 - test_share), valid_start)
    return (
        ordered.iloc[:valid_start].reset_index(drop=True),
        ordered.iloc[valid_start:test_start].reset_index(drop=True),
        ordered.iloc[test_start:].reset_index(drop=True),
    )
