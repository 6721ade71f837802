"""torch.special's modified Bessel functions of the second kind, K0 and K1 (and their
scaled forms e^x K(x)), and the modified_bessel_i0/i1 spellings of i0 and i1.

K_nu(x) = integral over t >= 0 of exp(-x cosh t) cosh(nu t): the integrand is analytic and
falls off doubly exponentially, so the trapezoidal rule converges geometrically in its step
(0.2, scaled by 1/sqrt(x) for large x, where the integrand narrows), and 220 points reach
machine precision from x = 1e-10 up. cosh t - 1 is formed as 2 sinh^2(t/2), without
cancellation, so the scaled forms keep their digits at large x. Below 1e-10 the leading
terms of the small-x series are exact to rounding. Like torch's, the results carry no
gradient.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from ..backend import xp_of
from ..tensor import Tensor

_EULER = 0.57721566490153286061
_POINTS = 220
_STEP = 0.2
_TINY = 1e-10


def scaled_k_integral(xp, x, order: float):
    """e^x K_order(x) for positive, finite x above 1e-10 (any real order), by the
    trapezoidal rule on the integral representation."""
    step = _STEP / xp.maximum(1.0, xp.sqrt(x))
    k = xp.arange(_POINTS, dtype=np.float64)
    t = step[..., None] * k
    weight = xp.where(k == 0, 0.5, 1.0) * step[..., None]
    half = xp.sinh(t / 2)
    integrand = xp.exp(-x[..., None] * (2 * half * half)) * xp.cosh(order * t)
    return (integrand * weight).sum(-1)


def _bessel_k(input: Tensor, order: int, scaled: bool) -> Tensor:
    data = input._data
    dtype = data.dtype if data.dtype.kind == "f" else _dtype.get_default_dtype().np
    xp = xp_of(data)
    x = data.astype(np.float64)
    with np.errstate(all="ignore"):
        safe = xp.where((x > _TINY) & xp.isfinite(x), x, 1.0)
        value = scaled_k_integral(xp, safe, order)  # e^x K(x)
        if not scaled:
            value = value * xp.exp(-safe)
        # the small-x series' leading terms
        small = xp.maximum(x, 1e-300)
        series = -xp.log(small / 2) - _EULER if order == 0 else 1 / small
        series = series * (xp.exp(small) if scaled else 1.0)
        value = xp.where(x <= _TINY, series, value)
        value = xp.where(x == 0, np.inf, value)
        value = xp.where(xp.isinf(x) & (x > 0), 0.0, value)
        value = xp.where((x < 0) | xp.isnan(x), np.nan, value)
    return Tensor._make(value.astype(dtype))


def modified_bessel_k0(input: Tensor) -> Tensor:
    return _bessel_k(input, 0, scaled=False)


def modified_bessel_k1(input: Tensor) -> Tensor:
    return _bessel_k(input, 1, scaled=False)


def scaled_modified_bessel_k0(input: Tensor) -> Tensor:
    return _bessel_k(input, 0, scaled=True)


def scaled_modified_bessel_k1(input: Tensor) -> Tensor:
    return _bessel_k(input, 1, scaled=True)


def modified_bessel_i0(input: Tensor) -> Tensor:
    from .special_functions import i0  # noqa: PLC0415

    return i0(input).detach()


def modified_bessel_i1(input: Tensor) -> Tensor:
    from .special_functions import i1  # noqa: PLC0415

    return i1(input).detach()


__all__ = [
    "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
    "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
]  # fmt: skip
