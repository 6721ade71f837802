"""torch.special's Bessel functions of the first and second kinds, J0, J1, Y0 and Y1.

Up to x = 25 every J_m(x) comes from one sum: J_m(x) = (1/2pi) integral of
cos(m t - x sin t) over a period, and the trapezoidal rule on 160 points of this periodic,
analytic integrand is exact to rounding for every order at once (an inverse FFT of
exp(-i x sin t)). Y0 is then Neumann's series (2/pi)(log(x/2) + gamma) J0 - (4/pi) sum of
(-1)^k J_2k / k, whose terms have no cancellation, and Y1 = -Y0' by the same series
differentiated (J_m' = (J_m-1 - J_m+1) / 2). Beyond 25, Hankel's asymptotic expansions (24
terms, each smaller than the last there). Below 1e-3, J0 and J1 use their power series, so
J1 keeps its relative accuracy near 0. The absolute error is about 1e-15 (relative accuracy
is lower right next to a zero, where the value itself vanishes). As torch's: no gradient,
and nan at infinity.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _dtype
from ..backend import xp_of
from ..tensor import Tensor

_EULER = 0.57721566490153286061
_SPLIT = 25.0
_POINTS = 160
_NEUMANN_TERMS = 40
_HANKEL_TERMS = 24


def _inputs(input: Tensor):
    data = input._data
    dtype = data.dtype if data.dtype.kind == "f" else _dtype.get_default_dtype().np
    return xp_of(data), data.astype(np.float64), dtype


def _orders(xp, x):
    """J_m(x) for m = 0 .. _POINTS - 1, each row one element of x (|x| <= 25)."""
    t = xp.arange(_POINTS, dtype=np.float64) * (2 * math.pi / _POINTS)
    samples = xp.exp(-1j * x[:, None] * xp.sin(t)[None, :])
    return xp.fft.ifft(samples, axis=-1).real


def _small_range(xp, x):
    """J0, J1, Y0, Y1 for 0 < x <= 25."""
    j = _orders(xp, x)
    k = np.arange(1, _NEUMANN_TERMS + 1)
    signs = xp.asarray((-1.0) ** k)
    kk = xp.asarray(k.astype(np.float64))
    log_term = xp.log(x / 2) + _EULER
    j0, j1 = j[:, 0], j[:, 1]
    y0 = (2 / math.pi) * log_term * j0 - (4 / math.pi) * (signs * j[:, 2 * k] / kk).sum(-1)
    dj = (j[:, 2 * k - 1] - j[:, 2 * k + 1]) / 2
    dy0 = (2 / math.pi) * (j0 / x - log_term * j1) - (4 / math.pi) * (signs * dj / kk).sum(-1)
    return j0, j1, y0, -dy0


def _hankel(xp, x, order: int):
    """J and Y of `order` for x > 25 by Hankel's expansions."""
    mu = 4.0 * order * order
    a = [1.0]
    for k in range(1, 2 * _HANKEL_TERMS):
        a.append(a[-1] * (mu - (2 * k - 1) ** 2) / (k * 8))
    inv = 1 / x
    p = xp.zeros_like(x)
    q = xp.zeros_like(x)
    for k in reversed(range(_HANKEL_TERMS)):  # Horner in 1/x^2
        p = p * inv * inv + (-1) ** k * a[2 * k]
        q = q * inv * inv + (-1) ** k * a[2 * k + 1]
    q = q * inv
    chi = x - (order / 2 + 0.25) * math.pi
    amplitude = xp.sqrt(2 / (math.pi * x))
    return amplitude * (p * xp.cos(chi) - q * xp.sin(chi)), amplitude * (
        p * xp.sin(chi) + q * xp.cos(chi)
    )


def _all(input: Tensor):
    """(J0, J1, Y0, Y1) of |x| (Y only meaningful for x > 0), and x, xp, dtype."""
    xp, x, dtype = _inputs(input)
    flat = xp.abs(x).reshape(-1)
    finite = xp.isfinite(flat) & (flat > 0)
    near = finite & (flat <= _SPLIT)
    far = finite & (flat > _SPLIT)
    outs = [xp.zeros_like(flat) for _ in range(4)]
    with np.errstate(all="ignore"):
        if bool(near.any()):
            for out, value in zip(outs, _small_range(xp, flat[near])):
                out[near] = value
        if bool(far.any()):
            j0, y0 = _hankel(xp, flat[far], 0)
            j1, y1 = _hankel(xp, flat[far], 1)
            for out, value in zip(outs, (j0, j1, y0, y1)):
                out[far] = value
        tiny = finite & (flat < 1e-3)
        x2 = flat * flat
        outs[0] = xp.where(tiny, 1 - x2 / 4 + x2 * x2 / 64, outs[0])
        outs[1] = xp.where(tiny, flat / 2 * (1 - x2 / 8 + x2 * x2 / 192), outs[1])
    return [o.reshape(x.shape) for o in outs], x, xp, dtype


def bessel_j0(input: Tensor) -> Tensor:
    (j0, _, _, _), x, xp, dtype = _all(input)
    j0 = xp.where(x == 0, 1.0, j0)
    return Tensor._make(xp.where(~xp.isfinite(x), np.nan, j0).astype(dtype))


def bessel_j1(input: Tensor) -> Tensor:
    (_, j1, _, _), x, xp, dtype = _all(input)
    j1 = xp.where(x < 0, -j1, j1)  # odd
    j1 = xp.where(x == 0, 0.0, j1)
    return Tensor._make(xp.where(~xp.isfinite(x), np.nan, j1).astype(dtype))


def _second_kind(y, x, xp, dtype) -> Tensor:
    y = xp.where(x == 0, -np.inf, y)
    y = xp.where((x < 0) | ~xp.isfinite(x), np.nan, y)
    return Tensor._make(y.astype(dtype))


def bessel_y0(input: Tensor) -> Tensor:
    (_, _, y0, _), x, xp, dtype = _all(input)
    return _second_kind(y0, x, xp, dtype)


def bessel_y1(input: Tensor) -> Tensor:
    (_, _, _, y1), x, xp, dtype = _all(input)
    return _second_kind(y1, x, xp, dtype)


__all__ = ["bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1"]
