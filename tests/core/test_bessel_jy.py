"""torch.special's J0, J1, Y0, Y1: against 40-digit mpmath references from 1e-300 to 1e8
(absolute error about 1e-15, torch's about 1e-8), against torch, and at the edges."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import to_numpy

XS = np.array(
    [1e-300, 1e-8, 1e-3, 0.0011, 0.1, 0.5, 1.0, 2.4048, 3.0, 5.0, 8.0, 12.0, 18.0, 24.9, 25.1,
     30.0, 50.0, 100.0, 1e3, 1e5]
)  # fmt: skip
REFERENCE = {
    "bessel_j0": lambda x: mpmath.besselj(0, x),
    "bessel_j1": lambda x: mpmath.besselj(1, x),
    "bessel_y0": lambda x: mpmath.bessely(0, x),
    "bessel_y1": lambda x: mpmath.bessely(1, x),
}


@pytest.mark.parametrize("name", list(REFERENCE))
def test_bessel_first_and_second_kind(name):
    ours = to_numpy(getattr(sg.special, name)(sg.tensor(XS)))
    with mpmath.workdps(40):
        ref = np.array([float(REFERENCE[name](mpmath.mpf(x))) for x in XS])
    scale = np.maximum(np.abs(ref), 1.0)
    assert np.max(np.abs(ours - ref) / scale) < 1e-13
    theirs = to_numpy(getattr(torch.special, name)(torch.tensor(XS)))
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-7)
    if name.startswith("bessel_j"):  # even and odd
        sign = 1 if name == "bessel_j0" else -1
        mirrored = to_numpy(getattr(sg.special, name)(sg.tensor(-XS)))
        np.testing.assert_array_equal(mirrored, sign * ours)
    edges = [0.0, -1.5, float("inf"), float("-inf"), float("nan")]
    np.testing.assert_array_equal(
        to_numpy(getattr(sg.special, name)(sg.tensor(edges))),
        to_numpy(getattr(torch.special, name)(torch.tensor(edges))),
    )
    assert getattr(sg.special, name)(sg.tensor([1, 2])).dtype == sg.float32
