"""Shared test helpers: conversions between shardgrad and torch, and close-enough checks.

Torch is the oracle for the core: compare in float64 at rtol 1e-6 unless a test says why not.
"""

from __future__ import annotations

import numpy as np
import pytest

import shardgrad as sg


def to_numpy(x) -> np.ndarray:
    """A host numpy copy of a shardgrad tensor, torch tensor or array."""
    if isinstance(x, sg.Tensor):
        return np.asarray(x.detach().cpu().numpy())
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor
        return x.detach().cpu().numpy()
    return np.asarray(x)


def assert_close(actual, expected, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    a, e = to_numpy(actual), to_numpy(expected)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def pair(array: np.ndarray, requires_grad: bool = True):
    """The same float64 data as a shardgrad tensor and a torch tensor, both leaves."""
    import torch

    a = (
        np.array(array, dtype=np.float64)
        if np.asarray(array).dtype.kind == "f"
        else np.array(array)
    )
    grad = requires_grad and a.dtype.kind == "f"
    return sg.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
