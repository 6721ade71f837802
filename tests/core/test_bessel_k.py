"""torch.special's K0, K1 (and scaled), and the modified_bessel_i0/i1 spellings: against
40-digit mpmath references from 1e-300 to 1e6, against torch, and at the edges."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import to_numpy

XS = np.array(
    [1e-300, 1e-12, 1e-9, 1e-6, 1e-3, 0.1, 0.5, 1.0, 2.0, 5.0, 20.0, 100.0, 600.0, 1e4, 1e6]
)


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("scaled", [False, True])
def test_bessel_k_to_machine_precision(order, scaled):
    name = ("scaled_" if scaled else "") + f"modified_bessel_k{order}"
    ours = to_numpy(getattr(sg.special, name)(sg.tensor(XS)))
    with mpmath.workdps(40):
        ref = np.array(
            [
                float(mpmath.besselk(order, mpmath.mpf(x)) * (mpmath.exp(x) if scaled else 1))
                for x in XS
            ]
        )
    nonzero = ref != 0
    np.testing.assert_allclose(ours[nonzero], ref[nonzero], rtol=1e-14)
    assert (ours[~nonzero] == 0).all()
    theirs = to_numpy(getattr(torch.special, name)(torch.tensor(XS)))
    np.testing.assert_allclose(ours, theirs, rtol=2e-15)
    edges = [0.0, -1.0, float("inf"), float("nan")]
    ours_edges = to_numpy(getattr(sg.special, name)(sg.tensor(edges)))
    theirs_edges = to_numpy(getattr(torch.special, name)(torch.tensor(edges)))
    np.testing.assert_array_equal(ours_edges, theirs_edges)
    x32 = getattr(sg.special, name)(sg.tensor([1, 2]))  # integers -> float32
    assert x32.dtype == sg.float32 and not x32.requires_grad


def test_modified_bessel_i_spellings_match_torch():
    x = np.linspace(-5, 5, 11)
    for name in ("modified_bessel_i0", "modified_bessel_i1"):
        ours = getattr(sg.special, name)(sg.tensor(x, requires_grad=True))
        assert not ours.requires_grad  # as torch's
        np.testing.assert_allclose(
            to_numpy(ours), to_numpy(getattr(torch.special, name)(torch.tensor(x))), rtol=1e-14
        )
