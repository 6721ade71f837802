"""torch.special's orthogonal polynomials against torch: every kind, degrees from -1 to 40
(a float degree is cut to its integer part), points inside, at the ends of and outside the
interval, one degree per element, integer inputs and dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import to_numpy

NAMES = [
    "chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
    "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
    "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w", "hermite_polynomial_h",
    "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p",
]  # fmt: skip
X = np.array([-1.0, -0.7, -0.3, 0.0, 0.2, 0.5, 0.9, 1.0, 1.5, -2.0, 0.999, 0.5001])


def _agree(ours, theirs):
    a, b = to_numpy(ours), to_numpy(theirs)
    assert ours.dtype == getattr(sg, str(theirs.dtype).split(".")[-1])
    tol = 1e-12 if a.dtype == np.float64 else 1e-5
    scale = np.abs(np.nan_to_num(b)).max(initial=1.0)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("name", NAMES)
def test_polynomials_match_torch(name):
    ours, theirs = getattr(sg.special, name), getattr(torch.special, name)
    for n in [-1, 0, 1, 2, 3, 5, 7, 9, 12, 20, 40, 2.7]:
        degree = np.full_like(X, n)
        _agree(ours(sg.tensor(X), sg.tensor(degree)), theirs(torch.tensor(X), torch.tensor(degree)))
        _agree(ours(sg.tensor(X), n), theirs(torch.tensor(X), n))
    per_element = np.array([0, 1, 2, 3, 7, 9, 12, 3, 4, 5, 30, 8])
    _agree(
        ours(sg.tensor(X), sg.tensor(per_element)),
        theirs(torch.tensor(X), torch.tensor(per_element)),
    )
    _agree(ours(sg.tensor([1, 2]), 3), theirs(torch.tensor([1, 2]), 3))  # integers -> float32
    x32 = X.astype(np.float32)
    _agree(ours(sg.tensor(x32), 4), theirs(torch.tensor(x32), 4))


def test_results_carry_no_gradient_and_hermite_gives_up_as_torch():
    x = sg.tensor([0.3, 0.5], requires_grad=True)
    assert not sg.special.chebyshev_polynomial_t(x, 3).requires_grad
    big = sg.special.hermite_polynomial_h(sg.tensor([0.5], dtype=sg.float32), 200)
    assert np.isnan(to_numpy(big)).all()
    assert np.isnan(torch.special.hermite_polynomial_h(torch.tensor([0.5]), 200).numpy()).all()
