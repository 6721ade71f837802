"""Indexing: `x[idx]` (ints, slices, `...`, `None`, integer arrays/tensors/lists, boolean
masks and their combinations), `x[idx] = value`, and the index ops: gather, scatter,
scatter_add, index_select, index_add, masked_fill, masked_select, take, select, one_hot,
nonzero.

A read with only ints, slices, `None` and `...` is a view (numpy's basic indexing); any
array in the index makes a copy (advanced indexing), and torch and numpy agree on where the
indexed dimensions go. The backward of a read adds the gradient into zeros, summing repeated
indices; the backward of that is the read again, so every formula here differentiates twice.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor, _wrap_dim
from ._util import meta, reduce_grad
from ._view import add_at, mark_view, multiply_at

_BAD_INDEX = (
    "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid "
    "indices (got {})"
)


# ---------------------------------------------------------------- index normalisation
def _check_slice(s: slice) -> None:
    step = s.step
    if step is not None and int(step) <= 0:
        if int(step) == 0:
            raise ValueError("slice step cannot be zero")
        raise ValueError("step must be greater than zero")


def _index_array(t: Tensor, xp):
    a = t._data
    kind = a.dtype.kind
    if kind == "f":
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
    if a.dtype == np.uint8:
        warnings.warn(
            "indexing with dtype torch.uint8 is now deprecated, please use a dtype torch.bool "
            "instead.",
            UserWarning,
            stacklevel=4,
        )
        a = a.astype(bool)
    return _on(a, xp)


def _on(a, xp):
    """An index array on the indexed array's device."""
    if xp is np:
        return a if type(a) is np.ndarray else a.get()
    return xp.asarray(a)


def _item(i, xp):
    """One index entry -> (converted entry, is_basic)."""
    if i is None or i is Ellipsis:
        return i, True
    t = type(i)
    if t is int:
        return i, True
    if t is slice:
        _check_slice(i)
        return i, True
    if isinstance(i, Tensor):
        if i._data.ndim == 0 and i._data.dtype.kind in "iu" and i._data.dtype != np.uint8:
            return int(i.item()), True
        return _index_array(i, xp), False
    if t is bool or isinstance(i, np.bool_):
        return bool(i), False
    if isinstance(i, (int, np.integer)):
        return int(i), True
    if isinstance(i, (list, tuple)):
        if any(isinstance(j, (Tensor, list, tuple)) for j in i):
            i = [_list_entry(j) for j in i]
        return _on(np.asarray(i), xp) if xp is not np else list(i), False
    if hasattr(i, "dtype") and hasattr(i, "shape"):  # numpy / cupy array
        if i.dtype.kind == "f":
            raise IndexError("arrays used as indices must be of integer (or boolean) type")
        return _on(i, xp), False
    raise IndexError(_BAD_INDEX.format(type(i).__name__))


def _list_entry(j):
    if isinstance(j, Tensor):
        return j.tolist()
    if isinstance(j, (list, tuple)):
        return [_list_entry(k) for k in j]
    return j


def _list_is_tuple(idx: list) -> bool:
    """torch (like numpy before 1.23) reads a short list holding sequences, tensors, slices,
    `None` or `...` as a tuple of indices: `x[[[0, 1], [2, 2]]]` is `x[[0, 1], [2, 2]]`."""
    if len(idx) >= 32:
        return False
    for i in idx:
        if i is None or i is Ellipsis or isinstance(i, (Tensor, list, tuple, slice)):
            return True
    return False


def prepare_index(idx, xp) -> tuple:
    """torch's index forms as numpy's, and whether the read is a view (basic indexing)."""
    t = type(idx)
    if t is int:
        return idx, True
    if t is slice:
        _check_slice(idx)
        return idx, True
    if t is list and _list_is_tuple(idx):
        warnings.warn(
            "Using a non-tuple sequence for multidimensional indexing is deprecated; use "
            "x[tuple(seq)] instead of x[seq].",
            UserWarning,
            stacklevel=3,
        )
        idx, t = tuple(idx), tuple
    if t is tuple:
        items, basic = [], True
        for i in idx:
            c, b = _item(i, xp)
            items.append(c)
            basic = basic and b
        return tuple(items), basic
    return _item(idx, xp)


