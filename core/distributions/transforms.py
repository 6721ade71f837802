"""Bijections for TransformedDistribution, as torch.distributions.transforms: each maps x to
y, inverts y back to x, and gives log |dy/dx| for the change of variables in log_prob.

Elementwise transforms have event_dim 0; AffineTransform can act on whole events
(event_dim > 0), summing its log-determinant over them; ComposeTransform chains parts.
"""

from __future__ import annotations

import math

import numpy as np

from ..nn import functional as F
from ..tensor import Tensor
from .distribution import constraints

__all__ = [
    "AffineTransform", "ComposeTransform", "ExpTransform", "PowerTransform",
    "SigmoidTransform", "SoftmaxTransform", "SoftplusTransform", "StickBreakingTransform",
    "TanhTransform", "Transform", "identity_transform",
]  # fmt: skip


def _sum_rightmost(value: Tensor, dim: int) -> Tensor:
    return value.reshape(*value.shape[: value.ndim - dim], -1).sum(-1) if dim > 0 else value


def _same(a, b) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        if not (isinstance(a, Tensor) and isinstance(b, Tensor)) or a.shape != b.shape:
            return False
        return bool((a == b).all())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(x == y for x, y in zip(a, b))
    return a == b


def _clamp_probs(p: Tensor) -> Tensor:
    eps = float(np.finfo(p._data.dtype).eps)
    return p.clamp(eps, 1 - eps)


