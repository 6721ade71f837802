"""Indexing: `x[idx]` with ints, slices, `...`, `None`, integer arrays and boolean masks, and
`x[idx] = value`. Backward of a read scatters (adds) the gradient into zeros, which also
handles repeated indices; the scatter's own backward is the read again."""

from __future__ import annotations

import numpy as np

from ..autograd import grad_mode
from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor
from ._util import meta, reduce_grad


def _convert_index(idx):
    """Tensors inside an index become arrays; lists stay lists (numpy reads them the same)."""
    if isinstance(idx, Tensor):
        return _check_index_array(idx._data)
    if isinstance(idx, tuple):
        return tuple(_convert_index(i) for i in idx)
    if isinstance(idx, list) and any(isinstance(i, Tensor) for i in idx):
        return [(i.item() if isinstance(i, Tensor) else i) for i in idx]
    return idx


def _check_index_array(a):
    if a.dtype.kind == "f":
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    return a


def _is_basic(idx) -> bool:
    """True for ints/slices/None/... only: the result is a view and no index repeats."""
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer)) for i in items)


class GetItem(Op):
    def forward(self, a, idx=None):
        self.in_shape, self.dtype, self.idx = a.shape, a.dtype, idx
        return a[idx]

    def backward(self, g):
        return IndexAddInto.apply(g, shape=self.in_shape, idx=self.idx)


class IndexAddInto(Op):
    """zeros(shape).index_put_(idx, g, accumulate=True): the backward of GetItem."""

    def forward(self, g, shape=None, idx=None):
        self.idx = idx
        xp = xp_of(g)
        out = xp.zeros(shape, dtype=g.dtype)
        if _is_basic(idx):
            out[idx] = g
        else:
            xp.add.at(out, idx, g)
        return out

    def backward(self, gg):
        return GetItem.apply(gg, idx=self.idx)


def getitem(input: Tensor, idx) -> Tensor:
    idx = _convert_index(idx)
    if _is_basic(idx) and input.ndim == 0 and idx not in ((), Ellipsis, None) and not (isinstance(idx, tuple) and all(i is None or i is Ellipsis for i in idx)):
        raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` to convert a 0-dim tensor to a number")
    try:
        out = GetItem.apply(input, idx=idx)
    except IndexError as exc:
        raise IndexError(str(exc)) from None
    if _is_basic(idx):
        out._vbox = input._vbox
        out._is_view = True
    return out


class SetItem(Op):
    """out = a.clone(); out[idx] = value, differentiable in both a and value."""

    def forward(self, a, value, idx=None):
        self.idx, self.v = idx, meta(value)
        out = a.copy()
        out[idx] = value
        self.value_shape = out[idx].shape
        return out

    def backward(self, g):
        ga = gv = None
        if self.needs_input_grad[0]:
            mask = xp_of(g._data).ones(g.shape, dtype=g._data.dtype)
            mask[self.idx] = 0
            ga = g * Tensor._make(mask)
        if self.needs_input_grad[1]:
            gv = reduce_grad(g[self.idx], *self.v)
        return ga, gv


def setitem(input: Tensor, idx, value) -> None:
    idx = _convert_index(idx)
    needs_graph = grad_mode.state.enabled and (
        input._requires_grad or (isinstance(value, Tensor) and value._requires_grad)
    )
    if not needs_graph:
        val = value._data if isinstance(value, Tensor) else value
        if isinstance(value, Tensor) and type(val) is not type(input._data):
            val = value.to(input.device)._data
        input._data[idx] = val
        input._bump_version()
        return
    from .inplace import rebind_inplace  # noqa: PLC0415

    if isinstance(value, Tensor) and value._data.dtype != input._data.dtype:
        value = value.to(input.dtype)
    rebind_inplace(input, lambda src: SetItem.apply(src, value, idx=idx))


def nonzero(input: Tensor, *, as_tuple: bool = False):
    xp = xp_of(input._data)
    if as_tuple:
        return tuple(Tensor._make(a.astype(np.int64)) for a in xp.nonzero(input._data))
    return Tensor._make(xp.argwhere(input._data).astype(np.int64))


TENSOR_METHODS = {
    "__getitem__": getitem,
    "__setitem__": setitem,
    "nonzero": nonzero,
}

__all__ = ["nonzero"]