def _numpy_index_error(exc: Exception, input: Tensor, idx) -> IndexError:
    msg = str(exc)
    if input.ndim == 0 and msg.startswith("too many indices"):
        return IndexError(
            "invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
            "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number"
        )
    if msg.startswith("too many indices"):
        return IndexError(f"too many indices for tensor of dimension {input.ndim}")
    return IndexError(msg.replace("for axis", "for dimension"))


# ---------------------------------------------------------------- reading
def _fn_index(a, idx):
    out = a[idx]
    if not hasattr(out, "ndim") or type(out) is not type(a):
        out = a[_with_ellipsis(idx)]
    return out


def _with_ellipsis(idx):
    items = idx if type(idx) is tuple else (idx,)
    return items if Ellipsis in items else (*items, Ellipsis)


class GetItem(Op):
    def forward(self, a, idx=None, basic=True):
        self.in_shape, self.idx, self.basic = a.shape, idx, basic
        out = a[idx]
        if type(out) is not type(a):  # numpy gives a scalar for a full integer index
            out = a[_with_ellipsis(idx)]
        return out

    def backward(self, g):
        return IndexAddInto.apply(g, shape=self.in_shape, idx=self.idx, basic=self.basic)

    def name(self) -> str:
        return _read_name(self.idx, self.basic)


class MaskedSelect(GetItem):
    def name(self) -> str:
        return "MaskedSelectBackward0"


class Take(GetItem):
    def name(self) -> str:
        return "TakeBackward0"


def _read_name(idx, basic: bool) -> str:
    if not basic:
        return "IndexBackward0"
    if type(idx) is not tuple:
        return {int: "SelectBackward0", slice: "SliceBackward0"}.get(
            type(idx), "UnsqueezeBackward0" if idx is None else "AliasBackward0"
        )
    name = "AliasBackward0"
    for i in idx:
        if type(i) is int:
            name = "SelectBackward0"
        elif i is None:
            name = "UnsqueezeBackward0"
        elif type(i) is slice and i != slice(None):
            name = "SliceBackward0"
    return name


class IndexAddInto(Op):
    """zeros(shape).index_put_(idx, g, accumulate=True): the backward of a read."""

    def forward(self, g, shape=None, idx=None, basic=True):
        self.idx, self.basic = idx, basic
        out = xp_of(g).zeros(shape, dtype=g.dtype)
        if basic:
            out[idx] = g
        else:
            add_at(out, idx, g)
        return out

    def backward(self, gg):
        return GetItem.apply(gg, idx=self.idx, basic=self.basic)


def getitem(input: Tensor, idx) -> Tensor:
    idx, basic = prepare_index(idx, xp_of(input._data))
    try:
        out = GetItem.apply(input, idx=idx, basic=basic)
    except IndexError as exc:
        raise _numpy_index_error(exc, input, idx) from None
    if basic:
        mark_view(input, out, _fn_index, idx)
    return out


def slice_view(input: Tensor, idx: tuple) -> Tensor:
    """A basic-index view with an index already in numpy's form (narrow, select, split)."""
    return mark_view(input, GetItem.apply(input, idx=idx, basic=True), _fn_index, idx)


def select(input: Tensor, dim: int, index) -> Tensor:
    if input.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, input.ndim)
    size = input._data.shape[d]
    i = int(index)
    if not -size <= i < size:
        raise IndexError(
            f"select(): index {i} out of range for tensor of size {list(input.shape)} at "
            f"dimension {d}"
        )
    return slice_view(input, (slice(None),) * d + (i % size,))


# ---------------------------------------------------------------- writing
class SetItem(Op):
    """out = a.clone(); out[idx] = value, differentiable in both a and value."""

    def forward(self, a, value, idx=None, basic=True):
        self.idx, self.basic, self.v = idx, basic, meta(value)
        out = a.copy()
        try:
            out[idx] = value
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        return out

    def backward(self, g):
        ga = gv = None
        if self.needs_input_grad[0]:
            ga = SetItem.apply(g, 0, idx=self.idx, basic=self.basic)
        if self.needs_input_grad[1]:
            gv = GetItem.apply(g, idx=self.idx, basic=self.basic)
            shape, dtype = self.v
            if gv._data.ndim < len(shape):
                gv = gv.reshape(shape)
            gv = reduce_grad(gv, tuple(shape), dtype)
        return ga, gv

    def name(self) -> str:
        return "CopySlices" if self.basic else "IndexPutBackward0"


