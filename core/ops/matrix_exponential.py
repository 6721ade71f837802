"""The matrix exponential, by scaling and squaring with a Padé approximant (Higham 2005, the
algorithm of scipy's expm and of torch's CPU kernel in double precision).

The smallest Padé degree (3, 5, 7, 9 or 13) whose error bound holds for ||A||_1 is used; past
degree 13's bound, A is scaled by 2^-s, exponentiated, and squared s times. For a batch the
largest norm decides for every matrix (more squarings never hurt accuracy). Everything is
Tensor ops (products, one solve, squarings), so the gradient is the derivative of the same
approximation, exact to rounding for the exponential's own derivative.
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import xp_of
from ..tensor import Tensor
from .decompositions import check_matrix

# Higham's theta_m: the largest ||A||_1 for which the [m/m] approximant is accurate to
# double-precision unit roundoff, and the approximants' coefficients.
_THETA = {3: 1.495585217958292e-2, 5: 2.539398330063230e-1, 7: 9.504178996162932e-1,
          9: 2.097847961257068e0, 13: 5.371920351148152e0}  # fmt: skip
_COEFFS = {
    3: (120.0, 60.0, 12.0, 1.0),
    5: (30240.0, 15120.0, 3360.0, 420.0, 30.0, 1.0),
    7: (17297280.0, 8648640.0, 1995840.0, 277200.0, 25200.0, 1512.0, 56.0, 1.0),
    9: (17643225600.0, 8821612800.0, 2075673600.0, 302702400.0, 30270240.0, 2162160.0,
        110880.0, 3960.0, 90.0, 1.0),
    13: (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
         129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
         40840800.0, 960960.0, 16380.0, 182.0, 1.0),
}  # fmt: skip


def _one_norm(A: Tensor) -> float:
    """max over the batch of the largest absolute column sum."""
    a = A._data
    if a.size == 0:
        return 0.0
    col_sums = xp_of(a).abs(a).sum(axis=-2)
    return float(col_sums.max())


def _pade(A: Tensor, m: int, eye: Tensor) -> Tensor:
    """r_m(A) = (V - U)^-1 (V + U), U the odd part of the approximant's numerator."""
    from .matrix_functions import solve  # noqa: PLC0415 - a sibling family

    b = _COEFFS[m]
    a2 = A @ A
    if m == 13:
        a4 = a2 @ a2
        a6 = a4 @ a2
        odd = a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2
        u = A @ (odd + b[1] * eye)
        v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2
        v = v + b[0] * eye
    else:
        powers = [eye, a2]
        while len(powers) <= m // 2:
            powers.append(powers[-1] @ a2)
        u = A @ sum(b[2 * k + 1] * p for k, p in enumerate(powers))
        v = sum(b[2 * k] * p for k, p in enumerate(powers))
    return solve(v - u, v + u)


def matrix_exp(A: Tensor) -> Tensor:
    """exp(A) = sum_k A^k / k! for a (batch of) square matrices."""
    check_matrix("linalg.matrix_exp", A)
    n = A.shape[-1]
    if A.numel() == 0:
        return A.clone()
    if n == 1:
        return A.exp()
    eye = Tensor._make(xp_of(A._data).eye(n, dtype=A._data.dtype))
    norm = _one_norm(A)
    for m in (3, 5, 7, 9):
        if norm <= _THETA[m]:
            return _pade(A, m, eye)
    squarings = max(0, math.ceil(math.log2(norm / _THETA[13]))) if np.isfinite(norm) else 0
    result = _pade(A / 2.0**squarings, 13, eye)
    for _ in range(squarings):
        result = result @ result
    return result


TENSOR_METHODS = {"matrix_exp": matrix_exp}

__all__ = ["matrix_exp"]
