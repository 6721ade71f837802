"""The gamma function family: lgamma, digamma, polygamma and mvlgamma.

Each op's backward is the next function of the family (lgamma' = digamma, digamma' =
trigamma = polygamma(1), polygamma(n)' = polygamma(n + 1)), so gradients of any order come
from the same ops. The values come from `_special` (Lanczos and asymptotic series, plain array
arithmetic that runs on cupy arrays too), accurate to about 1e-15 relative away from the
poles; torch's own trigamma is accurate to about 1e-9 only.
"""

from __future__ import annotations

import math

from ..autograd.node import Op
from ..tensor import Tensor
from . import _special
from .elementwise import _floating


class Lgamma(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _special.lgamma(a)

    def backward(self, g):
        (a,) = self.saved
        return g * Digamma.apply(a)


class Digamma(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _special.digamma(a)

    def backward(self, g):
        (a,) = self.saved
        return g * Polygamma.apply(a, n=1)


class Polygamma(Op):
    save_inputs = (0,)

    def forward(self, a, n=1):
        self.n = n
        return _special.polygamma(n, a)

    def backward(self, g):
        (a,) = self.saved
        return g * Polygamma.apply(a, n=self.n + 1)


def lgamma(input: Tensor) -> Tensor:
    """log|Gamma(x)|."""
    return Lgamma.apply(_floating(input))


def digamma(input: Tensor) -> Tensor:
    """d/dx log Gamma(x): -inf at 0, nan at the negative integers."""
    return Digamma.apply(_floating(input))


def polygamma(n: int, input: Tensor) -> Tensor:
    """The n-th derivative of digamma."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    x = _floating(input)
    return Digamma.apply(x) if n == 0 else Polygamma.apply(x, n=n)


def mvlgamma(input: Tensor, p: int) -> Tensor:
    """The log of the multivariate gamma function of dimension p."""
    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    x = _floating(input)
    total = lgamma(x)
    for j in range(1, p):
        total = total + lgamma(x - j / 2)
    return total + p * (p - 1) / 4 * math.log(math.pi)


def _inplace(fn):
    def method(self: Tensor, *args) -> Tensor:
        from .inplace import run_inplace  # noqa: PLC0415 - inplace imports the op families

        return run_inplace(self, lambda s: fn(s, *args), ())

    method.__name__ = fn.__name__ + "_"
    return method


TENSOR_METHODS = {
    "lgamma": lgamma,
    "digamma": digamma,
    "polygamma": lambda self, n: polygamma(n, self),
    "mvlgamma": mvlgamma,
    "lgamma_": _inplace(lgamma),
    "digamma_": _inplace(digamma),
    "polygamma_": _inplace(lambda self, n: polygamma(n, self)),
    "mvlgamma_": _inplace(mvlgamma),
}

__all__ = ["lgamma", "digamma", "polygamma", "mvlgamma"]
