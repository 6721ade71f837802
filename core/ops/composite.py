"""torch functions that are compositions of other ops.

Each is written with Tensor ops only, so its gradient, and create_graph through it, come from
the ops it is made of; nothing here has a backward of its own.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _dtype
from ..backend import CPU, on_device, to_device, xp_of
from ..tensor import Tensor, _wrap_dim
from .indexing import index_select
from .join import cat

_MESHGRID_WARNING = (
    "torch.meshgrid: in an upcoming release, it will be required to pass the indexing argument."
)


def trace(input: Tensor) -> Tensor:
    """The sum of a matrix's main diagonal."""
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    return input.diagonal().sum()


def diff(
    input: Tensor,
    n: int = 1,
    dim: int = -1,
    prepend: Tensor | None = None,
    append: Tensor | None = None,
) -> Tensor:
    """The n-th forward difference along dim, after prepend and append are joined on."""
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    dim = _wrap_dim(dim, input.ndim)
    parts = [t for t in (prepend, input, append) if t is not None]
    out = cat(parts, dim) if len(parts) > 1 else input
    for _ in range(n):
        length = out.shape[dim]
        if length == 0:
            break
        later, earlier = out.narrow(dim, 1, length - 1), out.narrow(dim, 0, length - 1)
        # a bool's difference is whether it changed (torch: logical_xor)
        out = later.logical_xor(earlier) if out.dtype == _dtype.bool_ else later - earlier
    return out


def meshgrid(*tensors, indexing: str | None = None) -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors: "ij" (matrix) or "xy" (Cartesian) indexing."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn(_MESHGRID_WARNING, UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(
            f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}'
        )
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(
                "torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: "
                f"{tuple(t.shape)}"
            )
    flat = [t.reshape(-1) for t in tensors]
    swap = indexing == "xy" and len(flat) >= 2
    if swap:  # "xy": the first two axes trade places
        flat[0], flat[1] = flat[1], flat[0]
    shape = tuple(t.shape[0] for t in flat)
    grids = []
    for i, t in enumerate(flat):
        view = [1] * len(flat)
        view[i] = shape[i]
        grids.append(t.reshape(*view).expand(*shape))
    if swap:  # the grids over (second, first, ...) are "xy"'s; back in the inputs' order
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def repeat_interleave(
    input: Tensor, repeats=None, dim: int | None = None, *, output_size: int | None = None
) -> Tensor:
    """Each element (or slice along dim) repeated `repeats` times in place; `repeats` is a
    number or a tensor of one count per element."""
    if repeats is None:  # repeat_interleave(repeats): indices repeated by their own counts
        counts = input
        index = np.repeat(np.arange(counts.shape[0]), _counts(counts, counts.shape[0]))
        return Tensor._make(_to_device(index, counts))
    if dim is None:
        input, dim = input.reshape(-1), 0
    dim = _wrap_dim(dim, input.ndim)
    size = input.shape[dim]
    if isinstance(repeats, Tensor) and repeats.numel() != 1:
        counts = _counts(repeats, size)
    else:
        repeat = int(repeats.item() if isinstance(repeats, Tensor) else repeats)
        if repeat < 0:
            raise RuntimeError("repeats can not be negative")
        counts = np.full(size, repeat)
    index = np.repeat(np.arange(size), counts)
    if output_size is not None and output_size != len(index):
        raise RuntimeError(f"allocated size does not match required size: {output_size}")
    return index_select(input, dim, Tensor._make(_to_device(index, input)))


def _counts(repeats: Tensor, size: int) -> np.ndarray:
    counts = np.asarray(_host(repeats)).reshape(-1)
    if counts.dtype.kind not in "iu":
        raise RuntimeError("repeats has to be Long tensor")
    if len(counts) != size:
        raise RuntimeError("repeats must have the same size as input along dim")
    if (counts < 0).any():
        raise RuntimeError("repeats can not be negative")
    return counts


def _host(t: Tensor) -> np.ndarray:
    return to_device(t._data, CPU)