def _value_for(input: Tensor, value):
    """The value as something numpy can assign into input's array."""
    if isinstance(value, Tensor):
        val = value._data
        if type(val) is not type(input._data):
            val = value.to(input.device)._data
        return val
    return value


def setitem(input: Tensor, idx, value) -> None:
    from ._view import LEAF_VIEW_MSG  # noqa: PLC0415
    from .inplace import run_inplace  # noqa: PLC0415

    idx, basic = prepare_index(idx, xp_of(input._data))
    if isinstance(value, Tensor) and value._data.dtype != input._data.dtype:
        value = value.to(input.dtype)

    def make(src):
        return SetItem.apply(src, value, idx=idx, basic=basic)

    def fast(dst):
        try:
            dst[idx] = _value_for(input, value)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        except IndexError as exc:
            raise _numpy_index_error(exc, input, idx) from None

    run_inplace(input, make, (value,), fast=fast, keep_old=False, leaf_msg=LEAF_VIEW_MSG)


# ---------------------------------------------------------------- gather / scatter
def _check_index_dtype(index: Tensor, name: str) -> None:
    if not isinstance(index, Tensor):
        raise TypeError(f"{name}(): argument 'index' must be Tensor, not {type(index).__name__}")
    if index._data.dtype not in (np.int64, np.int32):
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index")


def _coords(index, dim: int, xp) -> tuple:
    """For every element of `index`, its position with `dim` replaced by the index value."""
    nd = index.ndim
    out = []
    for d in range(nd):
        if d == dim:
            out.append(index)
        else:
            shape = [1] * nd
            shape[d] = index.shape[d]
            out.append(xp.arange(index.shape[d]).reshape(shape))
    return tuple(out)


def _check_bounds(index, size: int, dim: int) -> None:
    """torch's error for an index out of range. Host indices only: on a GPU the check would
    be a host round trip on every call (torch asserts inside its CUDA kernels instead)."""
    if type(index) is not np.ndarray:
        return
    if index.size and (bool((index < 0).any()) or bool((index >= size).any())):
        bad = index[(index < 0) | (index >= size)].reshape(-1)[0]
        raise RuntimeError(
            f"index {int(bad)} is out of bounds for dimension {dim} with size {size}"
        )


