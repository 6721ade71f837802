"""Joining and splitting: cat/concat, stack, hstack/vstack/dstack, split, chunk, unbind.

`cat` and `stack` are one node each whose backward slices the gradient; the pieces that
`split`, `chunk` and `unbind` return are views of their input made by one multi-output node,
whose backward joins the pieces' gradients again (zeros for pieces that got none).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _dtype
from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor, _wrap_dim
from ._util import check_same_device, result_dtype
from ._view import mark_multi_output_view
from .indexing import _fn_index, slice_view
from .shape import atleast_1d, atleast_2d, atleast_3d


def _legacy_empty(a, ndim: int) -> bool:
    """torch skips 1-D tensors of shape (0,) when joining tensors of more dimensions."""
    return a.ndim == 1 and a.shape[0] == 0 and ndim != 1


class Cat(Op):
    def forward(self, *arrays, dim=0, ndim=1):
        self.dim = dim
        self.skipped = [_legacy_empty(a, ndim) for a in arrays]
        self.sizes = [0 if skip else a.shape[dim] for a, skip in zip(arrays, self.skipped)]
        self.dtypes = [a.dtype for a in arrays]
        kept = [a for a, skip in zip(arrays, self.skipped) if not skip]
        return xp_of(arrays[0]).concatenate(kept, axis=dim)

    def backward(self, g):
        out, start = [], 0
        for n, need, dt, skip in zip(self.sizes, self.needs_input_grad, self.dtypes, self.skipped):
            if need and skip:
                out.append(Tensor._make(xp_of(g._data).zeros((0,), dtype=dt)))
            elif need:
                piece = g.narrow(self.dim, start, n)
                if piece._data.dtype != dt:
                    piece = piece.to(_dtype.from_numpy_dtype(dt))
                out.append(piece)
            else:
                out.append(None)
            start += n
        return tuple(out)


class Stack(Op):
    def forward(self, *arrays, dim=0):
        self.dim = dim
        return xp_of(arrays[0]).stack(arrays, axis=dim)

    def backward(self, g):
        return tuple(
            g.select(self.dim, i) if need else None for i, need in enumerate(self.needs_input_grad)
        )


def _tensor_list(tensors, name: str) -> list:
    if isinstance(tensors, Tensor):
        raise TypeError(
            f"{name}(): argument 'tensors' (position 1) must be tuple of Tensors, not Tensor"
        )
    if not isinstance(tensors, Sequence):
        tensors = list(tensors)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"expected Tensor as element {i} in argument 0, but got {type(t).__name__}"
            )
    return list(tensors)


def _common(tensors: list) -> list:
    """One dtype (torch's promotion) and one device for all of them."""
    first = tensors[0]._data
    dt = first.dtype
    mixed = False
    for t in tensors[1:]:
        a = t._data
        if type(a) is not type(first):
            check_same_device(first, a)
        if a.dtype != dt:
            dt, mixed = result_dtype(dt, a.dtype), True
    if not mixed:
        return tensors
    target = _dtype.from_numpy_dtype(dt)
    return [t if t._data.dtype == dt else t.to(target) for t in tensors]


def cat(tensors, dim: int = 0, *, out=None) -> Tensor:
    tensors = _tensor_list(tensors, "cat")
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    arrays = [t._data for t in tensors]
    ndim = 0
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
        ndim = max(ndim, a.ndim)
    kept = [(i, a) for i, a in enumerate(arrays) if not _legacy_empty(a, ndim)]
    ref = kept[0][1]
    d = _wrap_dim(dim, ref.ndim)
    for i, a in kept:
        if a.shape != ref.shape:
            if a.ndim != ref.ndim:
                raise RuntimeError(
                    f"Tensors must have same number of dimensions: got {ref.ndim} and {a.ndim}"
                )
            for k, (x, y) in enumerate(zip(ref.shape, a.shape)):
                if k != d and x != y:
                    raise RuntimeError(
                        f"Sizes of tensors must match except in dimension {d}. Expected size {x} "
                        f"but got size {y} for tensor number {i} in the list."
                    )
    return Cat.apply(*_common(tensors), dim=d, ndim=ref.ndim)


concat = cat
concatenate = cat


def stack(tensors, dim: int = 0, *, out=None) -> Tensor:
    tensors = _tensor_list(tensors, "stack")
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    ref = tensors[0]
    d = _wrap_dim(dim, ref.ndim + 1)
    for i, t in enumerate(tensors):
        if t._data.shape != ref._data.shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(ref.shape)} at entry "
                f"0 and {list(t.shape)} at entry {i}"
            )
    return Stack.apply(*_common(tensors), dim=d)


