"""Ops for torch.special's tail and Bessel functions: erfcx, log_ndtr, ndtri, gammainc,
gammaincc, zeta, i0, i0e, i1, i1e, each forward beside its derivative. The values come from
`_special_more`; as in torch, gammainc / gammaincc have no derivative in `a` and zeta none in
its exponent.
"""

from __future__ import annotations

import math

from ..autograd.node import Op
from ..tensor import Tensor
from . import _special_more as sm
from .elementwise import _floating, where

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


class Erfcx(Op):
    save_inputs = (0,)
    save_output = True

    def forward(self, a):
        return sm.erfcx(a)

    def backward(self, g):
        a, out = self.saved
        return g * (2.0 * a * out - _TWO_OVER_SQRT_PI)


class LogNdtr(Op):
    save_inputs = (0,)

    def forward(self, a):
        return sm.log_ndtr(a)

    def backward(self, g):
        (a,) = self.saved
        return g * NormalHazard.apply(a)


class NormalHazard(Op):
    """phi(x) / Phi(x), log_ndtr's derivative; its own derivative is -m (x + m)."""

    save_inputs = (0,)
    save_output = True

    def forward(self, a):
        return sm.mills_inverse(a)

    def backward(self, g):
        a, m = self.saved
        return g * -m * (a + m)


class Ndtri(Op):
    save_output = True

    def forward(self, p):
        return sm.ndtri(p)

    def backward(self, g):
        (x,) = self.saved
        return g * (x * x * 0.5).exp() * _SQRT_2PI


class IncompleteGamma(Op):
    """P(a, x), or Q(a, x) with upper=True; differentiable in x only, as in torch."""

    save_inputs = (0, 1)

    def forward(self, a, x, upper=False):
        self.upper = upper
        return sm.gammainc(a, x, upper)

    def backward(self, g):
        a, x = self.saved
        if self.needs_input_grad[0]:
            raise NotImplementedError(
                f"the derivative for '{'igammac' if self.upper else 'igamma'}' with respect to "
                "self (a) is not implemented"
            )
        from .gamma import lgamma  # noqa: PLC0415 - a sibling family

        density = (-x + (a - 1) * x.log() - lgamma(a)).exp()
        return None, g * (-density if self.upper else density)


class HurwitzZeta(Op):
    """zeta(s, q); differentiable in q (d/dq = -s zeta(s + 1, q)) only, as in torch."""

    save_inputs = (0, 1)

    def forward(self, s, q):
        return sm.zeta(s, q)

    def backward(self, g):
        s, q = self.saved
        if self.needs_input_grad[0]:
            raise NotImplementedError(
                "the derivative for 'zeta' with respect to self is not implemented"
            )
        return None, g * -s * HurwitzZeta.apply(s + 1, q)


class BesselI(Op):
    """I0 / I1, or exp(-|x|) I0 / I1 (scaled)."""

    save_inputs = (0,)
    save_output = True

    def forward(self, a, order=0, scaled=False):
        self.order, self.scaled = order, scaled
        return sm.bessel_i_scaled(a, order) if scaled else sm.bessel_i(a, order)

    def backward(self, g):
        a, out = self.saved
        if self.order == 0:  # I0' = I1; (e^-|x| I0)' = e^-|x| I1 - sign(x) e^-|x| I0
            other = BesselI.apply(a, order=1, scaled=self.scaled)
            return g * (other - a.sign() * out if self.scaled else other)
        # I1' = I0 - I1 / x (1/2 at 0); scaled: minus sign(x) times itself as well
        i0 = BesselI.apply(a, order=0, scaled=self.scaled)
        safe = where(a == 0, 1.0, a)
        slope = where(a == 0, 0.5, i0 - out / safe)
        if self.scaled:
            slope = slope - a.sign() * out
        return g * slope


def erfcx(input: Tensor) -> Tensor:
    """exp(x^2) erfc(x), without erfc's underflow."""
    return Erfcx.apply(_floating(input))


def log_ndtr(input: Tensor) -> Tensor:
    """log of the standard normal CDF, accurate far into the lower tail."""
    return LogNdtr.apply(_floating(input))


def ndtri(input: Tensor) -> Tensor:
    """The standard normal quantile function (inverse of ndtr)."""
    return Ndtri.apply(_floating(input))


def _pair(a, b):
    from ..factory import tensor  # noqa: PLC0415

    a_t = a if isinstance(a, Tensor) else None
    b_t = b if isinstance(b, Tensor) else None
    like = a_t if a_t is not None else b_t
    if a_t is None:
        a_t = tensor(
            float(a), dtype=like.dtype if like.is_floating_point() else None, device=like.device
        )
    if b_t is None:
        b_t = tensor(
            float(b), dtype=like.dtype if like.is_floating_point() else None, device=like.device
        )
    return _floating(a_t), _floating(b_t)


def gammainc(input: Tensor, other: Tensor) -> Tensor:
    """The regularized lower incomplete gamma function P(input, other)."""
    return IncompleteGamma.apply(*_pair(input, other), upper=False)


def gammaincc(input: Tensor, other: Tensor) -> Tensor:
    """The regularized upper incomplete gamma function Q(input, other) = 1 - P."""
    return IncompleteGamma.apply(*_pair(input, other), upper=True)


def zeta(input, other) -> Tensor:
    """The Hurwitz zeta function zeta(input, other) = sum over k of (other + k)^-input."""
    return HurwitzZeta.apply(*_pair(input, other))


def i0(input: Tensor) -> Tensor:
    """The modified Bessel function of the first kind, order 0."""
    return BesselI.apply(_floating(input), order=0)


def i0e(input: Tensor) -> Tensor:
    return BesselI.apply(_floating(input), order=0, scaled=True)


def i1(input: Tensor) -> Tensor:
    """The modified Bessel function of the first kind, order 1."""
    return BesselI.apply(_floating(input), order=1)


def i1e(input: Tensor) -> Tensor:
    return BesselI.apply(_floating(input), order=1, scaled=True)


TENSOR_METHODS = {"i0": i0, "igamma": gammainc, "igammac": gammaincc}

__all__ = ["i0"]
