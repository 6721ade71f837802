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


def erfcx_rational(xp, y):
    """Cody's rational factor R(y), erfc(y) = R(y) exp(-y^2) for y >= 0.46875 (two ranges,
    joined at 4). It is exp(y^2) erfc(y) itself, so erfcx uses it without the exponential."""
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
    return xp.where(y <= 4.0, r_mid, r_big)


def _erfc_large(xp, y):
    """erfc(y) for y >= 0.46875."""
    return erfcx_rational(xp, y) * _exp_neg_sq(xp, y)


def _working(x):
    """float16 is computed in float32: the rational approximations overflow in half
    precision (torch's CPU kernels widen it too)."""
    return x.astype(np.float32) if x.dtype == np.float16 else x


def erf(x):
    xp = xp_of(x)
    dtype, x = x.dtype, _working(x)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        y = xp.abs(x)
        small = _erf_small(xp.minimum(y, _THRESH) * xp.sign(x))
        large = 1.0 - _erfc_large(xp, xp.maximum(y, _THRESH))
        out = xp.where(y <= _THRESH, small, xp.where(x < 0, -large, large))
    return out.astype(dtype, copy=False)


def erfc(x):
    xp = xp_of(x)
    dtype, x = x.dtype, _working(x)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        y = xp.abs(x)
        small = 1.0 - _erf_small(xp.minimum(y, _THRESH) * xp.sign(x))
        large = _erfc_large(xp, xp.maximum(y, _THRESH))
        out = xp.where(y <= _THRESH, small, xp.where(x < 0, 2.0 - large, large))
    return out.astype(dtype, copy=False)


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


# ---------------------------------------------------------------- the gamma function family
# Lanczos's approximation with Godfrey's coefficients (g = 607/128, 15 terms): about 1e-15
# relative error for x >= 0.5; smaller x goes through the reflection formula.
_LANCZOS_G = 607.0 / 128.0
_LANCZOS = (
    0.99999999999999709182, 57.156235665862923517, -59.597960355475491248,
    14.136097974741747174, -0.49191381609762019978, 0.33994649984811888699e-4,
    0.46523628927048575665e-4, -0.98374475304879564677e-4, 0.15808870322491248884e-3,
    -0.21026444172410488319e-3, 0.21743961811521264320e-3, -0.16431810653676389022e-3,
    0.84418223983852743293e-4, -0.26190838401581408670e-4, 0.36899182659531622704e-5,
)  # fmt: skip
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# Bernoulli numbers B_2 .. B_14, for the asymptotic series of digamma and the Hurwitz zeta
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6)


def _lanczos_lgamma(xp, x):
    """log|Gamma(x)| for x >= 0.5."""
    z = x - 1.0
    total = xp.full_like(z, _LANCZOS[0])
    for k, c in enumerate(_LANCZOS[1:], start=1):
        total = total + c / (z + k)
    t = z + _LANCZOS_G + 0.5
    return _HALF_LOG_2PI + (z + 0.5) * xp.log(t) - t + xp.log(total)


def _abs_sin_pi(xp, x):
    """|sin(pi x)|, exact at the integers (argument reduced to [-1/2, 1/2] first)."""
    return xp.abs(xp.sin(math.pi * (x - xp.round(x))))


def lgamma(x):
    """log|Gamma(x)|, +inf at the poles (0, -1, -2, ...)."""
    xp = xp_of(x)
    a = x.astype(np.float64)
    small = a < 0.5
    safe = xp.where(small, 1.0 - a, a)  # reflected where small
    out = _lanczos_lgamma(xp, safe)
    reflected = math.log(math.pi) - xp.log(_abs_sin_pi(xp, a)) - out
    out = xp.where(small, reflected, out)
    out = xp.where((a == 1) | (a == 2), 0.0, out)  # exact zeros, as C's lgamma gives
    return out.astype(x.dtype, copy=False)


def digamma(x):
    """psi(x) = d/dx log Gamma(x): -inf at 0, nan at the negative integers."""
    xp = xp_of(x)
    a = x.astype(np.float64)
    negative = a <= 0
    y = xp.where(negative, 1.0 - a, a)  # psi(x) = psi(1 - x) - pi / tan(pi x)
    shift = xp.zeros_like(y)
    for _ in range(10):  # psi(y) = psi(y + 1) - 1 / y, up to y >= 10 (series accurate there)
        low = y < 10
        shift = shift - xp.where(low, 1.0 / xp.where(low, y, 1.0), 0.0)
        y = xp.where(low, y + 1.0, y)
    # psi(y) ~ log y - 1 / (2y) - sum over j of B_2j / (2j y^2j), by Horner in 1 / y^2
    inv2 = 1.0 / (y * y)
    series = xp.zeros_like(y)
    for j in range(len(_BERNOULLI), 0, -1):
        series = (series + _BERNOULLI[j - 1] / (2 * j)) * inv2
    out = xp.log(y) - 0.5 / y - series + shift
    cot = xp.cos(math.pi * a) / xp.sin(math.pi * a)
    out = xp.where(negative, out - math.pi * cot, out)
    at_pole = negative & (a == xp.round(a))
    out = xp.where(at_pole, xp.where(a == 0, -np.inf, np.nan), out)
    return out.astype(x.dtype, copy=False)


def _hurwitz_zeta(xp, s: int, x):
    """zeta(s, x) = sum over k >= 0 of (x + k)^-s, for an integer s >= 2: shifted up to
    x >= 10, then the Euler-Maclaurin tail."""
    total = xp.zeros_like(x)
    y = x
    while True:
        low = y < 10
        if not bool(low.any()):
            break
        total = total + xp.where(low, xp.where(low, y, 1.0) ** (-s), 0.0)
        y = xp.where(low, y + 1.0, y)
    tail = y ** (1 - s) / (s - 1) + 0.5 * y ** (-s)
    factor = s * y ** (-s - 1)  # s (s+1) ... (s+2j-2) y^(-s-2j+1), j = 1
    fact = 2.0  # (2j)!
    for j, b in enumerate(_BERNOULLI, start=1):
        tail = tail + b / fact * factor
        factor = factor * (s + 2 * j - 1) * (s + 2 * j) / (y * y)
        fact = fact * (2 * j + 1) * (2 * j + 2)
    return total + tail


def polygamma(n: int, x):
    """The n-th derivative of digamma: (-1)^(n+1) n! zeta(n + 1, x) for n >= 1."""
    if n == 0:
        return digamma(x)
    xp = xp_of(x)
    a = x.astype(np.float64)
    at_pole = (a <= 0) & (a == xp.round(a))
    out = (
        (-1.0) ** (n + 1) * math.factorial(n) * _hurwitz_zeta(xp, n + 1, xp.where(at_pole, 1.0, a))
    )
    out = xp.where(at_pole, np.inf if n % 2 else -np.inf, out)  # torch's values there
    return out.astype(x.dtype, copy=False)
