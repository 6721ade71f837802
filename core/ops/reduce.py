"""Reductions: sum, mean (more in this family: var, std, max, min, logsumexp, prod, ...).

`dim` takes torch's forms (int, negative, tuple, None) and `keepdim` keeps reduced axes.
Backward re-expands the gradient to the input's shape.
"""

from __future__ import annotations

import numpy as np

from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor
from ._util import normalize_dims


def _unsqueeze_to(g: Tensor, in_shape: tuple, dims, keepdim: bool) -> Tensor:
    """Reshape a reduced gradient so it broadcasts against the input again."""
    if dims is None:
        return g.reshape((1,) * len(in_shape)) if in_shape else g
    if keepdim:
        return g
    shape = list(in_shape)
    for d in dims:
        shape[d] = 1
    return g.reshape(tuple(shape))


class ExpandReduced(Op):
    """Broadcast a reduced gradient back over the reduced axes: the backward of sum/mean.

    One op instead of reshape + expand keeps the per-node cost of every reduction's backward
    low; its own backward is the matching sum, so double backward works."""

    def forward(self, g, in_shape=None, dims=None, keepdim=False):
        self.dims, self.keepdim = dims, keepdim
        if dims is None:
            kept = (1,) * len(in_shape)
        elif keepdim:
            kept = g.shape
        else:
            kept = list(in_shape)
            for d in dims:
                kept[d] = 1
        return broadcast_array(g.reshape(kept), in_shape)

    def backward(self, gg):
        return Sum.apply(gg, dims=self.dims if self.dims is not None else None, keepdim=self.keepdim)


def broadcast_array(a, shape):
    """`a` broadcast to `shape`: small results are materialised (numpy's broadcast_to costs
    microseconds of Python), large ones stay zero-copy views."""
    if a.shape == tuple(shape):
        return a
    xp = xp_of(a)
    if xp is np and _numel(shape) <= 65536:
        out = np.empty(shape, dtype=a.dtype)
        out[...] = a
        return out
    return xp.broadcast_to(a, shape)


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


class Sum(Op):
    def forward(self, a, dims=None, keepdim=False, dtype=None):
        self.in_shape, self.dims, self.keepdim = a.shape, dims, keepdim
        out = a.sum(axis=dims, keepdims=keepdim, dtype=dtype)
        if a.dtype.kind in "biu" and dtype is None:
            out = out.astype("int64", copy=False)
        return out

    def backward(self, g):
        return ExpandReduced.apply(g, in_shape=self.in_shape, dims=self.dims, keepdim=self.keepdim)


class Mean(Op):
    def forward(self, a, dims=None, keepdim=False):
        self.in_shape, self.dims, self.keepdim = a.shape, dims, keepdim
        self.count = a.size if dims is None else _count(a.shape, dims)
        return a.mean(axis=dims, keepdims=keepdim)

    def backward(self, g):
        return ExpandReduced.apply(
            g / self.count, in_shape=self.in_shape, dims=self.dims, keepdim=self.keepdim
        )


def _count(shape, dims) -> int:
    n = 1
    for d in dims:
        n *= shape[d]
    return n


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A001
    dims = normalize_dims(dim, input.ndim)
    from .. import _dtype  # noqa: PLC0415

    np_dtype = _dtype.to_np(dtype) if dtype is not None else None
    return Sum.apply(input, dims=dims, keepdim=keepdim, dtype=np_dtype)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if input._data.dtype.kind != "f":
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {input.dtype.name.capitalize()}"
        )
    dims = normalize_dims(dim, input.ndim)
    out = Mean.apply(input, dims=dims, keepdim=keepdim)
    return out if dtype is None else out.to(dtype)


TENSOR_METHODS = {"sum": sum, "mean": mean}

__all__ = ["sum", "mean"]