def _gather_checks(
    input: Tensor, dim: int, index: Tensor, name: str, src: Tensor | None = None
) -> int:
    _check_index_dtype(index, name)
    d = _wrap_dim(dim, input.ndim)
    ishape, xshape = index._data.shape, input._data.shape
    if index.ndim != input.ndim and not (index.ndim <= 1 and input.ndim <= 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    for k, (i, s) in enumerate(zip(ishape, xshape)):
        if k != d and i > s:
            raise RuntimeError(
                f"Size does not match at dimension {k} expected index {list(ishape)} to be no "
                f"larger than self {list(xshape)} apart from dimension {d}"
            )
    if src is not None:
        for i, s in zip(ishape, src._data.shape):
            if i > s:
                raise RuntimeError(
                    f"Expected index {list(ishape)} to be no larger than self {list(xshape)} "
                    f"apart from dimension {d} and to be no larger size than src "
                    f"{list(src.shape)}"
                )
    if xshape:
        _check_bounds(index._data, xshape[d], d)
    return d


class Gather(Op):
    def forward(self, a, index, dim=0):
        self.in_shape, self.dim, self.index = a.shape, dim, index
        if a.ndim == 0:
            return a.copy() if index.ndim == 0 else a.reshape(1)[index]
        return a[_coords(index, dim, xp_of(a))]

    def backward(self, g):
        return ScatterAddInto.apply(g, index=self.index, dim=self.dim, shape=self.in_shape), None


class ScatterAddInto(Op):
    """zeros(shape).scatter_add_(dim, index, g): the backward of gather."""

    def forward(self, g, index=None, dim=0, shape=None):
        self.index, self.dim = index, dim
        xp = xp_of(g)
        out = xp.zeros(shape, dtype=g.dtype)
        if out.ndim == 0:
            return out + g.sum()
        add_at(out, _coords(index, dim, xp), g)
        return out

    def backward(self, gg):
        return Gather.apply(gg, self.index, dim=self.dim)


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    d = _gather_checks(input, dim, index, "gather")
    return Gather.apply(input, _on(index._data, xp_of(input._data)), dim=d)


def _src_part(src, index):
    """The leading block of `src` that lines up with `index` (src may be larger)."""
    if src.shape == index.shape:
        return src
    return src[tuple(slice(0, n) for n in index.shape)]


class Scatter(Op):
    """input.scatter(dim, index, src) (src a tensor, or a scalar `value`)."""

    def forward(self, a, src, index=None, dim=0):
        self.index, self.dim, self.src = index, dim, meta(src)
        out = a.copy()
        xp = xp_of(a)
        value = _src_part(src, index) if hasattr(src, "shape") and src.ndim else src
        if out.ndim == 0:
            out[...] = value if index.size else out
            return out
        out[_coords(index, dim, xp)] = value
        return out

    def backward(self, g):
        ga = gs = None
        if self.needs_input_grad[0]:
            ga = Scatter.apply(g, 0, index=self.index, dim=self.dim)
        if self.needs_input_grad[1]:
            gs = _grad_src(g, self.index, self.dim, self.src)
        return ga, gs

    def name(self) -> str:
        return "ScatterBackward0" if self.src is not None else "ScatterBackward1"


def _grad_src(g: Tensor, index, dim: int, src_meta) -> Tensor:
    shape, _ = src_meta
    out = Gather.apply(g, index, dim=dim)
    if len(shape) == 0:
        return out.sum()
    if tuple(index.shape) != tuple(shape):
        pad = tuple(slice(0, n) for n in index.shape)
        out = IndexAddInto.apply(out, shape=tuple(shape), idx=pad, basic=True)
    return out


class ScatterAdd(Op):
    def forward(self, a, src, index=None, dim=0):
        self.index, self.dim, self.src = index, dim, meta(src)
        out = a.copy()
        if out.ndim == 0:
            return out + (_src_part(src, index).sum() if index.size else 0)
        add_at(out, _coords(index, dim, xp_of(a)), _src_part(src, index))
        return out

    def backward(self, g):
        gs = _grad_src(g, self.index, self.dim, self.src) if self.needs_input_grad[1] else None
        return g, gs


def _scatter_args(input, dim, index, src, value, name, scalar_ok=True):
    if src is None and value is None:
        raise TypeError(f"{name}() missing 1 required positional argument: 'src' or 'value'")
    if src is None:
        src = value
    src_t = src if isinstance(src, Tensor) else None
    d = _gather_checks(input, dim, index, name, src_t)
    if src_t is not None and src_t._data.dtype != input._data.dtype:
        src = src_t.to(input.dtype)
    if scalar_ok and isinstance(src, Tensor) and src._data.ndim == 0 and not src._requires_grad:
        src = src._data.item()
    return d, _on(index._data, xp_of(input._data)), src


def _reduce_scatter(input, d, idx, src, reduce):
    if reduce not in ("add", "multiply"):
        raise RuntimeError(f"reduce argument must be either add or multiply, got {reduce}")
    if input._requires_grad or (isinstance(src, Tensor) and src._requires_grad):
        raise RuntimeError("the derivative for 'scatter' with a reduce argument is not implemented")
    xp = xp_of(input._data)
    out = input._data.copy()
    s = src._data if isinstance(src, Tensor) else src
    s = (
        _src_part(s, idx)
        if hasattr(s, "shape") and s.ndim
        else xp.broadcast_to(xp.asarray(s, dtype=out.dtype), idx.shape)
    )
    coords = _coords(idx, d, xp)
    if reduce == "add":
        add_at(out, coords, s)
    else:
        multiply_at(out, coords, s)
    return Tensor._make(out)


def scatter(input: Tensor, dim: int, index: Tensor, src=None, value=None, *, reduce=None) -> Tensor:
    d, idx, src = _scatter_args(input, dim, index, src, value, "scatter")
    if reduce is not None:
        if isinstance(src, Tensor):
            warnings.warn(
                "The reduce argument of torch.scatter with Tensor src is deprecated and will be "
                "removed in a future PyTorch release. Use torch.scatter_reduce instead for more "
                "reduction options.",
                UserWarning,
                stacklevel=2,
            )
        return _reduce_scatter(input, d, idx, src, reduce)
    return Scatter.apply(input, src, index=idx, dim=d)


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    d, idx, src = _scatter_args(input, dim, index, src, None, "scatter_add", scalar_ok=False)
    return ScatterAdd.apply(input, src, index=idx, dim=d)


# ---------------------------------------------------------------- index_select / index_add
def _vector_index(index: Tensor, name: str, xp):
    if not isinstance(index, Tensor):
        raise TypeError(f"{name}(): argument 'index' must be Tensor, not {type(index).__name__}")
    if index._data.dtype not in (np.int64, np.int32):
        raise RuntimeError(f"{name}(): Expected dtype int32 or int64 for index")
    if index.ndim > 1:
        raise IndexError(f"{name}(): Index is supposed to be a vector")
    return _on(index._data.reshape(-1), xp)


class IndexSelect(Op):
    def forward(self, a, index=None, dim=0):
        self.in_shape, self.index, self.dim = a.shape, index, dim
        if a.ndim == 0:
            return a.reshape(1)[index].reshape(index.shape if index.size != 1 else ())
        return xp_of(a).take(a, index, axis=dim)

    def backward(self, g):
        return IndexAddAlong.apply(g, index=self.index, dim=self.dim, shape=self.in_shape)


class IndexAddAlong(Op):
    """zeros(shape).index_add_(dim, index, g): the backward of index_select."""

    def forward(self, g, index=None, dim=0, shape=None):
        self.index, self.dim = index, dim
        out = xp_of(g).zeros(shape, dtype=g.dtype)
        if out.ndim == 0:
            return out + g.sum()
        add_at(out, (slice(None),) * dim + (index,), g)
        return out

    def backward(self, gg):
        return IndexSelect.apply(gg, index=self.index, dim=self.dim)


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    xp = xp_of(input._data)
    idx = _vector_index(index, "index_select", xp)
    d = _wrap_dim(dim, input.ndim)
    size = input._data.shape[d] if input.ndim else 1
    if idx.size and bool(((idx < 0) | (idx >= size)).any()):
        raise IndexError("index out of range in self")
    return IndexSelect.apply(input, index=idx, dim=d)


class IndexAdd(Op):
    def forward(self, a, source, index=None, dim=0, alpha=1):
        self.index, self.dim, self.alpha, self.src = index, dim, alpha, meta(source)
        out = a.copy()
        s = source if alpha == 1 else source * alpha
        if out.ndim == 0:
            return out + s.sum()
        add_at(out, (slice(None),) * dim + (index,), s)
        return out

    def backward(self, g):
        gs = None
        if self.needs_input_grad[1]:
            gs = IndexSelect.apply(g, index=self.index, dim=self.dim)
            if self.alpha != 1:
                gs = gs * self.alpha
            gs = gs.reshape(self.src[0])
        return g, gs


def _index_add_args(input, dim, index, source, name="index_add"):
    xp = xp_of(input._data)
    idx = _vector_index(index, name, xp)
    d = _wrap_dim(dim, input.ndim)
    xs, ss = input._data.shape, source._data.shape
    bad = len(ss) != len(xs) and not (len(xs) == 0 and len(ss) <= 1)
    if not bad:
        bad = any(s != x for k, (s, x) in enumerate(zip(ss, xs)) if k != d)
    if bad:
        raise RuntimeError(
            "source tensor shape must match self tensor shape, excluding the specified "
            f"dimension. Got self.shape = {list(xs)} source.shape = {list(ss)}"
        )
    if len(ss) and ss[d] != idx.size:
        raise RuntimeError(
            f"index_add_(): Number of indices ({idx.size}) should be equal to source.size(dim): "
            f"({ss[d]}), for dim: {d}"
        )
    size = xs[d] if xs else 1
    _check_bounds(idx, size, d)
    if source._data.dtype != input._data.dtype:
        source = source.to(input.dtype)
    return d, idx, source


def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    d, idx, source = _index_add_args(input, dim, index, source)
    return IndexAdd.apply(input, source, index=idx, dim=d, alpha=alpha)


# ---------------------------------------------------------------- masks
def _bool_mask(mask, name: str, message: str):
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name}(): argument 'mask' must be Tensor, not {type(mask).__name__}")
    if mask._data.dtype != np.bool_:
        raise RuntimeError(message.format(dtype=mask.dtype.name.replace("float32", "float")))
    return mask._data


