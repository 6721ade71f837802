"""Array-level special functions that numpy lacks: erf, erfc and erfinv.

numpy has no erf, and exact GELU and truncated-normal init need it at float64 accuracy, so
this follows W. J. Cody's rational approximations (Math. Comp. 1969, the CALERF routine):
three ranges of |x|, each a ratio of polynomials, accurate to about one ulp in float64. The
code is plain array arithmetic, so it runs unchanged on cupy arrays.
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import xp_of

_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)  # fmt: skip
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)  # fmt: skip
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)  # fmt: skip
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)  # fmt: skip
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)  # fmt: skip
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)  # fmt: skip
_SQRPI = 5.6418958354775628695e-1  # 1 / sqrt(pi)
_THRESH = 0.46875
_TWO_OVER_SQRTPI = 2.0 / math.sqrt(math.pi)


def _erf_small(x):
    """erf(x) for |x| <= 0.46875."""
    ysq = x * x
    num, den = _A[4] * ysq, ysq
    for i in range(3):
        num = (num + _A[i]) * ysq
        den = (den + _B[i]) * ysq
    return x * (num + _A[3]) / (den + _B[3])


def _exp_neg_sq(xp, y):
    """exp(-y*y) without the rounding error of forming y*y (Cody's split)."""
    y = xp.minimum(y, 64.0)  # exp(-y*y) is 0 long before; keeps inf from giving inf - inf
    ysq = xp.trunc(y * 16.0) / 16.0
    return xp.exp(-ysq * ysq) * xp.exp(-(y - ysq) * (y + ysq))


def _erfc_large(xp, y):
    """erfc(y) for y >= 0.46875 (two ranges, joined at 4)."""
    mid = xp.minimum(y, 4.0)
    num, den = _C[8] * mid, mid
    for i in range(7):
        num = (num + _C[i]) * mid
        den = (den + _D[i]) * mid
    r_mid = (num + _C[7]) / (den + _D[7])
    big = xp.maximum(y, 4.0)
    inv = 1.0 / (big * big)
    num, den = _P[5] * inv, inv
    for i in range(4):
        num = (num + _P[i]) * inv
        den = (den + _Q[i]) * inv
    r_big = (_SQRPI - inv * (num + _P[4]) / (den + _Q[4])) / big
    return xp.where(y <= 4.0, r_mid, r_big) * _exp_neg_sq(xp, y)


def erf(x):
    xp = xp_of(x)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        y = xp.abs(x)
        small = _erf_small(xp.minimum(y, _THRESH) * xp.sign(x))
        large = 1.0 - _erfc_large(xp, xp.maximum(y, _THRESH))
        out = xp.where(y <= _THRESH, small, xp.where(x < 0, -large, large))
    return out.astype(x.dtype, copy=False)


def erfc(x):
    xp = xp_of(x)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        y = xp.abs(x)
        small = 1.0 - _erf_small(xp.minimum(y, _THRESH) * xp.sign(x))
        large = _erfc_large(xp, xp.maximum(y, _THRESH))
        out = xp.where(y <= _THRESH, small, xp.where(x < 0, 2.0 - large, large))
    return out.astype(x.dtype, copy=False)


def erfinv(y):
    """Winitzki's closed form as a start (about 2e-3 off), then Newton steps on erf (or on
    erfc near +-1, where 1 - |y| keeps its digits) until float64 rounding."""
    xp = xp_of(y)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        a = xp.abs(y)
        ln = xp.log1p(-a * a)
        t = 2.0 / (math.pi * 0.147) + 0.5 * ln
        x = xp.sqrt(xp.sqrt(t * t - ln / 0.147) - t)
        near_one = a >= 0.5
        one_minus = 1.0 - a
        for _ in range(4):
            step = xp.where(near_one, erfc(x) - one_minus, a - erf(x))
            x = x + step / (_TWO_OVER_SQRTPI * xp.exp(-x * x))
        x = xp.where(a == 1.0, xp.inf, xp.where(a > 1.0, xp.nan, x))
        out = xp.where(y < 0, -x, x)
    return out.astype(y.dtype, copy=False)
