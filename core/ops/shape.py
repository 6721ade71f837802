"""Shape ops: reshape/view, transpose/permute, expand, squeeze/unsqueeze, flatten, flip, roll,
repeat/tile, narrow, movedim, diagonal/diag, triu/tril, and the `SumTo` op that undoes
broadcasting.

The ops torch returns as views (reshape when no copy is needed, view, permute, transpose,
expand, squeeze, unsqueeze, narrow, diagonal, movedim) return arrays sharing the input's
memory, marked with `mark_view` so they share its version counter and in-place writes
through them are tracked. The rest (flip, roll, repeat, triu, ...) return new memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _dtype
from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Size, Tensor, _wrap_dim
from ._view import mark_view


# ---------------------------------------------------------------- array-level view functions
def _fn_reshape(a, shape):
    return a.reshape(shape)


def _fn_transpose(a, dims):
    return a.transpose(dims)


def _fn_expand(a, shape):
    return xp_of(a).broadcast_to(a, shape)


def _fn_diagonal(a, arg):
    return diagonal_view(a, *arg)


def _fn_dtype(a, np_dtype):
    return a.view(np_dtype)


def diagonal_view(a, offset: int, d1: int, d2: int):
    """A writeable view of a diagonal (numpy's `diagonal` is read-only; torch's is not),
    moved to the last axis as torch does."""
    xp = xp_of(a)
    rest = [i for i in range(a.ndim) if i not in (d1, d2)]
    b = a.transpose((*rest, d1, d2))
    b = b[..., max(0, -offset) :, max(0, offset) :]
    n = max(0, min(b.shape[-2], b.shape[-1]))
    shape = b.shape[:-2] + (n,)
    strides = b.strides[:-2] + (b.strides[-2] + b.strides[-1],)
    return xp.lib.stride_tricks.as_strided(b, shape, strides)


# ---------------------------------------------------------------- ops
class SumTo(Op):
    def forward(self, a, shape):
        self.in_shape = a.shape
        lead = a.ndim - len(shape)
        axes = tuple(range(lead)) + tuple(
            i + lead for i, s in enumerate(shape) if s == 1 and a.shape[i + lead] != 1
        )
        if not axes:
            return a.reshape(shape) if lead or a.shape != shape else a
        # summed without keepdims where that already gives `shape` (a bias gradient): a fresh
        # array, which a leaf's .grad can take without the copy a reshaped view would need
        out = a.sum(axis=axes)
        return out if out.shape == shape else out.reshape(shape)

    def backward(self, g):
        return g.expand(self.in_shape)


class Expand(Op):
    def forward(self, a, shape):
        self.in_shape = a.shape
        return xp_of(a).broadcast_to(a, shape)

    def backward(self, g):
        from ._util import sum_to  # noqa: PLC0415

        return sum_to(g, self.in_shape)


class Reshape(Op):
    kind = "View"
    copied = False

    def forward(self, a, shape):
        self.in_shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return g.reshape(self.in_shape)

    def name(self) -> str:
        return ("UnsafeView" if self.copied else self.kind) + "Backward0"


class Unsqueeze(Reshape):
    kind = "Unsqueeze"


class Squeeze(Reshape):
    kind = "Squeeze"
    variant = 0

    def name(self) -> str:
        return f"SqueezeBackward{self.variant}"


class Permute(Op):
    def forward(self, a, dims):
        self.dims = dims
        return a.transpose(dims)

    def backward(self, g):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return Permute.apply(g, dims=tuple(inverse))


class Transpose(Permute):
    pass


class TransposeT(Permute):
    def name(self) -> str:
        return "TBackward0"


class Contiguous(Op):
    def forward(self, a):
        return xp_of(a).ascontiguousarray(a)

    def backward(self, g):
        return g

    def name(self) -> str:
        return "CloneBackward0"


class Flip(Op):
    def forward(self, a, dims):
        self.dims = dims
        return xp_of(a).flip(a, axis=dims).copy()

    def backward(self, g):
        return Flip.apply(g, dims=self.dims)


class Roll(Op):
    def forward(self, a, shifts, dims):
        self.shifts, self.dims = shifts, dims
        return xp_of(a).roll(a, shifts, axis=dims)

    def backward(self, g):
        neg = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        return Roll.apply(g, shifts=neg, dims=self.dims)


class Repeat(Op):
    def forward(self, a, repeats):
        self.in_shape, self.repeats = a.shape, repeats
        lead = len(repeats) - a.ndim
        return xp_of(a).tile(a.reshape((1,) * lead + a.shape), repeats)

    def backward(self, g):
        padded = (1,) * (len(self.repeats) - len(self.in_shape)) + tuple(self.in_shape)
        inter = []
        for r, d in zip(self.repeats, padded):
            inter += [r, d]
        if not inter:
            return g
        summed = g.reshape(tuple(inter)).sum(dim=tuple(range(0, len(inter), 2)))
        return summed.reshape(self.in_shape)


class Diagonal(Op):
    copy = False

    def forward(self, a, offset=0, d1=0, d2=1):
        self.in_shape, self.args = a.shape, (offset, d1, d2)
        out = diagonal_view(a, offset, d1, d2)
        return out.copy() if self.copy else out

    def backward(self, g):
        return DiagonalScatter.apply(g, shape=self.in_shape, args=self.args)

    def name(self) -> str:
        return "DiagonalBackward0_copy" if self.copy else "DiagonalBackward0"


class DiagonalCopy(Diagonal):
    copy = True


class DiagonalScatter(Op):
    """zeros(shape) with `g` on the chosen diagonal: the backward of `diagonal` (and the
    forward of `diag` for vectors)."""

    def forward(self, g, shape=None, args=(0, 0, 1)):
        self.args = args
        out = xp_of(g).zeros(shape, dtype=g.dtype)
        diagonal_view(out, *args)[...] = g
        return out

    def backward(self, gg):
        return Diagonal.apply(gg, *(), offset=self.args[0], d1=self.args[1], d2=self.args[2])

    def name(self) -> str:
        return "DiagEmbedBackward0"


class Triu(Op):
    def forward(self, a, k=0):
        self.k = k
        return xp_of(a).triu(a, k)

    def backward(self, g):
        return Triu.apply(g, k=self.k)


class Tril(Op):
    def forward(self, a, k=0):
        self.k = k
        return xp_of(a).tril(a, k)

    def backward(self, g):
        return Tril.apply(g, k=self.k)


# ---------------------------------------------------------------- argument helpers
def _size_args(args: tuple) -> tuple:
    """`f(2, 3)`, `f((2, 3))`, `f([2, 3])` and `f(torch.Size(...))` all mean the same sizes."""
    if len(args) == 1:
        a = args[0]
        if type(a) is tuple:
            return a
        if isinstance(a, (tuple, list)) or (
            not isinstance(a, (int, np.integer)) and isinstance(a, Sequence)
        ):
            return tuple(a)
    return args


def _ints(values) -> tuple:
    return tuple(int(v) for v in values)


def _infer_shape(shape: tuple, numel: int) -> tuple:
    for s in shape:
        if type(s) is not int:
            shape = _ints(shape)
            break
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s < -1:
            raise RuntimeError(f"invalid shape dimension {s}")
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def _dims(dims, ndim: int) -> tuple:
    """Wrapped dims, refusing repeats (torch's message)."""
    if isinstance(dims, (int, np.integer)):
        dims = (dims,)
    out = tuple(_wrap_dim(int(d), ndim) for d in dims)
    for d in out:
        if out.count(d) > 1:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    return out


# ---------------------------------------------------------------- reshaping
def _reshape_to(input: Tensor, shape: tuple, op_cls=Reshape, variant: int | None = None) -> Tensor:
    a = input._data
    out = op_cls.apply(input, shape=shape)
    node = out.grad_fn
    if variant is not None and node is not None:
        node.variant = variant
    if a.flags.c_contiguous or out._data.size == 0 or xp_of(a).may_share_memory(out._data, a):
        return mark_view(input, out, _fn_reshape, shape)
    if node is not None:
        node.copied = True
    return out


def reshape(input: Tensor, *shape) -> Tensor:
    return _reshape_to(input, _infer_shape(_size_args(shape), input._data.size))


def view(input: Tensor, *shape) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (_dtype.dtype, np.dtype)):
        np_dtype = _dtype.to_np(shape[0])
        return mark_view(input, Tensor._make(input._data.view(np_dtype)), _fn_dtype, np_dtype)
    shape = _infer_shape(_size_args(shape), input._data.size)
    a = input._data
    if not a.flags.c_contiguous and a.size > 1:
        probe = a.reshape(shape)
        if not xp_of(a).may_share_memory(probe, a):
            raise RuntimeError(
                "view size is not compatible with input tensor's size and stride (at least one "
                "dimension spans across two contiguous subspaces). Use .reshape(...) instead."
            )
    return _reshape_to(input, shape)