class Transform:
    """y = T(x), invertible; subclasses give _call, _inverse, log_abs_det_jacobian."""

    bijective = True
    sign = 1
    domain = constraints.real
    codomain = constraints.real
    domain_event_dim = 0
    codomain_event_dim = 0

    @property
    def event_dim(self) -> int:
        return max(self.domain_event_dim, self.codomain_event_dim)

    @property
    def inv(self) -> Transform:
        return _Inverse(self)

    def __call__(self, x: Tensor) -> Tensor:
        return self._call(x)

    def _call(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _inverse(self, y: Tensor) -> Tensor:
        raise NotImplementedError

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        raise NotImplementedError

    def __eq__(self, other) -> bool:
        """Equal when of one kind with equal parameters (so two distributions built with
        the same bijection can be compared, as kl_divergence does)."""
        if type(self) is not type(other):
            return False
        mine = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        theirs = {k: v for k, v in vars(other).items() if not k.startswith("_")}
        if mine.keys() != theirs.keys():
            return False
        return all(_same(mine[k], theirs[k]) for k in mine)

    def __ne__(self, other) -> bool:
        return not self == other

    __hash__ = object.__hash__

    def forward_shape(self, shape):
        return shape

    def inverse_shape(self, shape):
        return shape

    def __repr__(self) -> str:
        return type(self).__name__ + "()"


class _Inverse(Transform):
    """T^-1: calls swap, and its log-determinant is minus T's at the swapped point."""

    def __init__(self, base: Transform) -> None:
        self._base = base
        self.sign = base.sign
        self.domain, self.codomain = base.codomain, base.domain
        self.domain_event_dim = base.codomain_event_dim
        self.codomain_event_dim = base.domain_event_dim

    @property
    def inv(self) -> Transform:
        return self._base

    def _call(self, x: Tensor) -> Tensor:
        return self._base._inverse(x)

    def _inverse(self, y: Tensor) -> Tensor:
        return self._base._call(y)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return -self._base.log_abs_det_jacobian(y, x)

    def __repr__(self) -> str:
        return f"_InverseTransform({self._base!r})"


class ComposeTransform(Transform):
    """parts[-1](...parts[0](x)): log-determinants add, each summed up to the composition's
    event dims."""

    def __init__(self, parts: list[Transform]) -> None:
        self.parts = list(parts)
        self.sign = math.prod(p.sign for p in self.parts) if self.parts else 1
        if self.parts:
            self.domain, self.codomain = self.parts[0].domain, self.parts[-1].codomain
        dims = 0
        for p in reversed(self.parts):  # event dims the composition's input must cover
            dims = p.domain_event_dim + max(dims - p.codomain_event_dim, 0)
        self.domain_event_dim = dims
        dims = 0
        for p in self.parts:
            dims = p.codomain_event_dim + max(dims - p.domain_event_dim, 0)
        self.codomain_event_dim = dims

    def _call(self, x: Tensor) -> Tensor:
        for p in self.parts:
            x = p(x)
        return x

    def forward_shape(self, shape):
        for p in self.parts:
            shape = p.forward_shape(shape)
        return shape

    def _inverse(self, y: Tensor) -> Tensor:
        for p in reversed(self.parts):
            y = p.inv(y)
        return y

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        if not self.parts:
            return x.new_zeros(x.shape)
        total = 0
        event_dim = self.domain_event_dim
        for p in self.parts:
            y_p = p(x)
            term = p.log_abs_det_jacobian(x, y_p)
            total = total + _sum_rightmost(term, event_dim - p.domain_event_dim)
            x = y_p
            event_dim += p.codomain_event_dim - p.domain_event_dim
        return total

    def __repr__(self) -> str:
        return "ComposeTransform(\n    " + ",\n    ".join(map(repr, self.parts)) + "\n)"


identity_transform = ComposeTransform([])


class ExpTransform(Transform):
    codomain = constraints.positive

    def _call(self, x):
        return x.exp()

    def _inverse(self, y):
        return y.log()

    def log_abs_det_jacobian(self, x, y):
        return x


class PowerTransform(Transform):
    """y = x ** exponent on the positive reals."""

    domain = constraints.positive
    codomain = constraints.positive

    def __init__(self, exponent) -> None:
        self.exponent = exponent
        # monotone either way: decreasing for a negative exponent (a tensor of exponents is
        # taken as one sign, as the families built on it use it)
        first = float(exponent.reshape(-1)[0]) if isinstance(exponent, Tensor) else exponent
        self.sign = 1 if first > 0 else -1

    def _call(self, x):
        return x.pow(self.exponent)

    def _inverse(self, y):
        return y.pow(1 / self.exponent)

    def log_abs_det_jacobian(self, x, y):
        return (self.exponent * y / x).abs().log()


class SigmoidTransform(Transform):
    codomain = constraints.unit_interval

    def _call(self, x):
        return _clamp_probs(x.sigmoid())

    def _inverse(self, y):
        y = _clamp_probs(y)
        return y.log() - (-y).log1p()

    def log_abs_det_jacobian(self, x, y):
        return -F.softplus(-x) - F.softplus(x)


class TanhTransform(Transform):
    """y = tanh(x), the squashing of SAC policies; the log-determinant in the stable form
    2 (log 2 - x - softplus(-2x))."""

    codomain = constraints.interval(-1.0, 1.0)

    def _call(self, x):
        return x.tanh()

    def _inverse(self, y):
        return y.atanh()

    def log_abs_det_jacobian(self, x, y):
        return 2.0 * (math.log(2.0) - x - F.softplus(-2.0 * x))


class SoftplusTransform(Transform):
    codomain = constraints.positive

    def _call(self, x):
        return F.softplus(x)

    def _inverse(self, y):
        return (-y).expm1().neg().log() + y

    def log_abs_det_jacobian(self, x, y):
        return -F.softplus(-x)


class AffineTransform(Transform):
    """y = loc + scale * x, optionally over whole events of `event_dim` dimensions."""

    def __init__(self, loc, scale, event_dim: int = 0) -> None:
        self.loc, self.scale = loc, scale
        self.domain_event_dim = self.codomain_event_dim = event_dim
        if isinstance(scale, (int, float)):
            self.sign = 1 if scale > 0 else -1 if scale < 0 else 0
        else:
            self.sign = 1  # a tensor scale: the sign is per element; torch leaves it so too

    def _call(self, x):
        return self.loc + self.scale * x

    def _inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        scale = self.scale
        if isinstance(scale, (int, float)):
            value = x.new_full(tuple(x.shape), math.log(abs(scale)))
        else:
            value = scale.abs().log()
            shape = np.broadcast_shapes(tuple(value.shape), tuple(x.shape))
            value = value.expand(*shape) if tuple(value.shape) != shape else value
        return _sum_rightmost(value, self.domain_event_dim)

    def __repr__(self) -> str:
        return "AffineTransform()"


def _clipped_sigmoid(x: Tensor) -> Tensor:
    info = np.finfo(x._data.dtype)
    return x.sigmoid().clamp(float(info.tiny), 1.0 - float(info.eps))


class StickBreakingTransform(Transform):
    """R^(K-1) -> the K-simplex by stick breaking: each coordinate takes a sigmoid share of
    what the earlier ones left (offset so that x = 0 maps to the uniform point)."""

    domain = constraints.real_vector
    codomain = constraints.simplex
    domain_event_dim = codomain_event_dim = 1

    @staticmethod
    def _offset(x: Tensor) -> Tensor:
        k = x.shape[-1]
        return x.new_ones(k).cumsum(-1).neg() + (k + 1)

    def _call(self, x):
        z = _clipped_sigmoid(x - self._offset(x).log())
        left = (1 - z).cumprod(-1)
        return F.pad(z, (0, 1), value=1.0) * F.pad(left, (1, 0), value=1.0)

    def _inverse(self, y):
        crop = y[..., :-1]
        k = crop.shape[-1]
        offset = y.new_ones(k).cumsum(-1).neg() + y.shape[-1]
        remaining = (1 - crop.cumsum(-1)).clamp(min=float(np.finfo(y._data.dtype).tiny))
        return crop.log() - remaining.log() + offset.log()

    def log_abs_det_jacobian(self, x, y):
        shifted = x - self._offset(x).log()
        return (-shifted + F.logsigmoid(shifted) + y[..., :-1].log()).sum(-1)

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return tuple(shape[:-1]) + (shape[-1] + 1,)

    def inverse_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        return tuple(shape[:-1]) + (shape[-1] - 1,)


class SoftmaxTransform(Transform):
    """x -> softmax(x) over the last dimension; not a bijection (its inverse is one choice,
    log y), so it has no log-determinant, as in torch."""

    bijective = False
    domain = constraints.real_vector
    codomain = constraints.simplex
    domain_event_dim = codomain_event_dim = 1

    def _call(self, x):
        probs = (x - x.max(-1, keepdim=True)[0]).exp()
        return probs / probs.sum(-1, keepdim=True)

    def _inverse(self, y):
        return y.log()
