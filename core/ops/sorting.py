"""Ordering ops: sort, argsort, msort, topk, kthvalue.

Indices are computed on arrays; values are read through `TakeAlong`, so their gradient goes
back to the positions they came from. Sorting is always stable (equal values keep their
order, in both directions) and NaN sorts as the largest value, as in torch.
"""

from __future__ import annotations

import numpy as np

from ..backend import xp_of
from ..tensor import Tensor, _wrap_dim
from ._select import TakeAlong, return_type

_sort_t = return_type("sort")
_topk_t = return_type("topk")
_kthvalue_t = return_type("kthvalue")


def _flip(a, dim: int):
    return xp_of(a).flip(a, axis=dim)


def sort_indices(a, dim: int, descending: bool):
    """Stable argsort along dim; descending keeps equal values in their original order."""
    xp = xp_of(a)
    if not descending:
        return xp.argsort(a, axis=dim, kind="stable")
    n = a.shape[dim]
    return (n - 1) - _flip(xp.argsort(_flip(a, dim), axis=dim, kind="stable"), dim)


def _zero_index(input: Tensor):
    return xp_of(input._data).zeros((), dtype=np.int64)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    if input._data.ndim == 0:
        _wrap_dim(dim, 0)
        idx = _zero_index(input)
        return _sort_t(TakeAlong.apply(input, idx), Tensor._make(idx))
    d = _wrap_dim(dim, input._data.ndim)
    idx = sort_indices(input._data, d, descending).astype(np.int64, copy=False)
    return _sort_t(TakeAlong.apply(input, idx, dim=d), Tensor._make(idx))


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    if input._data.ndim == 0:
        _wrap_dim(dim, 0)
        return Tensor._make(_zero_index(input))
    d = _wrap_dim(dim, input._data.ndim)
    return Tensor._make(sort_indices(input._data, d, descending).astype(np.int64, copy=False))


def msort(input: Tensor) -> Tensor:
    return sort(input, dim=0).values


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """The k largest (or smallest) along dim, best first. Results are always sorted, which
    `sorted=False` permits."""
    a = input._data
    n = a.shape[_wrap_dim(dim, a.ndim)] if a.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError("selected index k out of range")
    if a.ndim == 0:
        idx = _zero_index(input)
        return _topk_t(TakeAlong.apply(input, idx), Tensor._make(idx))
    d = _wrap_dim(dim, a.ndim)
    xp = xp_of(a)
    if k == n or k == 0:
        idx = sort_indices(a, d, largest)
        idx = xp.take(idx, xp.arange(k), axis=d)
    else:
        # partition first so only k candidates are sorted
        kth = n - k if largest else k - 1
        part = xp.argpartition(a, kth, axis=d)
        cand = xp.take(part, xp.arange(n - k, n) if largest else xp.arange(k), axis=d)
        order = sort_indices(xp.take_along_axis(a, cand, axis=d), d, largest)
        idx = xp.take_along_axis(cand, order, axis=d)
    idx = idx.astype(np.int64, copy=False)
    return _topk_t(TakeAlong.apply(input, idx, dim=d), Tensor._make(idx))


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """The k-th smallest value (1-based) along dim and its index."""
    a = input._data
    d = _wrap_dim(dim, a.ndim)
    n = a.shape[d] if a.ndim else 1
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    if a.ndim == 0:
        idx = _zero_index(input)
        return _kthvalue_t(TakeAlong.apply(input, idx), Tensor._make(idx))
    xp = xp_of(a)
    idx = xp.take(xp.argpartition(a, k - 1, axis=d), [k - 1], axis=d).astype(np.int64, copy=False)
    values = TakeAlong.apply(input, idx, dim=d, keepdim=keepdim)
    return _kthvalue_t(values, Tensor._make(idx if keepdim else idx.squeeze(d)))


# ---------------------------------------------------------------- values, not gradients
# The functions below return indices, counts or distinct values: nothing to differentiate.
def unique(
    input: Tensor,
    sorted: bool = True,  # noqa: A002 - torch's name; the result is sorted either way
    return_inverse: bool = False,
    return_counts: bool = False,
    dim: int | None = None,
):
    """The distinct values (or slices along dim), sorted, with where each input element went
    and how many there were, as asked."""
    xp = xp_of(input._data)
    axis = None if dim is None else _wrap_dim(dim, input.ndim)
    values, inverse, counts = xp.unique(
        input._data, return_inverse=True, return_counts=True, axis=axis
    )
    if axis is None:
        inverse = inverse.reshape(input.shape)
    return _with_extras(values, inverse, counts, return_inverse, return_counts)