def view_as(input: Tensor, other: Tensor) -> Tensor:
    return view(input, other.shape)


def reshape_as(input: Tensor, other: Tensor) -> Tensor:
    return reshape(input, other.shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if input.ndim == 0:
        return _reshape_to(input, (1,))
    s, e = _wrap_dim(start_dim, input.ndim), _wrap_dim(end_dim, input.ndim)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return input
    shape = input._data.shape
    n = 1
    for d in shape[s : e + 1]:
        n *= d
    return _reshape_to(input, shape[:s] + (n,) + shape[e + 1 :])


def ravel(input: Tensor) -> Tensor:
    return _reshape_to(input, (input._data.size,))


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    d = _wrap_dim(dim, input.ndim)
    shape = input._data.shape
    sizes = _ints(sizes)
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    try:
        inner = _infer_shape(sizes, shape[d])
    except RuntimeError:
        raise RuntimeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
            f"({shape[d]}) in the input tensor"
        ) from None
    return _reshape_to(input, shape[:d] + inner + shape[d + 1 :])


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    n = input.ndim + 1
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    d = dim % n
    shape = input._data.shape[:d] + (1,) + input._data.shape[d:]
    return _reshape_to(input, shape, Unsqueeze)


def squeeze(input: Tensor, dim=None) -> Tensor:
    shape = input._data.shape
    if dim is None:
        new, variant = tuple(s for s in shape if s != 1), 0
    else:
        variant = 1 if isinstance(dim, (int, np.integer)) else 2
        dims = {_wrap_dim(int(d), input.ndim) for d in ((dim,) if variant == 1 else dim)}
        new = tuple(s for i, s in enumerate(shape) if not (i in dims and s == 1))
    return _reshape_to(input, new, Squeeze, variant)


