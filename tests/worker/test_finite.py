"""all_finite: the one-pass sum answers, and a sum that overflowed falls back to the elements."""

from __future__ import annotations

import numpy as np
import pytest

from shardgrad.worker.finite import all_finite


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_finite_and_non_finite_arrays(dtype):
    a = np.linspace(-1, 1, 1001).astype(dtype)
    assert all_finite(a)
    for bad in (np.inf, -np.inf, np.nan):
        b = a.copy()
        b[517] = bad
        assert not all_finite(b)


def test_a_sum_that_overflows_is_checked_element_by_element():
    big = np.full(8, 3e38, np.float32)  # every element finite, their sum is not
    assert all_finite(big)
    big[3] = np.inf
    assert not all_finite(big)