def hstack(tensors) -> Tensor:
    ts = atleast_1d(_tensor_list(tensors, "hstack"))
    return cat(ts, 0 if ts and ts[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    return cat(atleast_2d(_tensor_list(tensors, "vstack")), 0)


row_stack = vstack


def dstack(tensors) -> Tensor:
    return cat(atleast_3d(_tensor_list(tensors, "dstack")), 2)


def column_stack(tensors) -> Tensor:
    ts = []
    for t in _tensor_list(tensors, "column_stack"):
        ts.append(t.reshape(t.numel(), 1) if t.ndim <= 1 else t)
    return cat(ts, 1)


# ---------------------------------------------------------------- splitting
class Split(Op):
    """All pieces of a split in one node: views of the input along `dim`."""

    kind = "Split"

    def forward(self, a, bounds=(), dim=0):
        self.dim, self.bounds, self.in_dtype = dim, bounds, a.dtype
        lead = (slice(None),) * dim
        return tuple(a[lead + (slice(s, e),)] for s, e in bounds)

    def backward(self, *grads):
        ref = next((g for g in grads if g is not None), None)
        if ref is None:
            return (None,)
        filled = []
        for (s, e), p in zip(self.bounds, grads):
            if p is None:
                shape = list(ref.shape)
                shape[self.dim] = e - s
                p = Tensor._make(xp_of(ref._data).zeros(tuple(shape), dtype=ref._data.dtype))
            filled.append(p)
        return (Cat.apply(*filled, dim=self.dim),)

    def name(self) -> str:
        return self.kind + "Backward0"


class SplitWithSizes(Split):
    kind = "SplitWithSizes"


class Unbind(Op):
    def forward(self, a, dim=0):
        self.dim, self.n = dim, a.shape[dim]
        lead = (slice(None),) * dim
        return tuple(a[lead + (i, Ellipsis)] for i in range(self.n))

    def backward(self, *grads):
        ref = next((g for g in grads if g is not None), None)
        if ref is None:
            return (None,)
        zeros = None
        filled = []
        for g in grads:
            if g is None:
                if zeros is None:
                    zeros = Tensor._make(xp_of(ref._data).zeros(ref._data.shape, ref._data.dtype))
                g = zeros
            filled.append(g)
        return (Stack.apply(*filled, dim=self.dim),)


def _pieces(input: Tensor, op_cls, bounds: list, dim: int) -> tuple:
    if input.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    outs = op_cls.apply(input, bounds=tuple(bounds), dim=dim)
    lead = (slice(None),) * dim
    name = op_cls.kind + "Backward0"
    for i, ((s, e), o) in enumerate(zip(bounds, outs)):
        mark_multi_output_view(input, o, _fn_index, lead + (slice(s, e),), name, i)
    return tuple(outs)


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    if tensor.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _wrap_dim(dim, tensor.ndim)
    size = tensor._data.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step < 0:
            raise RuntimeError(
                f"split expects split_size be non-negative, but got split_size={step}"
            )
        if step == 0:
            if size != 0:
                raise RuntimeError(
                    "split_size can only be 0 if dimension size is 0, but got dimension size of "
                    f"{size}"
                )
            return _pieces(tensor, Split, [(0, 0)], d)
        bounds = [(s, min(s + step, size)) for s in range(0, size, step)] or [(0, 0)]
        return _pieces(tensor, Split, bounds, d)
    sizes = [int(s) for s in split_size_or_sections]
    if sum(sizes) != size or any(s < 0 for s in sizes):
        raise RuntimeError(
            f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size "
            f"at dimension {d}), but got split_sizes={sizes}"
        )
    bounds, start = [], 0
    for s in sizes:
        bounds.append((start, start + s))
        start += s
    return _pieces(tensor, SplitWithSizes, bounds, d)


def split_with_sizes(input: Tensor, split_sizes, dim: int = 0) -> tuple:
    """split with a list of sizes only (torch's op under split)."""
    if isinstance(split_sizes, (int, np.integer)):
        raise TypeError("split_with_sizes(): argument 'split_sizes' must be tuple of ints, not int")
    return split(input, split_sizes, dim)


def tensor_split(input: Tensor, indices_or_sections, dim: int = 0) -> tuple:
    d = _wrap_dim(dim, input.ndim)
    size = input._data.shape[d]
    if isinstance(indices_or_sections, (int, np.integer)):
        n = int(indices_or_sections)
        if n <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {n}")
        q, r = divmod(size, n)
        sizes = [q + 1] * r + [q] * (n - r)
    else:
        cuts = [min(max(int(i), 0), size) for i in indices_or_sections]
        sizes, prev = [], 0
        for c in cuts:
            sizes.append(max(c - prev, 0))
            prev = max(prev, c)
        sizes.append(size - prev)
    pieces, start = [], 0
    lead = (slice(None),) * d
    for s in sizes:
        pieces.append(slice_view(input, lead + (slice(start, start + s),)))
        start += s
    return tuple(pieces)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    if input.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    d = _wrap_dim(dim, input.ndim)
    size = input._data.shape[d]
    if size == 0:
        return _pieces(input, Split, [(0, 0)] * chunks, d)
    return split(input, -(-size // chunks), d)


def unbind(input: Tensor, dim: int = 0) -> tuple:
    if input.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = _wrap_dim(dim, input.ndim)
    outs = Unbind.apply(input, dim=d)
    lead = (slice(None),) * d
    for i, o in enumerate(outs):
        mark_multi_output_view(input, o, _fn_index, lead + (i, Ellipsis), "UnbindBackward0", i)
    return tuple(outs)


TENSOR_METHODS = {
    "split": split,
    "split_with_sizes": split_with_sizes,
    "tensor_split": tensor_split,
    "chunk": chunk,
    # torch's unsafe_* forms skip a view-safety check shardgrad does not need
    "unsafe_chunk": chunk,
    "unsafe_split": split,
    "unsafe_split_with_sizes": split_with_sizes,
    "unbind": unbind,
}

__all__ = [
    "cat",
    "concat",
    "concatenate",
    "stack",
    "hstack",
    "vstack",
    "row_stack",
    "dstack",
    "column_stack",
    "split",
    "split_with_sizes",
    "tensor_split",
    "chunk",
    "unsafe_chunk",
    "unsafe_split",
    "unsafe_split_with_sizes",
    "unbind",
]

unsafe_chunk = chunk
unsafe_split = split
unsafe_split_with_sizes = split_with_sizes
