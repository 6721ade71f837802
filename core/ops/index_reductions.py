"""Reductions into positions picked by an index: `scatter_reduce` and `index_reduce`.

`scatter_reduce(dim, index, src, reduce)` folds each `src` element into the position of
`input` that `index` names along `dim` (sum, prod, mean, amax, amin), starting from
`input`'s own value unless `include_self=False`. `index_reduce` is the same with one index
per slice along `dim`, so it is written as a scatter_reduce over the index spread to the
source's shape.

The gradients follow torch's `scatter_reduce_backward`: a mean divides by each position's
count, amax and amin share the gradient evenly among the elements that tie for the result,
and prod divides the result by the factor, with a separate pass for a factor that is the
only zero in its group (dividing would give 0/0 there). The backward is written with
Tensor ops, so it differentiates again (except prod's through a group holding several
zeros, where torch refuses a second derivative).
"""

from __future__ import annotations

import numpy as np

from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor, _wrap_dim
from ._util import meta
from ._view import add_at, extreme_at, multiply_at
from .elementwise import where
from .indexing import (
    IndexAddInto,
    ScatterAdd,
    _coords,
    _gather_checks,
    _on,
    _src_part,
    _vector_index,
)

_ALIASES = {"max": "amax", "min": "amin"}  # torch accepts these too, undocumented
_SCATTER_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")
_INDEX_REDUCTIONS = ("prod", "mean", "amax", "amin")


def _identity(reduce: str, dtype):
    """The value a position starts from when its own value is left out."""
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    big = np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).max
    if dtype == np.bool_:
        big = True
    return -big if reduce == "amax" else big


def _reduce_at(out, coords, values, reduce: str) -> None:
    if reduce in ("sum", "mean"):
        add_at(out, coords, values)
    elif reduce == "prod":
        multiply_at(out, coords, values)
    else:
        extreme_at(out, coords, values, larger=reduce == "amax")


def _counts(shape, coords, include_self: bool, dtype, xp):
    """How many values each position's mean averages (at least 1: an untouched position
    keeps its own value)."""
    n = xp.full(shape, 1 if include_self else 0, dtype=dtype)
    add_at(n, coords, xp.ones(coords[0].shape, dtype=dtype))
    return xp.maximum(n, 1)


def _scatter_reduce_array(a, src, index, dim: int, reduce: str, include_self: bool):
    xp = xp_of(a)
    out = a.copy()
    if index.size == 0:
        return out
    coords = _coords(index, dim, xp)
    values = _src_part(src, index)
    if not include_self:
        out[coords] = _identity(reduce, out.dtype)
    _reduce_at(out, coords, values, reduce)
    if reduce == "mean":
        n = _counts(out.shape, coords, include_self, out.dtype, xp)
        if np.issubdtype(out.dtype, np.floating):
            out /= n
        else:
            out //= n
    return out


class ScatterReduce(Op):
    save_inputs = (0, 1)
    save_output = True

    def forward(
        self, a, src, index=None, dim=0, reduce="sum", include_self=True, op="ScatterReduce"
    ):
        self.index, self.dim, self.src, self.op = index, dim, meta(src), op
        self.reduce, self.include_self = reduce, include_self
        return _scatter_reduce_array(a, src, index, dim, reduce, include_self)

    def name(self) -> str:
        return self.op + "Backward0"

    def backward(self, g):
        a, src, result = self.saved
        index, dim, reduce = self.index, self.dim, self.reduce
        idx = Tensor._make(index)
        if tuple(src.shape) != tuple(index.shape):  # only src's leading block takes part
            src = src[tuple(slice(0, n) for n in index.shape)]
        if reduce == "sum":
            ga, gs = g, g.gather(dim, idx)
        elif reduce == "mean":
            xp = xp_of(index)
            n = _counts(a.shape, _coords(index, dim, xp), self.include_self, a._data.dtype, xp)
            n = Tensor._make(n)
            ga, gs = g / n, g.gather(dim, idx) / n.gather(dim, idx)
        elif reduce in ("amax", "amin"):
            ga, gs = _extremum_grads(a, src, result, g, idx, dim)
        else:
            ga, gs = self._prod_grads(a, src, result, g, idx, dim)
        if not self.include_self:  # a scattered-to position's own value was not used
            ga = ga.scatter(dim, idx, 0.0)
        src_shape = tuple(self.src[0])
        if self.needs_input_grad[1] and tuple(index.shape) != src_shape:  # zeros beyond
            block = tuple(slice(0, n) for n in index.shape)
            gs = IndexAddInto.apply(gs, shape=src_shape, idx=block, basic=True)
        return ga, gs

    def _prod_grads(self, a, src, result, g, idx, dim):
        xp = xp_of(a._data)
        kw = dict(index=idx._data, dim=dim, reduce="prod", include_self=self.include_self)
        # d(prod)/d(self): the product of everything else, computed, not divided out, where
        # self is 0 (so self's own zero does not hide it)
        a_nonzero = a.masked_fill(a == 0, 1.0)
        ga = g * ScatterReduce.apply(a_nonzero, src, **kw) / a_nonzero
        src_zero = src == 0
        zeros_per_group = (
            Tensor._make(xp.zeros(a.shape, dtype=a._data.dtype))
            .scatter_add(dim, idx, src_zero.to(a.dtype))
            .gather(dim, idx)
        )
        single_zero = src_zero & (zeros_per_group == 1)
        without_the_zero = ScatterReduce.apply(a, src.masked_fill(single_zero, 1.0), **kw)
        gs = where(
            single_zero,
            (g * without_the_zero).gather(dim, idx),
            (g * result).gather(dim, idx) / src.masked_fill(src_zero, 1.0),
        )
        return ga, gs