def unique_consecutive(
    input: Tensor, return_inverse: bool = False, return_counts: bool = False, dim: int | None = None
):
    """Collapse each run of equal consecutive values (or slices along dim) to one."""
    xp = xp_of(input._data)
    data = input._data.reshape(-1) if dim is None else xp.moveaxis(input._data, dim, 0)
    n = data.shape[0]
    if n == 0:
        starts = xp.zeros(0, dtype=bool)
    else:
        differs = (data[1:] != data[:-1]).reshape(n - 1, -1).any(axis=1)
        starts = xp.concatenate([xp.ones(1, dtype=bool), differs])
    values = data[starts]
    if dim is not None:
        values = xp.moveaxis(values, 0, dim)
    inverse = (xp.cumsum(starts) - 1).astype(np.int64)
    if dim is None:
        inverse = inverse.reshape(input.shape)
    counts = xp.diff(xp.concatenate([xp.nonzero(starts)[0], xp.asarray([n])]))
    return _with_extras(values, inverse, counts, return_inverse, return_counts)


def _with_extras(values, inverse, counts, return_inverse: bool, return_counts: bool):
    out = [Tensor._make(values)]
    if return_inverse:
        out.append(Tensor._make(inverse.astype(np.int64)))
    if return_counts:
        out.append(Tensor._make(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """How often each non-negative integer occurs (or the sum of its weights)."""
    data = input._data
    if data.ndim != 1 or data.dtype.kind not in "iu":
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if data.size and int(data.min()) < 0:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    xp = xp_of(data)
    if weights is None:
        return Tensor._make(xp.bincount(data, minlength=minlength).astype(np.int64))
    w = weights._data
    if w.shape != data.shape:
        raise RuntimeError("weights should be 1-d and have the same length as input")
    return Tensor._make(xp.bincount(data, weights=w, minlength=minlength).astype(w.dtype))


def searchsorted(
    sorted_sequence: Tensor,
    input,
    *,
    out_int32: bool = False,
    right: bool = False,
    side: str | None = None,
    sorter: Tensor | None = None,
) -> Tensor:
    """Where each value would be inserted to keep each (innermost) row sorted."""
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError("side and right can't be set to opposites")
        right = side == "right"
    seq = sorted_sequence._data
    xp = xp_of(seq)
    values = input._data if isinstance(input, Tensor) else xp.asarray(input)
    if sorter is not None:
        seq = xp.take_along_axis(seq, sorter._data, axis=-1)
    how = "right" if right else "left"
    if seq.ndim == 1:
        out = xp.searchsorted(seq, values, side=how)
    else:
        if seq.shape[:-1] != values.shape[:-1]:
            raise RuntimeError(
                "torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 "
                "dimensions of boundaries tensor and input value tensor must match"
            )
        rows = seq.reshape(-1, seq.shape[-1])
        flat = values.reshape(rows.shape[0], -1)
        out = xp.stack([xp.searchsorted(r, v, side=how) for r, v in zip(rows, flat)])
        out = out.reshape(values.shape)
    return Tensor._make(out.astype(np.int32 if out_int32 else np.int64))


def bucketize(input, boundaries: Tensor, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The bucket of each value among 1-D sorted boundaries."""
    if boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """For each of `elements`, whether it occurs in `test_elements` (either may be a number)."""
    from ..factory import as_tensor  # noqa: PLC0415

    like = elements if isinstance(elements, Tensor) else test_elements
    a = (
        elements._data
        if isinstance(elements, Tensor)
        else as_tensor(elements, device=like.device)._data
    )
    b = test_elements._data if isinstance(test_elements, Tensor) else as_tensor(
        test_elements, device=like.device
    )._data  # fmt: skip
    xp = xp_of(a)
    return Tensor._make(xp.isin(a, b, invert=invert))


TENSOR_METHODS = {
    "isin": isin,
    "sort": sort,
    "argsort": argsort,
    "msort": msort,
    "topk": topk,
    "kthvalue": kthvalue,
    "unique": unique,
    "unique_consecutive": unique_consecutive,
    "bincount": bincount,
}

__all__ = [
    "sort", "argsort", "msort", "topk", "kthvalue", "unique", "unique_consecutive", "bincount",
    "searchsorted", "bucketize", "isin",
]  # fmt: skip
