"""torch.special.airy_ai: Airy's function Ai, the decaying solution of y'' = x y.

Four ranges, each where its method holds every digit: for |x| <= 2 the Maclaurin series
Ai(0) f(x) + Ai'(0) g(x); above 2, (1/pi) sqrt(x/3) K_1/3(zeta) with zeta = (2/3) x^(3/2)
(the modified Bessel integral of bessel_k); from -9 to -2, (sqrt|x| / 3) (J_1/3(zeta) +
J_-1/3(zeta)) with each J_nu from Schlafli's integrals by Gauss-Legendre quadrature; below
-9, the asymptotic expansion in 1/zeta, every term smaller than the last there. Within about
1e-14 of 40-digit references (less far out on the negative axis, where the phase zeta itself
carries rounding, as in any float64 evaluation). As torch's: no gradient, and nan at both
infinities.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _dtype
from ..backend import xp_of
from ..tensor import Tensor
from .bessel_k import scaled_k_integral

_AI0 = 0.355028053887817239260063186004183176  # Ai(0)
_AIP0 = -0.258819403792806798405183560189203963  # Ai'(0)
_NODES = 160
_ASYMPTOTIC_TERMS = 20


def _maclaurin(xp, x, terms: int = 60):
    cube = x * x * x
    f, g = xp.ones_like(x), x.copy()
    term_f, term_g = xp.ones_like(x), x.copy()
    for k in range(1, terms):
        term_f = term_f * cube / ((3 * k - 1) * (3 * k))
        term_g = term_g * cube / ((3 * k) * (3 * k + 1))
        f, g = f + term_f, g + term_g
    return _AI0 * f + _AIP0 * g


def _bessel_j_fractional(xp, order: float, z):
    """J_order(z) by Schlafli: (1/pi) integral over [0, pi] of cos(order t - z sin t), minus
    sin(order pi)/pi times the integral over t >= 0 of exp(-z sinh t - order t)."""
    nodes, weights = np.polynomial.legendre.leggauss(_NODES)
    nodes, weights = xp.asarray(nodes), xp.asarray(weights)
    t = (nodes + 1) * (math.pi / 2)
    oscillating = (xp.cos(order * t - z[:, None] * xp.sin(t)) * weights).sum(-1) / 2
    end = xp.arcsinh(800 / z) + 2  # exp(-z sinh t) is below 1e-300 beyond
    s = (nodes[None] + 1) * end[:, None] / 2
    decaying = (xp.exp(-z[:, None] * xp.sinh(s) - order * s) * weights).sum(-1) * end / 2
    return oscillating - math.sin(order * math.pi) / math.pi * decaying


def _asymptotic_negative(xp, xa):
    """Ai(-xa) for large xa: (sin(zeta + pi/4) P - cos(zeta + pi/4) Q) / (sqrt(pi) xa^1/4)."""
    zeta = (2 / 3) * xa * xp.sqrt(xa)
    u = [1.0]
    for k in range(1, 2 * _ASYMPTOTIC_TERMS + 2):
        u.append(u[-1] * (6 * k - 1) * (6 * k - 3) * (6 * k - 5) / (216 * k * (2 * k - 1)))
    inv2 = 1 / (zeta * zeta)
    even, odd = xp.zeros_like(xa), xp.zeros_like(xa)
    for k in reversed(range(_ASYMPTOTIC_TERMS)):  # Horner in 1/zeta^2
        even = even * inv2 + (-1) ** k * u[2 * k]
        odd = odd * inv2 + (-1) ** k * u[2 * k + 1]
    odd = odd / zeta
    phase = zeta + math.pi / 4
    return (xp.sin(phase) * even - xp.cos(phase) * odd) / (math.sqrt(math.pi) * xa**0.25)


def airy_ai(input: Tensor) -> Tensor:
    data = input._data
    dtype = data.dtype if data.dtype.kind == "f" else _dtype.get_default_dtype().np
    xp = xp_of(data)
    x = data.astype(np.float64).reshape(-1)
    out = xp.full(x.shape, np.nan)
    with np.errstate(all="ignore"):
        near = xp.abs(x) <= 2
        out[near] = _maclaurin(xp, x[near])
        above = (x > 2) & xp.isfinite(x)
        if bool(above.any()):
            xs = x[above]
            zeta = (2 / 3) * xs * xp.sqrt(xs)
            k = scaled_k_integral(xp, zeta, 1 / 3) * xp.exp(-zeta)
            out[above] = xp.sqrt(xs / 3) / math.pi * k
        middle = (x < -2) & (x >= -9)
        if bool(middle.any()):
            xa = -x[middle]
            zeta = (2 / 3) * xa * xp.sqrt(xa)
            j = _bessel_j_fractional(xp, 1 / 3, zeta) + _bessel_j_fractional(xp, -1 / 3, zeta)
            out[middle] = xp.sqrt(xa) / 3 * j
        far = (x < -9) & xp.isfinite(x)
        if bool(far.any()):
            out[far] = _asymptotic_negative(xp, -x[far])
    return Tensor._make(out.reshape(data.shape).astype(dtype))


__all__ = ["airy_ai"]