def _extremum_grads(a, src, result, g, idx, dim):
    """amax/amin: the gradient is shared evenly among self and the src elements that equal
    the result."""
    value = result.gather(dim, idx)
    self_wins = (a == result).to(a.dtype)
    src_wins = (src == value).to(a.dtype)
    ties = ScatterAdd.apply(self_wins, src_wins, index=idx._data, dim=dim)
    share = g / ties
    return self_wins * share, src_wins * share.gather(dim, idx)


# ---------------------------------------------------------------- public functions
def _reduction(reduce: str, allowed: tuple, name: str) -> str:
    reduce = _ALIASES.get(reduce, reduce) if name == "scatter_reduce" else reduce
    if reduce not in allowed:
        if name == "scatter_reduce":
            raise RuntimeError(
                f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}"
            )
        raise RuntimeError(
            f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got "
            f"{reduce}."
        )
    return reduce


def _scatter_reduce_args(input, dim, index, src, reduce, name):
    reduce = _reduction(reduce, _SCATTER_REDUCTIONS, "scatter_reduce")
    if not isinstance(src, Tensor):
        raise TypeError(f"{name}(): argument 'src' must be Tensor, not {type(src).__name__}")
    d = _gather_checks(input, dim, index, name, src)
    if src._data.dtype != input._data.dtype:
        raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")
    return d, _on(index._data, xp_of(input._data)), reduce


def _apply(input: Tensor, src: Tensor, **kw) -> Tensor:
    """ScatterReduce, with a 0-d input (one position) done as a 1-element vector."""
    if input.ndim == 0:
        kw["index"] = kw["index"].reshape(-1)
        return ScatterReduce.apply(input.reshape(1), src.reshape(-1), **kw).reshape(())
    return ScatterReduce.apply(input, src, **kw)


def scatter_reduce(
    input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *, include_self: bool = True
) -> Tensor:
    d, idx, reduce = _scatter_reduce_args(input, dim, index, src, reduce, "scatter_reduce")
    return _apply(input, src, index=idx, dim=d, reduce=reduce, include_self=include_self)


def scatter_reduce_(
    input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *, include_self: bool = True
) -> Tensor:
    from .inplace import run_inplace  # noqa: PLC0415

    d, idx, reduce = _scatter_reduce_args(input, dim, index, src, reduce, "scatter_reduce_")
    kw = dict(index=idx, dim=d, reduce=reduce, include_self=include_self)

    return run_inplace(input, lambda s: _apply(s, src, **kw), (src,))


def _index_reduce_args(input, dim, index, source, reduce, name):
    """index_reduce as scatter_reduce: the vector index repeated across source's other
    dimensions."""
    reduce = _reduction(reduce, _INDEX_REDUCTIONS, "index_reduce")
    if not isinstance(source, Tensor):
        raise TypeError(f"{name}(): argument 'source' must be Tensor, not {type(source).__name__}")
    xp = xp_of(input._data)
    vec = _vector_index(index, name, xp)
    d = _wrap_dim(dim, input.ndim)
    xs, ss = input._data.shape, source._data.shape
    if len(ss) != len(xs) or any(s != x for k, (s, x) in enumerate(zip(ss, xs)) if k != d):
        raise RuntimeError(
            f"{name}(): Source/destination tensor must have same slice shapes. Destination "
            f"slice shape: {list(xs[:d] + xs[d + 1 :])} at dimension {d} and source slice "
            f"shape: {list(ss[:d] + ss[d + 1 :])} at dimension 0."
        )
    if len(ss) and ss[d] != vec.size:
        raise RuntimeError(
            f"{name}(): Index should have dimension 1 or 0 (got {index.ndim}) and its length "
            f"should equal source.size(dim) ({ss[d] if ss else 1}), got {vec.size}"
        )
    if source._data.dtype != input._data.dtype:
        raise RuntimeError(
            f"{name}(): self ({input.dtype}) and source ({source.dtype}) must have the same "
            "scalar type"
        )
    if xs:
        size = xs[d]
        if vec.size and bool(((vec < 0) | (vec >= size)).any()):
            raise IndexError(f"{name}(): index out of range in self")
        along = [1] * len(ss)
        along[d] = vec.size
        vec = xp.ascontiguousarray(xp.broadcast_to(vec.reshape(along), ss))
    return d, vec, reduce


def index_reduce(
    input: Tensor,
    dim: int,
    index: Tensor,
    source: Tensor,
    reduce: str,
    *,
    include_self: bool = True,
) -> Tensor:
    d, idx, reduce = _index_reduce_args(input, dim, index, source, reduce, "index_reduce")
    kw = dict(index=idx, dim=d, reduce=reduce, include_self=include_self, op="IndexReduce")
    return _apply(input, source, **kw)


def index_reduce_(
    input: Tensor,
    dim: int,
    index: Tensor,
    source: Tensor,
    reduce: str,
    *,
    include_self: bool = True,
) -> Tensor:
    from .inplace import run_inplace  # noqa: PLC0415

    d, idx, reduce = _index_reduce_args(input, dim, index, source, reduce, "index_reduce_")
    kw = dict(index=idx, dim=d, reduce=reduce, include_self=include_self, op="IndexReduce")
    return run_inplace(input, lambda s: _apply(s, source, **kw), (source,))


TENSOR_METHODS = {
    "scatter_reduce": scatter_reduce,
    "scatter_reduce_": scatter_reduce_,
    "index_reduce": index_reduce,
    "index_reduce_": index_reduce_,
}

__all__ = ["scatter_reduce", "index_reduce"]