class MaskedFill(Op):
    def forward(self, a, value, mask=None):
        self.mask, self.value_tensor = mask, hasattr(value, "shape")
        xp = xp_of(a)
        return xp.where(mask, xp.asarray(value, dtype=a.dtype), a)

    def backward(self, g):
        ga = gv = None
        if self.needs_input_grad[0]:
            ga = MaskedFill.apply(g, 0, mask=self.mask)
        if self.needs_input_grad[1]:
            gv = MaskedFill.apply(g, 0, mask=~self.mask).sum()
        return ga, gv

    def name(self) -> str:
        return "MaskedFillBackward1" if self.value_tensor else "MaskedFillBackward0"


def broadcast_shape_or_raise(a: tuple, b: tuple) -> tuple:
    """The broadcast shape of two shapes, or torch's error naming the first clash."""
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        pass
    for k in range(1, min(len(a), len(b)) + 1):
        x, y = a[-k], b[-k]
        if x != y and x != 1 and y != 1:
            raise RuntimeError(
                f"The size of tensor a ({x}) must match the size of tensor b ({y}) at "
                f"non-singleton dimension {max(len(a), len(b)) - k}"
            ) from None
    raise RuntimeError(f"shapes {list(a)} and {list(b)} cannot be broadcast")


def _masked_fill_args(input: Tensor, mask, value, inplace: bool):
    m = _bool_mask(
        mask,
        "masked_fill",
        "masked_fill_ only supports boolean masks, but got mask with dtype {dtype}",
    )
    m = _on(m, xp_of(input._data))
    shape = input._data.shape
    target = broadcast_shape_or_raise(shape, m.shape)
    if inplace and target != shape:
        raise RuntimeError(
            f"output with shape {list(shape)} doesn't match the broadcast shape {list(target)}"
        )
    if target != m.shape:
        m = xp_of(m).broadcast_to(m, target)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                f"{value.ndim} dimension(s)."
            )
        if not value._requires_grad:
            value = value.item()
        elif value._data.dtype != input._data.dtype:
            value = value.to(input.dtype)
    return m, value


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    m, value = _masked_fill_args(input, mask, value, inplace=False)
    if m.shape != input._data.shape:
        input = input.expand(m.shape)
    return MaskedFill.apply(input, value, mask=m)


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    m = _bool_mask(mask, "masked_select", "masked_select: expected BoolTensor for mask")
    xp = xp_of(input._data)
    m = _on(m, xp)
    shape = broadcast_shape_or_raise(input._data.shape, m.shape)
    x = input if input._data.shape == shape else input.expand(shape)
    if m.shape != shape:
        m = xp.broadcast_to(m, shape)
    return MaskedSelect.apply(x, idx=m, basic=False)


