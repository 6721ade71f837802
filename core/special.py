"""shardgrad.special: torch.special's functions, under its names.

Most are the same functions as at the top level (torch.special.expit is torch.sigmoid); the
few that torch keeps only here (ndtr, xlog1py, entr) are compositions of differentiable ops.
"""

from __future__ import annotations

from .ops import composite as _composite
from .ops import elementwise as _ew
from .ops import gamma as _gamma
from .ops import nn_ops as _nn
from .ops import reduce as _reduce
from .ops.elementwise import where as _where
from .tensor import Tensor


def gammaln(input: Tensor) -> Tensor:
    return _gamma.lgamma(input)


def digamma(input: Tensor) -> Tensor:
    return _gamma.digamma(input)


psi = digamma


def polygamma(n: int, input: Tensor) -> Tensor:
    return _gamma.polygamma(n, input)


def multigammaln(input: Tensor, p: int) -> Tensor:
    return _gamma.mvlgamma(input, p)


def erf(input: Tensor) -> Tensor:
    return _ew.erf(input)


def erfc(input: Tensor) -> Tensor:
    return _ew.erfc(input)


def erfinv(input: Tensor) -> Tensor:
    return _ew.erfinv(input)


def expit(input: Tensor) -> Tensor:
    return _ew.sigmoid(input)


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    return _composite.logit(input, eps)


def exp2(input: Tensor) -> Tensor:
    return _ew.exp2(input)


def expm1(input: Tensor) -> Tensor:
    return _ew.expm1(input)


def log1p(input: Tensor) -> Tensor:
    return _ew.log1p(input)


def sinc(input: Tensor) -> Tensor:
    return _composite.sinc(input)


def round(input: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001 - torch's name
    return _ew.round(input, decimals=decimals)


def xlogy(input, other) -> Tensor:
    return _ew.xlogy(input, other)


def xlog1py(input: Tensor, other) -> Tensor:
    """input * log1p(other), and 0 where input is 0 (unless other is nan). Only where that
    product is nan (0 * -inf) is the value replaced, so gradients are torch's elsewhere."""
    x = _ew._floating(input)
    y = other if isinstance(other, Tensor) else x.new_full(tuple(x.shape), other)
    undefined = (x._data == 0) & (y._data <= -1)
    return _where(undefined, 0.0, x * y.log1p())


def entr(input: Tensor) -> Tensor:
    """-x log x elementwise: 0 at 0, -inf below."""
    return _ew.Entr.apply(_ew._floating(input))


def ndtr(input: Tensor) -> Tensor:
    """The standard normal cumulative distribution function."""
    return _nn.NormalCdf.apply(_ew._floating(input))


def spherical_bessel_j0(input: Tensor) -> Tensor:
    """sin(x) / x, 1 at 0 (its Taylor series near 0, where the ratio loses digits)."""
    x = _ew._floating(input)
    near = x.abs() < 1e-4
    safe = _where(near, 1.0, x)
    x2 = x * x
    return _where(near, 1.0 - x2 / 6.0 + x2 * x2 / 120.0, safe.sin() / safe)


def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    return _reduce.logsumexp(input, dim, keepdim)


def softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    return _nn.softmax(input, dim, dtype)


def log_softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    return _nn.log_softmax(input, dim, dtype)


from .ops.airy import airy_ai  # noqa: E402
from .ops.bessel_jy import bessel_j0, bessel_j1, bessel_y0, bessel_y1  # noqa: E402
from .ops.bessel_k import (  # noqa: E402
    modified_bessel_i0,
    modified_bessel_i1,
    modified_bessel_k0,
    modified_bessel_k1,
    scaled_modified_bessel_k0,
    scaled_modified_bessel_k1,
)
from .ops.orthogonal_polynomials import (  # noqa: E402
    chebyshev_polynomial_t,
    chebyshev_polynomial_u,
    chebyshev_polynomial_v,
    chebyshev_polynomial_w,
    hermite_polynomial_h,
    hermite_polynomial_he,
    laguerre_polynomial_l,
    legendre_polynomial_p,
    shifted_chebyshev_polynomial_t,
    shifted_chebyshev_polynomial_u,
    shifted_chebyshev_polynomial_v,
    shifted_chebyshev_polynomial_w,
)
from .ops.special_functions import (  # noqa: E402 - grouped with the names they export
    erfcx,
    gammainc,
    gammaincc,
    i0,
    i0e,
    i1,
    i1e,
    log_ndtr,
    ndtri,
    zeta,
)

__all__ = [
    "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1",
    "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
    "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
    "chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
    "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
    "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w", "hermite_polynomial_h",
    "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p",
    "erfcx", "gammainc", "gammaincc", "i0", "i0e", "i1", "i1e", "log_ndtr", "ndtri", "zeta",
    "spherical_bessel_j0",
    "digamma", "entr", "erf", "erfc", "erfinv", "exp2", "expit", "expm1", "gammaln",
    "log1p", "log_softmax", "logit", "logsumexp", "multigammaln", "ndtr", "polygamma", "psi",
    "round", "sinc", "softmax", "xlog1py", "xlogy",
]  # fmt: skip
