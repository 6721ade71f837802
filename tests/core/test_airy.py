"""torch.special.airy_ai against 40-digit mpmath references across its four ranges (and
their joins), against torch, and at the edges."""

from __future__ import annotations

import mpmath
import numpy as np
import torch

import shardgrad as sg
from tests.conftest import to_numpy

XS = np.array(
    [-100.0, -30.0, -11.3, -9.5, -9.0, -8.0, -5.0, -3.0, -2.01, -2.0, -1.0, -0.5, 0.0, 0.3,
     1.0, 1.99, 2.01, 3.0, 5.0, 10.0, 50.0, 100.0, 110.0]
)  # fmt: skip


def test_airy_ai_matches_references_and_torch():
    ours = to_numpy(sg.special.airy_ai(sg.tensor(XS)))
    with mpmath.workdps(40):
        ref = np.array([float(mpmath.airyai(x)) for x in XS])
    nonzero = ref != 0
    np.testing.assert_allclose(ours[nonzero], ref[nonzero], rtol=1e-12)
    assert (ours[~nonzero] == 0).all()
    theirs = to_numpy(torch.special.airy_ai(torch.tensor(XS)))
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-300)
    edges = [float("inf"), float("-inf"), float("nan")]
    np.testing.assert_array_equal(
        to_numpy(sg.special.airy_ai(sg.tensor(edges))),
        to_numpy(torch.special.airy_ai(torch.tensor(edges))),
    )
    assert sg.special.airy_ai(sg.tensor([1, 2])).dtype == sg.float32
