"""torch.special's classical orthogonal polynomials: Chebyshev of the first to fourth kinds
(T, U, V, W) and their shifted forms on [0, 1], Hermite (physicists' H, probabilists' He),
Laguerre L and Legendre P, as functions of x and an integer degree n (a float n is cut to
its integer part; n < 0 gives 0).

Each is its three-term recurrence, run for every element up to its own degree, with torch's
special cases and, for the Chebyshev kinds at high degree inside (-1, 1), its trigonometric
closed form (cos(n acos x) for T, and the like), chosen where torch chooses them so that
values agree to rounding. Like torch's, the results carry no gradient.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from ..backend import xp_of
from ..tensor import Tensor


def _operands(x, n):
    """x and n as arrays of the result dtype (the default float dtype for integers), n cut
    to an integer, both broadcast."""
    xs = x._data if isinstance(x, Tensor) else np.asarray(x)
    ns = n._data if isinstance(n, Tensor) else np.asarray(n)
    if isinstance(x, Tensor) and not isinstance(n, Tensor):
        ns = xp_of(xs).asarray(ns)
    if isinstance(n, Tensor) and not isinstance(x, Tensor):
        xs = xp_of(ns).asarray(xs)
    xp = xp_of(xs)
    dtype = np.result_type(xs.dtype, ns.dtype) if isinstance(n, Tensor) else xs.dtype
    if dtype.kind != "f":
        dtype = _dtype.get_default_dtype().np
    xs, ns = xp.broadcast_arrays(xs.astype(dtype), ns)
    return xp, xs, ns.astype(np.int64), dtype


def _recurrence(xp, n, first, step, dtype):
    """The value at degree n of the sequence 1, first, ..., with q_{j+1} = step(j, p, q) for
    j = 1, ..., n - 1 (p, q the two before)."""
    p = xp.ones(n.shape, dtype=dtype)
    q = first.astype(dtype, copy=True)
    top = int(n.max()) if n.size else 0
    for j in range(1, top):
        r = step(j, p, q)
        active = n > j
        p, q = xp.where(active, q, p), xp.where(active, r, q)
    return xp.where(n == 0, 1, q).astype(dtype)


def _finish(value, n, xp, dtype) -> Tensor:
    return Tensor._make(xp.where(n < 0, 0, value).astype(dtype))


def _even(n):
    return n % 2 == 0


def _chebyshev(kind: str, x, n, shifted: bool) -> Tensor:
    xp, x, n, dtype = _operands(x, n)
    with np.errstate(all="ignore"):
        y = x + x - 1 if shifted else x
        two_y = y + y
        first = {"t": y, "u": two_y, "v": two_y - 1, "w": two_y + 1}[kind]
        degree = n.astype(dtype)
        # recurrence everywhere (degrees 0 and 1 included)
        value = _recurrence(xp, n, first, lambda j, p, q: two_y * q - p, dtype)
        # the closed forms at high degree inside (-1, 1)
        limit = {"t": 6, "u": 8, "v": 8, "w": 8}[kind] if not shifted else {"t": 6, "u": 6, "v": 6, "w": 4}[kind]  # fmt: skip
        inside = (n > limit) & (xp.abs(y) < 1)
        theta = xp.arccos(xp.clip(y, -1, 1))
        odd_sign = xp.where(_even(n), 1.0, -1.0)
        if kind == "t":
            closed = xp.cos(degree * theta)
        elif kind == "u":
            s = xp.sin(theta)
            closed = xp.where(
                s != 0,
                xp.sin((degree + 1) * theta) / s,
                (degree + 1) * xp.cos((degree + 1) * theta) / y,
            )
        elif kind == "v":
            closed = xp.where(
                xp.sin(theta / 2) != 1,
                xp.cos((degree + 0.5) * theta) / xp.cos(theta / 2),
                odd_sign * (2 * degree + 1),
            )
        else:
            fallback = odd_sign if shifted else xp.where(y > 0, 2 * degree + 1, odd_sign)
            closed = xp.where(
                xp.cos(theta / 2) != 1, xp.sin((degree + 0.5) * theta) / xp.sin(theta / 2), fallback
            )
        value = xp.where(inside, closed, value)
        # the ends of the interval, exactly
        upper = (x == 1) if shifted else (y == 1)
        lower = (x == 0) if shifted else (y == -1)
        at_upper = {"t": 1.0, "u": degree + 1, "v": 1.0, "w": 2 * degree + 1}[kind]
        at_lower = {
            "t": odd_sign, "u": odd_sign * (degree + 1), "v": odd_sign * (2 * degree + 1),
            "w": odd_sign,
        }[kind]  # fmt: skip
        value = xp.where(upper, at_upper, xp.where(lower, at_lower, value))
    return _finish(value, n, xp, dtype)


def _chebyshev_function(kind: str, shifted: bool):
    name = f"{'shifted_' if shifted else ''}chebyshev_polynomial_{kind}"

    def polynomial(input, n) -> Tensor:
        return _chebyshev(kind, input, n, shifted)

    polynomial.__name__ = polynomial.__qualname__ = name
    polynomial.__doc__ = f"torch.special.{name}(input, n)."
    return polynomial


chebyshev_polynomial_t = _chebyshev_function("t", shifted=False)
chebyshev_polynomial_u = _chebyshev_function("u", shifted=False)
chebyshev_polynomial_v = _chebyshev_function("v", shifted=False)
chebyshev_polynomial_w = _chebyshev_function("w", shifted=False)
shifted_chebyshev_polynomial_t = _chebyshev_function("t", shifted=True)
shifted_chebyshev_polynomial_u = _chebyshev_function("u", shifted=True)
shifted_chebyshev_polynomial_v = _chebyshev_function("v", shifted=True)
shifted_chebyshev_polynomial_w = _chebyshev_function("w", shifted=True)


# torch gives up (nan) beyond these degrees of the Hermite polynomials
_HERMITE_LIMIT = {np.dtype(np.float32): 128, np.dtype(np.float64): 512}


def _hermite(x, n, physicists: bool) -> Tensor:
    xp, x, n, dtype = _operands(x, n)
    with np.errstate(all="ignore"):
        if physicists:  # H_{j+1} = 2x H_j - 2j H_{j-1}
            value = _recurrence(xp, n, x + x, lambda j, p, q: (x + x) * q - (2 * j) * p, dtype)
        else:  # He_{j+1} = x He_j - j He_{j-1}
            value = _recurrence(xp, n, x, lambda j, p, q: x * q - j * p, dtype)
        value = xp.where(n > _HERMITE_LIMIT.get(np.dtype(dtype), 1024), np.nan, value)
    return _finish(value, n, xp, dtype)


def hermite_polynomial_h(input, n) -> Tensor:
    return _hermite(input, n, physicists=True)


def hermite_polynomial_he(input, n) -> Tensor:
    return _hermite(input, n, physicists=False)


def laguerre_polynomial_l(input, n) -> Tensor:
    """L_{j+1} = ((2j + 1 - x) L_j - j L_{j-1}) / (j + 1); 1 at x = 0."""
    xp, x, n, dtype = _operands(input, n)
    with np.errstate(all="ignore"):
        value = _recurrence(
            xp, n, 1 - x, lambda j, p, q: (((j + j) + (1 - x)) * q - j * p) / (j + 1), dtype
        )
        value = xp.where(xp.abs(x) == 0, 1.0, value)
    return _finish(value, n, xp, dtype)


def legendre_polynomial_p(input, n) -> Tensor:
    """P_{j+1} = ((2j + 1) x P_j - j P_{j-1}) / (j + 1); +-1 at x = +-1."""
    xp, x, n, dtype = _operands(input, n)
    with np.errstate(all="ignore"):
        value = _recurrence(
            xp, n, x, lambda j, p, q: ((j + j + 1) * x * q - j * p) / (j + 1), dtype
        )
        ends = xp.where((x > 0) | _even(n), 1.0, -1.0)
        value = xp.where(xp.abs(x) == 1, ends, value)
    return _finish(value, n, xp, dtype)


__all__ = [
    "chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
    "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
    "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w", "hermite_polynomial_h",
    "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p",
]  # fmt: skip
