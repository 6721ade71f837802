"""Shape ops: reshape/view, transpose/permute, expand, squeeze/unsqueeze, flatten, and the
`SumTo` op that undoes broadcasting. Views share the version counter of their base."""

from __future__ import annotations

import numpy as np

from ..autograd.node import Op
from ..tensor import Size, Tensor, _wrap_dim


def _view_of(base: Tensor, out: Tensor) -> Tensor:
    """Mark `out` as a view of `base` when it shares memory, so in-place edits are seen."""
    if out._data.base is not None or out._data is base._data:
        out._vbox = base._vbox
        out._is_view = True
    return out


class SumTo(Op):
    def forward(self, a, shape):
        self.in_shape = a.shape
        lead = a.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, s in enumerate(shape) if s == 1 and a.shape[i + lead] != 1
        )
        out = a.sum(axis=axes, keepdims=True) if axes else a
        return out.reshape(shape) if lead or out.shape != shape else out

    def backward(self, g):
        return g.expand(self.in_shape)


class Expand(Op):
    def forward(self, a, shape):
        self.in_shape = a.shape
        from ..backend import xp_of  # noqa: PLC0415

        return xp_of(a).broadcast_to(a, shape)

    def backward(self, g):
        from ._util import sum_to  # noqa: PLC0415

        return sum_to(g, self.in_shape)


class Reshape(Op):
    def forward(self, a, shape):
        self.in_shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shape)


class Permute(Op):
    def forward(self, a, dims):
        self.inverse = tuple(np.argsort(dims))
        return a.transpose(dims)

    def backward(self, g):
        return g.permute(self.inverse)


def _size_args(args) -> tuple:
    if len(args) == 1 and isinstance(args[0], (tuple, list, Size)):
        return tuple(args[0])
    return tuple(args)


def _infer_shape(shape: tuple, numel: int) -> tuple:
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def reshape(input: Tensor, *shape) -> Tensor:
    shape = _infer_shape(_size_args(shape), input._data.size)
    if shape == input._data.shape:
        return _view_of(input, Reshape.apply(input, shape=shape))
    return _view_of(input, Reshape.apply(input, shape=shape))


def view(input: Tensor, *shape) -> Tensor:
    shape = _infer_shape(_size_args(shape), input._data.size)
    if not input._data.flags.c_contiguous and input._data.size > 1:
        probe = input._data.view()
        try:
            probe.shape = shape  # numpy refuses exactly when a copy would be needed
        except AttributeError:
            raise RuntimeError(
                "view size is not compatible with input tensor's size and stride (at least one "
                "dimension spans across two contiguous subspaces). Use .reshape(...) instead."
            ) from None
    return _view_of(input, Reshape.apply(input, shape=shape))


def view_as(input: Tensor, other: Tensor) -> Tensor:
    return view(input, other.shape)


def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    return reshape(input, other.shape)


def permute(input: Tensor, *dims) -> Tensor:
    dims = _size_args(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(
            "permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {input.ndim} is not "
            f"equal to len(dims) = {len(dims)}"
        )
    dims = tuple(_wrap_dim(d, input.ndim) for d in dims)
    if len(set(dims)) != len(dims):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return _view_of(input, Permute.apply(input, dims=dims))


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    n = input.ndim
    if n == 0:
        return input
    d0, d1 = _wrap_dim(dim0, n), _wrap_dim(dim1, n)
    dims = list(range(n))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return _view_of(input, Permute.apply(input, dims=tuple(dims)))


def t(input: Tensor) -> Tensor:
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def _T(input: Tensor) -> Tensor:
    return permute(input, tuple(reversed(range(input.ndim))))


def _mT(input: Tensor) -> Tensor:
    return transpose(input, -2, -1)


def expand(input: Tensor, *sizes) -> Tensor:
    sizes = _size_args(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError(
            f"expand(torch.FloatTensor{{{list(input.shape)}}}, size={list(sizes)}): the number "
            "of sizes provided must be greater or equal to the number of dimensions in the tensor"
        )
    lead = len(sizes) - input.ndim
    shape = []
    for i, s in enumerate(sizes):
        cur = input._data.shape[i - lead] if i >= lead else None
        if s == -1:
            if cur is None:
                raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
            s = cur
        elif cur is not None and cur != 1 and cur != s:
            raise RuntimeError(
                f"The expanded size of the tensor ({s}) must match the existing size ({cur}) at "
                f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: "
                f"{list(input.shape)}"
            )
        shape.append(int(s))
    shape = tuple(shape)
    if shape == input._data.shape:
        return input
    return _view_of(input, Expand.apply(input, shape=shape))


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, other.shape)


def broadcast_to(input: Tensor, shape) -> Tensor:
    return expand(input, tuple(shape))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    n = input.ndim + 1
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    d = dim % n
    shape = input._data.shape[:d] + (1,) + input._data.shape[d:]
    return _view_of(input, Reshape.apply(input, shape=shape))


def squeeze(input: Tensor, dim=None) -> Tensor:
    shape = input._data.shape
    if dim is None:
        new = tuple(s for s in shape if s != 1)
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        dims = {_wrap_dim(d, input.ndim) for d in dims} if input.ndim else set()
        new = tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1))
    if new == shape:
        return _view_of(input, Reshape.apply(input, shape=shape))
    return _view_of(input, Reshape.apply(input, shape=new))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if input.ndim == 0:
        return reshape(input, (1,))
    s, e = _wrap_dim(start_dim, input.ndim), _wrap_dim(end_dim, input.ndim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    shape = input._data.shape
    new = shape[:s] + (int(np.prod(shape[s : e + 1])),) + shape[e + 1 :]
    return reshape(input, new)


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    d = _wrap_dim(dim, input.ndim)
    shape = input._data.shape
    inner = _infer_shape(tuple(sizes), shape[d])
    return reshape(input, shape[:d] + inner + shape[d + 1 :])


class Contiguous(Op):
    def forward(self, a):
        from ..backend import xp_of  # noqa: PLC0415

        return xp_of(a).ascontiguousarray(a)

    def backward(self, g):
        return g


def contiguous(input: Tensor) -> Tensor:
    if input._data.flags.c_contiguous:
        return input
    return Contiguous.apply(input)


TENSOR_METHODS = {
    "reshape": reshape,
    "view": view,
    "view_as": view_as,
    "reshape_as": reshape_as,
    "permute": permute,
    "transpose": transpose,
    "swapaxes": transpose,
    "t": t,
    "T": property(_T),
    "mT": property(_mT),
    "expand": expand,
    "expand_as": expand_as,
    "broadcast_to": broadcast_to,
    "unsqueeze": unsqueeze,
    "squeeze": squeeze,
    "flatten": flatten,
    "unflatten": unflatten,
    "contiguous": contiguous,
}

__all__ = [
    "reshape", "permute", "transpose", "swapaxes", "t", "expand", "broadcast_to", "unsqueeze",
    "squeeze", "flatten", "unflatten",
]
swapaxes = transpose