def _to_device(index: np.ndarray, like: Tensor):
    return on_device(index.astype(np.int64), like._data)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode: str | None = None) -> Tensor:
    """p-norm distances between each row of x1 (..., P, M) and each row of x2 (..., R, M):
    (..., P, R). Computed from the differences (torch may use a matrix product for large
    p=2 inputs, which rounds differently but is the same distance)."""
    if x1.ndim < 2 or x2.ndim < 2:
        raise RuntimeError(
            f"cdist only supports at least 2D tensors, X1 got: {x1.ndim}D, X2 got: {x2.ndim}D"
        )
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(
            f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}"
        )
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values, got {p}")
    differences = x1.unsqueeze(-2) - x2.unsqueeze(-3)  # (..., P, R, M)
    return differences.norm(p, dim=-1)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """x1 . x2 / (max(||x1||, eps) * max(||x2||, eps)) along dim, torch's formula: each norm is
    clamped in value only, so the gradient is that of the unclamped norm."""
    x1, x2 = (t.expand(*np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))) for t in (x1, x2))
    norms = []
    for t in (x1, x2):
        norm = t.norm(2, dim, keepdim=True)
        norms.append(norm + (norm.clamp_min(eps) - norm).detach())
    return ((x1 / norms[0]) * (x2 / norms[1])).sum(dim)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim, as torch computes it."""
    dim = max(x1.ndim, x2.ndim) - 1
    return (x1 - x2 + eps).norm(p, dim=dim, keepdim=keepdim)


def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The mean of the values that are not nan."""
    if not input.is_floating_point():
        raise RuntimeError(
            f"nanmean(): expected input to have floating point dtype but got {input.dtype}"
        )
    if dtype is not None:
        input = input.to(dtype)
    kept = input.isnan().logical_not()
    total = input.nansum(dim, keepdim=keepdim)
    return total / kept.sum(dim, keepdim=keepdim).to(total.dtype)


def _float_input(input: Tensor) -> Tensor:
    """Integers and bools as the default float dtype, as torch's float-valued functions
    take them (1 - p on a uint8 would wrap around)."""
    return input if input.is_floating_point() else input.to(_dtype.get_default_dtype())


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)), p clamped to [eps, 1 - eps] when eps is given."""
    input = _float_input(input)
    p = input if eps is None else input.clamp(eps, 1 - eps)
    return (p / (1 - p)).log()


def angle(input: Tensor) -> Tensor:
    """The argument of a real number: 0 at or above zero, pi below, nan for nan (its
    gradient is 0)."""
    from .elementwise import where  # noqa: PLC0415

    x = _float_input(input)
    return where(x.isnan(), x, where(x < 0, math.pi, 0.0).to(x.dtype))


def deg2rad(input: Tensor) -> Tensor:
    return input * (math.pi / 180)


def rad2deg(input: Tensor) -> Tensor:
    return input * (180 / math.pi)


def sinc(input: Tensor) -> Tensor:
    """sin(pi x) / (pi x), and 1 at 0 (where the gradient is 0, not 0/0). float16 is
    computed in float32: pi x rounded to half precision would move sin's zeros."""
    x = _float_input(input)
    if x.dtype == _dtype.float16:
        return sinc(x.float()).to(_dtype.float16)
    at_zero = x == 0
    safe = x.masked_fill(at_zero, 1.0) * math.pi
    return (safe.sin() / safe).masked_fill(at_zero, 1.0)


def copysign(input: Tensor, other) -> Tensor:
    """|input| with the sign of other (the sign bit: -0.0 counts as negative)."""
    from .elementwise import _float_pair, where  # noqa: PLC0415

    x, o = _float_pair(input, other)  # the result has both operands' common float dtype
    o = o._data if isinstance(o, Tensor) else o
    return where(xp_of(x._data).signbit(o), -x.abs(), x.abs())


def heaviside(input: Tensor, values: Tensor) -> Tensor:
    """The step function: 0 below zero, 1 above, `values` at zero."""
    from .elementwise import where  # noqa: PLC0415

    if input.dtype != values.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes.")
    x = input._data
    step = (x > 0).astype(x.dtype)
    return where(x == 0, values, Tensor._make(step))


