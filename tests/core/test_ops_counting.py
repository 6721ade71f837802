"""unique, unique_consecutive, bincount, searchsorted and bucketize against torch: values,
inverse indices, counts and dtypes, along a dim too, and torch's errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

rng = np.random.default_rng(13)
INTS = rng.integers(0, 6, 40)
ROWS = rng.integers(0, 3, (12, 2))
RUNS = np.repeat(rng.integers(0, 4, 10), rng.integers(1, 4, 10))


def _same(mine, theirs) -> None:
    mine = mine if isinstance(mine, tuple) else (mine,)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs):
        assert a.dtype.name == str(b.dtype).removeprefix("torch.")
        if a.dtype.is_floating_point:  # sums of weights: the order of additions may differ
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
        else:
            np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize(
    "fn, data",
    [
        (lambda lib, x: lib.unique(x), INTS),
        (lambda lib, x: lib.unique(x, return_inverse=True, return_counts=True), INTS),
        (lambda lib, x: x.unique(return_counts=True), INTS.reshape(5, 8)),
        (lambda lib, x: lib.unique(x, dim=0, return_inverse=True, return_counts=True), ROWS),
        (lambda lib, x: lib.unique_consecutive(x, return_inverse=True, return_counts=True), RUNS),
        (lambda lib, x: lib.unique_consecutive(x, dim=0), np.repeat(ROWS, 2, axis=0)),
        (lambda lib, x: lib.bincount(x), INTS),
        (lambda lib, x: x.bincount(minlength=10), INTS),
        (lambda lib, x: lib.bincount(x, weights=lib.linspace(0, 1, 40)), INTS),
    ],
    ids=[
        "unique", "unique inverse counts", "unique 2-D", "unique dim", "unique_consecutive",
        "unique_consecutive dim", "bincount", "bincount minlength", "bincount weights",
    ],
)  # fmt: skip
def test_counting_matches_torch(fn, data):
    _same(fn(sg, sg.tensor(data)), fn(torch, torch.tensor(data)))


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_and_bucketize_match_torch(right):
    boundaries = np.array([1.0, 3.0, 5.0, 7.0])
    values = np.array([[0.0, 3.0, 6.0], [8.0, 1.0, 5.0]])
    rows = np.sort(rng.standard_normal((2, 5)), axis=1)
    for lib_fn in (
        lambda lib: lib.searchsorted(lib.tensor(boundaries), lib.tensor(values), right=right),
        lambda lib: lib.searchsorted(lib.tensor(rows), lib.tensor(values), right=right),
        lambda lib: lib.bucketize(lib.tensor(values), lib.tensor(boundaries), right=right),
        lambda lib: lib.bucketize(lib.tensor(values), lib.tensor(boundaries), out_int32=True),
    ):
        _same(lib_fn(sg), lib_fn(torch))


def test_errors_match_torch():
    for lib in (sg, torch):
        with pytest.raises(RuntimeError, match="1-d non-negative integral"):
            lib.bincount(lib.tensor([1, -1]))
        with pytest.raises(RuntimeError, match="boundaries tensor must be 1 dimension"):
            lib.bucketize(lib.tensor([1.0]), lib.tensor([[1.0, 2.0]]))