def take(input: Tensor, index: Tensor) -> Tensor:
    if not isinstance(index, Tensor) or index._data.dtype != np.int64:
        got = index.dtype.name if isinstance(index, Tensor) else type(index).__name__
        raise RuntimeError(f"take(): Expected a long tensor for index, but got {got}")
    xp = xp_of(input._data)
    idx = _on(index._data, xp)
    n = input._data.size
    if idx.size:
        bad = (idx < -n) | (idx >= n)
        if bool(bad.any()):
            raise IndexError(
                f"out of range: tried to access index {int(idx[bad].reshape(-1)[0])} on a tensor "
                f"of {n} elements."
            )
    flat = input.reshape(-1)
    return Take.apply(flat, idx=idx, basic=False)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    a = tensor._data
    if a.dtype != np.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    xp = xp_of(a)
    if num_classes == -1:
        if a.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(a.max()) + 1
    if a.size:
        if bool((a < 0).any()):
            raise RuntimeError("Class values must be non-negative.")
        if bool((a >= num_classes).any()):
            raise RuntimeError("Class values must be smaller than num_classes.")
    return Tensor._make((a[..., None] == xp.arange(num_classes)).astype(np.int64))


def nonzero(input: Tensor, *, as_tuple: bool = False):
    xp = xp_of(input._data)
    a = input._data
    if as_tuple:
        if a.ndim == 0:
            return (Tensor._make(xp.zeros(int(bool(a)), dtype=np.int64)),)
        return tuple(Tensor._make(i.astype(np.int64)) for i in xp.nonzero(a))
    if a.ndim == 0:
        return Tensor._make(xp.zeros((int(bool(a)), 0), dtype=np.int64))
    return Tensor._make(xp.argwhere(a).astype(np.int64))