def logaddexp2(input: Tensor, other: Tensor) -> Tensor:
    """log2(2^a + 2^b), without overflow."""
    return _LOG2_E * (input * _LN_2).logaddexp(other * _LN_2)


_LN_2 = math.log(2.0)
_LOG2_E = 1.0 / _LN_2


def renorm(input: Tensor, p: float, dim: int, maxnorm: float) -> Tensor:
    """Each slice along dim (all other dims together) rescaled to p-norm at most maxnorm."""
    from .elementwise import where  # noqa: PLC0415

    if p <= 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    dim = _wrap_dim(dim, input.ndim)
    others = tuple(d for d in range(input.ndim) if d != dim)
    norms = input.norm(p, others, keepdim=True) if others else input.abs()
    factor = where(norms._data > maxnorm, maxnorm / (norms + 1e-7), 1.0)
    return input * factor


def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * outer(vec1, vec2); beta = 0 ignores input (nan included)."""
    product = vec1.outer(vec2) * alpha if alpha != 1 else vec1.outer(vec2)
    if beta == 0:
        return product
    return input * beta + product if beta != 1 else input + product


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * sum over the batch of batch1[i] @ batch2[i]."""
    product = (batch1 @ batch2).sum(0)
    if alpha != 1:
        product = product * alpha
    if beta == 0:
        return product
    return input * beta + product if beta != 1 else input + product


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """The dot product of two 1-D tensors (no conjugation: shardgrad is real)."""
    return input.dot(other)


def trapezoid(y: Tensor, x: Tensor | None = None, *, dx=None, dim: int = -1) -> Tensor:
    """The trapezoidal rule along dim, with sample points x or a constant spacing dx."""
    dim = _wrap_dim(dim, y.ndim)
    n = y.shape[dim]
    if n == 0:
        return y.sum(dim)
    left, right = y.narrow(dim, 0, n - 1), y.narrow(dim, 1, n - 1)
    if x is not None:
        if x.ndim == 1:
            shape = [1] * y.ndim
            shape[dim] = x.shape[0]
            x = x.reshape(*shape)
        dims = _wrap_dim(dim, x.ndim)
        spacing = x.narrow(dims, 1, n - 1) - x.narrow(dims, 0, n - 1)
        return ((left + right) * spacing).sum(dim) / 2
    step = 1 if dx is None else dx
    return (left + right).sum(dim) * (step / 2)


def positive(input: Tensor) -> Tensor:
    if input._data.dtype == np.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


def isreal(input: Tensor) -> Tensor:
    """True everywhere: shardgrad has no complex dtypes."""
    return Tensor._make(xp_of(input._data).ones(input._data.shape, dtype=bool))


def _identity(input: Tensor) -> Tensor:
    """conj() and its kin: the tensor itself, since shardgrad's tensors are real."""
    return input


TENSOR_METHODS = {
    "copysign": copysign,
    "heaviside": heaviside,
    "logaddexp2": logaddexp2,
    "renorm": renorm,
    "addr": addr,
    "addbmm": addbmm,
    "vdot": vdot,
    "positive": positive,
    "isreal": isreal,
    "conj": _identity,
    "conj_physical": _identity,
    "resolve_conj": _identity,
    "resolve_neg": _identity,
    "adjoint": lambda self: self.mT,
    "mH": property(lambda self: self.mT),
    "H": property(lambda self: self.T),
    "trace": trace,
    "diff": diff,
    "repeat_interleave": repeat_interleave,
    "nanmean": nanmean,
    "logit": logit,
    "deg2rad": deg2rad,
    "rad2deg": rad2deg,
    "sinc": sinc,
    "angle": angle,
}

__all__ = [
    "addbmm",
    "addr",
    "copysign",
    "heaviside",
    "isreal",
    "logaddexp2",
    "positive",
    "renorm",
    "trapezoid",
    "vdot",
    "trace",
    "diff",
    "meshgrid",
    "repeat_interleave",
    "cdist",
    "cosine_similarity",
    "pairwise_distance",
    "nanmean",
    "logit",
    "deg2rad",
    "rad2deg",
    "sinc",
    "angle",
]