# ---------------------------------------------------------------- permuting
def _permute_to(input: Tensor, dims: tuple, op_cls=Permute) -> Tensor:
    return mark_view(input, op_cls.apply(input, dims=dims), _fn_transpose, dims)


def permute(input: Tensor, *dims) -> Tensor:
    dims = _size_args(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(
            "permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {input.ndim} is not "
            f"equal to len(dims) = {len(dims)}"
        )
    dims = tuple(_wrap_dim(int(d), input.ndim) for d in dims)
    if len(set(dims)) != len(dims):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return _permute_to(input, dims)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    n = input.ndim
    d0, d1 = _wrap_dim(dim0, n), _wrap_dim(dim1, n)
    if n == 0:
        return _reshape_to(input, ())
    dims = list(range(n))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return _permute_to(input, tuple(dims), Transpose)


def t(input: Tensor) -> Tensor:
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    if input.ndim < 2:
        return _reshape_to(input, input._data.shape)
    return _permute_to(input, (1, 0), TransposeT)


def _T(input: Tensor) -> Tensor:  # noqa: N802 - torch's property name
    return _permute_to(input, tuple(reversed(range(input.ndim))))


def _mT(input: Tensor) -> Tensor:  # noqa: N802 - torch's property name
    if input.ndim < 2:
        raise RuntimeError(
            "tensor.mT is only supported on matrices or batches of matrices. Got "
            f"{input.ndim}-D tensor."
        )
    return transpose(input, -2, -1)


def movedim(input: Tensor, source, destination) -> Tensor:
    src = (source,) if isinstance(source, (int, np.integer)) else tuple(source)
    dst = (destination,) if isinstance(destination, (int, np.integer)) else tuple(destination)
    if len(src) != len(dst):
        raise RuntimeError(
            f"movedim: Invalid source or destination dims: source ({list(src)} dims) should "
            f"contain the same number of dims as destination ({list(dst)} dims)"
        )
    n = input.ndim
    src = tuple(_wrap_dim(int(d), n) for d in src)
    dst = tuple(_wrap_dim(int(d), n) for d in dst)
    for name, ds in (("source", src), ("destination", dst)):
        if len(set(ds)) != len(ds):
            raise RuntimeError(f"movedim: repeated dim in `{name}` ({list(ds)})")
    order = [d for d in range(n) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _permute_to(input, tuple(order)[:n])


def swapdims(input: Tensor, dim0: int, dim1: int) -> Tensor:
    return transpose(input, dim0, dim1)


# ---------------------------------------------------------------- broadcasting
def _expand_shape(input: Tensor, sizes: tuple) -> tuple:
    if len(sizes) < input.ndim:
        raise RuntimeError(
            f"expand({input.type()}{{{list(input.shape)}}}, size={list(sizes)}): the number of "
            f"sizes provided ({len(sizes)}) must be greater or equal to the number of dimensions "
            f"in the tensor ({input.ndim})"
        )
    lead = len(sizes) - input.ndim
    shape = []
    for i, s in enumerate(sizes):
        s = int(s)
        cur = input._data.shape[i - lead] if i >= lead else None
        if s == -1:
            if cur is None:
                raise RuntimeError(
                    f"The expanded size of the tensor (-1) isn't allowed in a leading, "
                    f"non-existing dimension {i}"
                )
            s = cur
        elif (cur is not None and cur != 1 and cur != s) or s < 0:
            raise RuntimeError(
                f"The expanded size of the tensor ({s}) must match the existing size ({cur}) at "
                f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: "
                f"{list(input.shape)}"
            )
        shape.append(s)
    return tuple(shape)


def expand(input: Tensor, *sizes) -> Tensor:
    shape = _expand_shape(input, _size_args(sizes))
    if shape == input._data.shape:
        return input
    return mark_view(input, Expand.apply(input, shape=shape), _fn_expand, shape)


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, other.shape)


def broadcast_to(input: Tensor, shape) -> Tensor:
    return expand(input, tuple(shape))


def broadcast_shapes(*shapes) -> Size:
    shapes = [(s,) if isinstance(s, (int, np.integer)) else tuple(s) for s in shapes]
    try:
        return Size(np.broadcast_shapes(*shapes))
    except ValueError:
        raise RuntimeError(
            f"Shape mismatch: objects cannot be broadcast to a single shape: {shapes}"
        ) from None


def broadcast_tensors(*tensors) -> tuple:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return tuple(expand(t, shape) for t in tensors)


def contiguous(input: Tensor, memory_format=None) -> Tensor:
    if input._data.flags.c_contiguous:
        return input
    return Contiguous.apply(input)


# ---------------------------------------------------------------- copies along dims
def flip(input: Tensor, *dims) -> Tensor:
    dims = _dims(_size_args(dims), input.ndim)
    return Flip.apply(input, dims=dims if input.ndim else ())


def fliplr(input: Tensor) -> Tensor:
    if input.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(input, 1)


def flipud(input: Tensor) -> Tensor:
    if input.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(input, 0)


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    shifts_t = (shifts,) if isinstance(shifts, (int, np.integer)) else _ints(shifts)
    if dims is None:
        if len(shifts_t) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts_t)}, dims:0")
        return Roll.apply(input, shifts=shifts_t[0], dims=None)
    dims_t = (dims,) if isinstance(dims, (int, np.integer)) else _ints(dims)
    if len(shifts_t) != len(dims_t):
        raise RuntimeError(
            f"shifts and dimensions must align. shifts: {len(shifts_t)}, dims:{len(dims_t)}"
        )
    dims_t = tuple(_wrap_dim(d, input.ndim) for d in dims_t)
    return Roll.apply(input, shifts=shifts_t, dims=dims_t)


