"""Bijections for TransformedDistribution, as torch.distributions.transforms: each maps x to
y, inverts y back to x, and gives log |dy/dx| for the change of variables in log_prob.

Elementwise transforms have event_dim 0; AffineTransform can act on whole events
(event_dim > 0), summing its log-determinant over them; ComposeTransform chains parts.
IndependentTransform, ReshapeTransform, CatTransform and StackTransform rearrange events;
LowerCholeskyTransform, PositiveDefiniteTransform and CorrCholeskyTransform reach matrices
(what `constraint_registry.transform_to` hands out for those constraints).
"""

from __future__ import annotations

import math

import numpy as np

from ..nn import functional as F
from ..tensor import Tensor
from .distribution import constraints

__all__ = [
    "AbsTransform", "AffineTransform", "CatTransform", "ComposeTransform",
    "CorrCholeskyTransform", "CumulativeDistributionTransform", "ExpTransform",
    "IndependentTransform", "LowerCholeskyTransform", "PositiveDefiniteTransform",
    "PowerTransform", "ReshapeTransform", "SigmoidTransform", "SoftmaxTransform",
    "SoftplusTransform", "StackTransform", "StickBreakingTransform", "TanhTransform",
    "Transform", "identity_transform",
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


# ================================================================ structural transforms
class IndependentTransform(Transform):
    """`base_transform` with its rightmost `reinterpreted_batch_ndims` batch dimensions
    taken as part of the event: its log-determinant is summed over them."""

    def __init__(self, base_transform: Transform, reinterpreted_batch_ndims: int) -> None:
        self.base_transform = base_transform
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims
        self.bijective, self.sign = base_transform.bijective, base_transform.sign
        self.domain = constraints.independent(base_transform.domain, reinterpreted_batch_ndims)
        self.codomain = constraints.independent(base_transform.codomain, reinterpreted_batch_ndims)
        self.domain_event_dim = base_transform.domain_event_dim + reinterpreted_batch_ndims
        self.codomain_event_dim = base_transform.codomain_event_dim + reinterpreted_batch_ndims

    def _call(self, x):
        return self.base_transform(x)

    def _inverse(self, y):
        return self.base_transform.inv(y)

    def log_abs_det_jacobian(self, x, y):
        inner = self.base_transform.log_abs_det_jacobian(x, y)
        return _sum_rightmost(inner, self.reinterpreted_batch_ndims)

    def forward_shape(self, shape):
        return self.base_transform.forward_shape(shape)

    def inverse_shape(self, shape):
        return self.base_transform.inverse_shape(shape)

    def __repr__(self) -> str:
        return f"IndependentTransform({self.base_transform!r}, {self.reinterpreted_batch_ndims})"


class ReshapeTransform(Transform):
    """Events of `in_shape` reshaped to `out_shape` (as many elements): volume-preserving."""

    def __init__(self, in_shape, out_shape) -> None:
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        if math.prod(self.in_shape) != math.prod(self.out_shape):
            raise ValueError("in_shape, out_shape have different numbers of elements")
        self.domain_event_dim, self.codomain_event_dim = len(self.in_shape), len(self.out_shape)
        self.domain = constraints.independent(constraints.real, len(self.in_shape))
        self.codomain = constraints.independent(constraints.real, len(self.out_shape))

    def _call(self, x):
        batch = tuple(x.shape[: x.ndim - len(self.in_shape)])
        return x.reshape(*batch, *self.out_shape)

    def _inverse(self, y):
        batch = tuple(y.shape[: y.ndim - len(self.out_shape)])
        return y.reshape(*batch, *self.in_shape)

    def log_abs_det_jacobian(self, x, y):
        return x.new_zeros(tuple(x.shape[: x.ndim - len(self.in_shape)]))

    def forward_shape(self, shape):
        return tuple(shape[: len(shape) - len(self.in_shape)]) + self.out_shape

    def inverse_shape(self, shape):
        return tuple(shape[: len(shape) - len(self.out_shape)]) + self.in_shape

    def __repr__(self) -> str:
        return "ReshapeTransform()"


class AbsTransform(Transform):
    """y = |x|: not a bijection; its inverse returns the positive preimage."""

    bijective = False
    codomain = constraints.positive

    def _call(self, x):
        return x.abs()

    def _inverse(self, y):
        return y


class CumulativeDistributionTransform(Transform):
    """y = distribution.cdf(x), onto the unit interval; log |dy/dx| is the log density."""

    codomain = constraints.unit_interval

    def __init__(self, distribution) -> None:
        self.distribution = distribution
        self.domain = distribution.support

    def _call(self, x):
        return self.distribution.cdf(x)

    def _inverse(self, y):
        return self.distribution.icdf(y)

    def log_abs_det_jacobian(self, x, y):
        return self.distribution.log_prob(x)


class CatTransform(Transform):
    """Each of `tseq` applied to its piece (of `lengths`) along `dim`, the results joined."""

    def __init__(self, tseq, dim: int = 0, lengths=None) -> None:
        self.transforms = list(tseq)
        self.lengths = list(lengths) if lengths is not None else [1] * len(self.transforms)
        if len(self.lengths) != len(self.transforms):
            raise ValueError("CatTransform: one length per transform")
        self.dim = dim
        event = max(t.event_dim for t in self.transforms)
        self.domain_event_dim = self.codomain_event_dim = event
        self.bijective = all(t.bijective for t in self.transforms)
        self.domain = constraints.cat([t.domain for t in self.transforms], dim, self.lengths)
        self.codomain = constraints.cat([t.codomain for t in self.transforms], dim, self.lengths)

    def _pieces(self, x):
        if x.shape[self.dim] != sum(self.lengths):
            raise ValueError(
                f"CatTransform: size {x.shape[self.dim]} along dim {self.dim} is not "
                f"sum(lengths) = {sum(self.lengths)}"
            )
        start = 0
        for length in self.lengths:
            yield x.narrow(self.dim, start, length)
            start += length

    def _call(self, x):
        from ..ops.join import cat  # noqa: PLC0415 - ops import distributions' siblings

        return cat([t(p) for t, p in zip(self.transforms, self._pieces(x))], self.dim)

    def _inverse(self, y):
        from ..ops.join import cat  # noqa: PLC0415

        return cat([t.inv(p) for t, p in zip(self.transforms, self._pieces(y))], self.dim)

    def log_abs_det_jacobian(self, x, y):
        from ..ops.join import cat  # noqa: PLC0415

        event = self.domain_event_dim
        terms = []
        for t, xp_, yp in zip(self.transforms, self._pieces(x), self._pieces(y)):
            term = t.log_abs_det_jacobian(xp_, yp)
            terms.append(_sum_rightmost(term, event - t.event_dim))
        dim = (self.dim - x.ndim if self.dim >= 0 else self.dim) + event
        if dim < 0:  # the joined dimension is still a batch dimension of the result
            return cat(terms, dim)
        return sum(terms)

    def __repr__(self) -> str:
        return "CatTransform()"


class StackTransform(Transform):
    """The i-th of `tseq` applied to index i along `dim`, the results stacked."""

    def __init__(self, tseq, dim: int = 0) -> None:
        self.transforms, self.dim = list(tseq), dim
        self.bijective = all(t.bijective for t in self.transforms)
        self.domain = constraints.stack([t.domain for t in self.transforms], dim)
        self.codomain = constraints.stack([t.codomain for t in self.transforms], dim)

    def _slices(self, x):
        if x.shape[self.dim] != len(self.transforms):
            raise ValueError(
                f"StackTransform: size {x.shape[self.dim]} along dim {self.dim}, "
                f"{len(self.transforms)} transforms"
            )
        return [x.select(self.dim, i) for i in range(x.shape[self.dim])]

    def _call(self, x):
        from ..ops.join import stack  # noqa: PLC0415

        return stack([t(s) for t, s in zip(self.transforms, self._slices(x))], self.dim)

    def _inverse(self, y):
        from ..ops.join import stack  # noqa: PLC0415

        return stack([t.inv(s) for t, s in zip(self.transforms, self._slices(y))], self.dim)

    def log_abs_det_jacobian(self, x, y):
        from ..ops.join import stack  # noqa: PLC0415

        pairs = zip(self.transforms, self._slices(x), self._slices(y))
        return stack([t.log_abs_det_jacobian(a, b) for t, a, b in pairs], self.dim)

    def __repr__(self) -> str:
        return "StackTransform()"


# ================================================================ matrix transforms
class LowerCholeskyTransform(Transform):
    """An unconstrained square matrix to a Cholesky factor: the strict lower triangle kept,
    the diagonal exponentiated. (No log-determinant, as in torch.)"""

    bijective = False  # as torch marks it
    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.lower_cholesky
    domain_event_dim = codomain_event_dim = 2

    def _call(self, x):
        return x.tril(-1) + x.diagonal(dim1=-2, dim2=-1).exp().diag_embed()

    def _inverse(self, y):
        return y.tril(-1) + y.diagonal(dim1=-2, dim2=-1).log().diag_embed()


class PositiveDefiniteTransform(Transform):
    """An unconstrained square matrix to a positive-definite one, L L^T with L its
    LowerCholeskyTransform."""

    bijective = False  # as torch marks it
    domain = constraints.independent(constraints.real, 2)
    codomain = constraints.positive_definite
    domain_event_dim = codomain_event_dim = 2

    def _call(self, x):
        low = LowerCholeskyTransform()(x)
        return low @ low.mT

    def _inverse(self, y):
        from .. import linalg  # noqa: PLC0415

        return LowerCholeskyTransform().inv(linalg.cholesky(y))


class CorrCholeskyTransform(Transform):
    """R^(D(D-1)/2) to the Cholesky factors of D x D correlation matrices (Stan's
    construction, as torch): tanh maps each coordinate to a partial correlation in (-1, 1),
    filling the strict lower triangle row by row, and stick breaking on the squares scales
    each row to unit length. The log-determinant is that of x and the flattened strict lower
    triangle of y (the two spaces differ in dimension)."""

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky
    domain_event_dim = 1
    codomain_event_dim = 2

    def _call(self, x):
        from ..factory import eye  # noqa: PLC0415
        from .utils import vec_to_tril_matrix  # noqa: PLC0415

        eps = float(np.finfo(x._data.dtype).eps)
        r = vec_to_tril_matrix(x.tanh().clamp(-1 + eps, 1 - eps), diag=-1)
        # each row's remaining length after the entries to its left: sqrt(prod(1 - r^2))
        left = (1 - r * r).sqrt().cumprod(-1)
        n = r.shape[-1]
        r = r + eye(n, dtype=r.dtype, device=r.device)
        return r * F.pad(left[..., :-1], (1, 0), value=1.0)

    def _inverse(self, y):
        from .utils import tril_matrix_to_vec  # noqa: PLC0415

        remaining = F.pad((1 - (y * y).cumsum(-1))[..., :-1], (1, 0), value=1.0)
        t = tril_matrix_to_vec(y, diag=-1) / tril_matrix_to_vec(remaining, diag=-1).sqrt()
        return (t.log1p() - (-t).log1p()) / 2  # atanh

    def log_abs_det_jacobian(self, x, y):
        from .utils import tril_matrix_to_vec  # noqa: PLC0415

        # diagonal -2 of 1 - cumsum(y^2) is each entry's remaining length before it
        remaining = tril_matrix_to_vec(1 - (y * y).cumsum(-1), diag=-2)
        stick_breaking = 0.5 * remaining.log().sum(-1)
        tanh = -2 * (x + F.softplus(-2 * x) - math.log(2.0)).sum(-1)
        return stick_breaking + tanh

    def forward_shape(self, shape):
        if len(shape) < 1:
            raise ValueError("Too few dimensions on input")
        m = shape[-1]
        n = int(round((0.25 + 2 * m) ** 0.5 + 0.5))
        if n * (n - 1) // 2 != m:
            raise ValueError("Input is not a flattened lower-diagonal number")
        return tuple(shape[:-1]) + (n, n)

    def inverse_shape(self, shape):
        if len(shape) < 2 or shape[-2] != shape[-1]:
            raise ValueError("Input is not square")
        n = shape[-1]
        return tuple(shape[:-2]) + (n * (n - 1) // 2,)
