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


TENSOR_METHODS = {
    "sort": sort,
    "argsort": argsort,
    "msort": msort,
    "topk": topk,
    "kthvalue": kthvalue,
}

__all__ = ["sort", "argsort", "msort", "topk", "kthvalue"]