def repeat(input: Tensor, *sizes) -> Tensor:
    sizes = _ints(_size_args(sizes))
    if len(sizes) < input.ndim:
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions "
            "of tensor"
        )
    padded = (1,) * (len(sizes) - input.ndim) + input._data.shape
    for r, d in zip(sizes, padded):
        if r < 0:
            target = [rr * dd for rr, dd in zip(sizes, padded)]
            raise RuntimeError(f"Trying to create tensor with negative dimension {r * d}: {target}")
    return Repeat.apply(input, repeats=sizes)


def tile(input: Tensor, dims) -> Tensor:
    dims = (dims,) if isinstance(dims, (int, np.integer)) else _ints(dims)
    dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


# ---------------------------------------------------------------- slicing views
def narrow(input: Tensor, dim: int, start, length: int) -> Tensor:
    if input.ndim == 0:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, input.ndim)
    size = input._data.shape[d]
    start = int(start)
    if not -size <= start <= size:
        raise IndexError(
            f"start out of range (expected to be in range of [{-size}, {size}], but got {start})"
        )
    if start < 0:
        start += size
    length = int(length)
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    from .indexing import slice_view  # noqa: PLC0415

    return slice_view(input, (slice(None),) * d + (slice(start, start + length),))


def narrow_copy(input: Tensor, dim: int, start, length: int) -> Tensor:
    """narrow, as a new tensor rather than a view."""
    return narrow(input, dim, start, length).clone()


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    n = input.ndim
    d1, d2 = _wrap_dim(dim1, n), _wrap_dim(dim2, n)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    args = (int(offset), d1, d2)
    out = Diagonal.apply(input, offset=args[0], d1=d1, d2=d2)
    return mark_view(input, out, _fn_diagonal, args)


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    k = int(diagonal)
    if input.ndim == 1:
        n = input._data.shape[0] + abs(k)
        return DiagonalScatter.apply(input, shape=(n, n), args=(k, 0, 1))
    if input.ndim == 2:
        return DiagonalCopy.apply(input, offset=k, d1=0, d2=1)
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    n = input.ndim + 1
    d1, d2 = _wrap_dim(dim1, n), _wrap_dim(dim2, n)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    size = input._data.shape[-1] + abs(int(offset))
    batch = list(input._data.shape[:-1])
    shape = [0] * n
    it = iter(batch)
    for i in range(n):
        shape[i] = size if i in (d1, d2) else next(it)
    return DiagonalScatter.apply(input, shape=tuple(shape), args=(int(offset), d1, d2))