def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)


# ---------------------------------------------------------------- in-place forms
def masked_fill_(input: Tensor, mask: Tensor, value) -> Tensor:
    from .inplace import run_inplace  # noqa: PLC0415

    m, value = _masked_fill_args(input, mask, value, inplace=True)

    def fast(dst):
        dst[m] = value._data if isinstance(value, Tensor) else value

    return run_inplace(
        input, lambda src: MaskedFill.apply(src, value, mask=m), (value,), fast=fast, keep_old=False
    )


def scatter_(
    input: Tensor, dim: int, index: Tensor, src=None, value=None, *, reduce=None
) -> Tensor:
    from .inplace import run_inplace  # noqa: PLC0415

    d, idx, src = _scatter_args(input, dim, index, src, value, "scatter_")
    if reduce is not None:
        res = _reduce_scatter(input.detach(), d, idx, src, reduce)
        return run_inplace(
            input, lambda s: res, (), fast=lambda dst: dst.__setitem__(..., res._data)
        )
    return run_inplace(
        input, lambda s: Scatter.apply(s, src, index=idx, dim=d), (src,), keep_old=False
    )


def scatter_add_(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    from .inplace import run_inplace  # noqa: PLC0415

    d, idx, src = _scatter_args(input, dim, index, src, None, "scatter_add_", scalar_ok=False)
    return run_inplace(
        input, lambda s: ScatterAdd.apply(s, src, index=idx, dim=d), (src,), keep_old=False
    )


def index_add_(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    from .inplace import run_inplace  # noqa: PLC0415

    d, idx, source = _index_add_args(input, dim, index, source, "index_add_")

    def fast(dst):
        s = source._data if alpha == 1 else source._data * alpha
        if dst.ndim == 0:
            dst[...] += s.sum()
        else:
            add_at(dst, (slice(None),) * d + (idx,), s)

    return run_inplace(
        input,
        lambda s: IndexAdd.apply(s, source, index=idx, dim=d, alpha=alpha),
        (source,),
        fast=fast,
        keep_old=False,
    )


TENSOR_METHODS = {
    "__getitem__": getitem,
    "__setitem__": setitem,
    "select": select,
    "gather": gather,
    "scatter": scatter,
    "scatter_": scatter_,
    "scatter_add": scatter_add,
    "scatter_add_": scatter_add_,
    "index_select": index_select,
    "index_add": index_add,
    "index_add_": index_add_,
    "masked_fill": masked_fill,
    "masked_fill_": masked_fill_,
    "masked_select": masked_select,
    "take": take,
    "nonzero": nonzero,
    "argwhere": argwhere,
}

__all__ = [
    "select",
    "gather",
    "scatter",
    "scatter_add",
    "index_select",
    "index_add",
    "masked_fill",
    "masked_select",
    "take",
    "one_hot",
    "nonzero",
    "argwhere",
]