def _check_matrix(input: Tensor, name: str) -> None:
    if input.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    _check_matrix(input, "triu")
    return Triu.apply(input, k=int(diagonal))


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    _check_matrix(input, "tril")
    return Tril.apply(input, k=int(diagonal))


def atleast_1d(*tensors):
    return _atleast(tensors, 1)


def atleast_2d(*tensors):
    return _atleast(tensors, 2)


def atleast_3d(*tensors):
    return _atleast(tensors, 3)


def _atleast(tensors: tuple, n: int):
    single = len(tensors) == 1 and isinstance(tensors[0], Tensor)
    seq = (
        tensors if not (len(tensors) == 1 and isinstance(tensors[0], (list, tuple))) else tensors[0]
    )
    out = []
    for x in seq:
        shape = x._data.shape
        if len(shape) >= n:
            out.append(x)
        elif n == 3 and len(shape) == 2:
            out.append(_reshape_to(x, shape + (1,), Unsqueeze))
        elif n == 3 and len(shape) == 1:
            out.append(_reshape_to(x, (1,) + shape + (1,), Unsqueeze))
        else:
            out.append(_reshape_to(x, (1,) * (n - len(shape)) + shape, Unsqueeze))
    return out[0] if single else tuple(out)


TENSOR_METHODS = {
    "reshape": reshape,
    "view": view,
    "view_as": view_as,
    "reshape_as": reshape_as,
    "permute": permute,
    "transpose": transpose,
    "swapaxes": transpose,
    "swapdims": transpose,
    "t": t,
    "T": property(_T),
    "mT": property(_mT),
    "expand": expand,
    "expand_as": expand_as,
    "broadcast_to": broadcast_to,
    "unsqueeze": unsqueeze,
    "squeeze": squeeze,
    "flatten": flatten,
    "ravel": ravel,
    "unflatten": unflatten,
    "contiguous": contiguous,
    "flip": flip,
    "fliplr": fliplr,
    "flipud": flipud,
    "roll": roll,
    "repeat": repeat,
    "tile": tile,
    "narrow": narrow,
    "narrow_copy": narrow_copy,
    "movedim": movedim,
    "moveaxis": movedim,
    "diagonal": diagonal,
    "diag": diag,
    "diag_embed": diag_embed,
    "triu": triu,
    "tril": tril,
}

swapaxes = transpose
moveaxis = movedim

__all__ = [
    "reshape",
    "permute",
    "transpose",
    "swapaxes",
    "swapdims",
    "t",
    "expand",
    "broadcast_to",
    "broadcast_tensors",
    "broadcast_shapes",
    "unsqueeze",
    "squeeze",
    "flatten",
    "ravel",
    "unflatten",
    "flip",
    "fliplr",
    "flipud",
    "roll",
    "tile",
    "narrow",
    "narrow_copy",
    "movedim",
    "moveaxis",
    "diagonal",
    "diag",
    "diag_embed",
    "triu",
    "tril",
    "atleast_1d",
    "atleast_2d",
    "atleast_3d",
]
