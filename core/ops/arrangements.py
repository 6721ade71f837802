"""torch functions that rearrange, combine or scatter into tensors: kron, rot90, block_diag,
cartesian_prod, combinations, diagflat, vander, take_along_dim, tril/triu_indices, the split
spellings (hsplit, vsplit, dsplit), Tensor.unfold's sliding windows, index_fill, index_copy,
slice_scatter, select_scatter and sum_to_size.

Each is written with Tensor ops (indexing, joins, where), so gradients come from those; the
index arrays they build are host numpy, moved to the tensor's device once.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..backend import xp_of
from ..tensor import Tensor, _wrap_dim
from .elementwise import where
from .indexing import gather, index_add, index_select
from .join import cat, stack


def _on(like: Tensor, array: np.ndarray) -> Tensor:
    """A constant array on like's device."""
    return Tensor._make(xp_of(like._data).asarray(array))


def _host_index(index: Tensor) -> np.ndarray:
    data = index._data
    return np.asarray(data.get() if hasattr(data, "get") else data, dtype=np.int64)


# ================================================================ products and layouts
def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: every element of input times the whole of other."""
    nd = max(input.ndim, other.ndim)
    a = input.reshape(*([1] * (nd - input.ndim)), *input.shape)
    b = other.reshape(*([1] * (nd - other.ndim)), *other.shape)
    interleaved_a = a.reshape(*[s for d in a.shape for s in (d, 1)])
    interleaved_b = b.reshape(*[s for d in b.shape for s in (1, d)])
    out = interleaved_a * interleaved_b
    return out.reshape(*[x * y for x, y in zip(a.shape, b.shape)])


def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotate by 90 degrees k times in the plane of dims, from the first towards the second."""
    dims = list(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = (_wrap_dim(d, input.ndim) for d in dims)
    if d0 == d1:
        raise RuntimeError(
            f"expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}"
        )
    k %= 4
    if k == 1:
        return input.flip(d1).transpose(d0, d1)
    if k == 2:
        return input.flip(d0, d1)
    if k == 3:
        return input.flip(d0).transpose(d0, d1)
    return input.clone()


def block_diag(*tensors) -> Tensor:
    """The tensors (0-d, 1-d as a row, or 2-d) along the diagonal of one matrix."""
    mats = []
    for i, t in enumerate(tensors):
        if t.ndim > 2:
            raise RuntimeError(
                f"torch.block_diag: Input tensors must have 2 or fewer dimensions. Input {i} "
                f"has {t.ndim} dimensions"
            )
        mats.append(t.reshape(1, -1) if t.ndim < 2 else t)
    if not mats:
        from ..factory import empty  # noqa: PLC0415

        return empty(1, 0)
    from ._util import result_dtype  # noqa: PLC0415

    dtype = mats[0]._data.dtype
    for m in mats[1:]:
        dtype = result_dtype(dtype, m._data.dtype)
    cols = sum(m.shape[1] for m in mats)
    rows, left = [], 0
    xp = xp_of(mats[0]._data)
    for m in mats:
        if m._data.dtype != dtype:
            m = m.to(_dtype_of(dtype))
        width = m.shape[1]
        parts = []
        if left:
            parts.append(Tensor._make(xp.zeros((m.shape[0], left), dtype=dtype)))
        parts.append(m)
        if cols - left - width:
            parts.append(Tensor._make(xp.zeros((m.shape[0], cols - left - width), dtype=dtype)))
        rows.append(cat(parts, 1) if len(parts) > 1 else m)
        left += width
    return cat(rows, 0)


def _dtype_of(np_dtype):
    from .. import _dtype  # noqa: PLC0415

    return _dtype.from_numpy_dtype(np.dtype(np_dtype))


def cartesian_prod(*tensors) -> Tensor:
    """Every combination of one element from each 1-D tensor, as rows (a 1-D tensor for one
    input)."""
    for t in tensors:
        if t.ndim != 1:
            raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    if len(tensors) == 1:
        return tensors[0].clone()
    sizes = [t.shape[0] for t in tensors]
    columns = []
    for i, t in enumerate(tensors):
        view = [1] * len(tensors)
        view[i] = sizes[i]
        columns.append(t.reshape(*view).expand(*sizes).reshape(-1))
    return stack(columns, 1)


def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:
    """itertools.combinations (or with replacement) of a 1-D tensor's elements, as rows."""
    if input.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return Tensor._make(xp_of(input._data).empty((0,), dtype=input._data.dtype))
    make = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    picks = np.array(list(make(range(input.shape[0]), r)), dtype=np.int64).reshape(-1, r)
    if picks.shape[0] == 0:
        return Tensor._make(xp_of(input._data).empty((0, r), dtype=input._data.dtype))
    return index_select(input, 0, _on(input, picks.reshape(-1))).reshape(-1, r)


def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """The flattened input on the offset diagonal of a square matrix."""
    return input.reshape(-1).diag(offset)


def vander(x: Tensor, N: int | None = None, increasing: bool = False) -> Tensor:
    """Columns of powers of a 1-D x: x^(N-1) ... x^0 (or ascending)."""
    if x.ndim != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    n = x.shape[0] if N is None else int(N)
    if n < 0:
        raise RuntimeError("N must be non-negative.")
    if x._data.dtype.kind in "biu":
        x = x.long()
    if n == 0:
        return Tensor._make(xp_of(x._data).empty((x.shape[0], 0), dtype=x._data.dtype))
    powers = [x.pow(0) if k == 0 else x if k == 1 else x.pow(k) for k in range(n)]
    out = stack(powers, 1)
    return out if increasing else out.flip(1)


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """gather with indices broadcast against input (over the flattened input when dim is
    None)."""
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    dim = _wrap_dim(dim, input.ndim)
    shape_in = list(input.shape)
    shape_idx = list(indices.shape)
    shape_in[dim] = shape_idx[dim] = 1
    batch = np.broadcast_shapes(tuple(shape_in), tuple(shape_idx))
    src_shape = list(batch)
    src_shape[dim] = input.shape[dim]
    idx_shape = list(batch)
    idx_shape[dim] = indices.shape[dim]
    return gather(input.expand(*src_shape), dim, indices.expand(*idx_shape))


def _triangle_indices(row: int, col: int, offset: int, lower: bool, device) -> Tensor:
    from .. import factory  # noqa: PLC0415

    r, c = np.indices((row, col))
    keep = (c - r <= offset) if lower else (c - r >= offset)
    return factory.tensor(np.stack([r[keep], c[keep]]).astype(np.int64), device=device)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, n) row and column indices of a row x col matrix's lower triangle."""
    out = _triangle_indices(row, col, offset, True, device)
    return out if dtype is None else out.to(dtype)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    out = _triangle_indices(row, col, offset, False, device)
    return out if dtype is None else out.to(dtype)


# ================================================================ splits and windows
def _split_spelling(name: str, dim: int, least: int):
    def split(input: Tensor, indices_or_sections):
        if input.ndim < least:
            raise RuntimeError(
                f"torch.{name} requires a tensor with at least {least} dimension, but got a "
                f"tensor with {input.ndim} dimensions!"
            )
        axis = 0 if (name == "hsplit" and input.ndim == 1) else dim
        if isinstance(indices_or_sections, int):
            n = indices_or_sections
            if n <= 0 or input.shape[axis] % n:
                raise RuntimeError(
                    f"torch.{name} attempted to split along dimension {axis}, but the size of "
                    f"the dimension {input.shape[axis]} is not divisible by the split_size "
                    f"{n}!"
                )
            return input.split(input.shape[axis] // n, axis)
        return input.tensor_split(list(indices_or_sections), axis)

    split.__name__ = name
    return split


hsplit = _split_spelling("hsplit", 1, 1)
vsplit = _split_spelling("vsplit", 0, 2)
dsplit = _split_spelling("dsplit", 2, 3)


def unfold(self: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """Tensor.unfold: every window of `size` elements along dimension, `step` apart; the
    windows replace that dimension and their elements are a new last one."""
    if self.ndim == 0:
        return self.reshape(1)
    dim = _wrap_dim(dimension, self.ndim)
    length = self.shape[dim]
    if size > length:
        raise RuntimeError(
            f"maximum size for tensor at dimension {dim} is {length} but size is {size}"
        )
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    count = (length - size) // step + 1
    index = (np.arange(count)[:, None] * step + np.arange(size)[None, :]).reshape(-1)
    picked = index_select(self, dim, _on(self, index))
    shape = list(self.shape)
    shape[dim : dim + 1] = [count, size]
    return picked.reshape(*shape).movedim(dim + 1, -1)


# ================================================================ scattering into a copy
def _along(t: Tensor, dim: int, positions: np.ndarray):
    """A boolean mask (broadcastable to t) true at `positions` along dim."""
    mask = np.zeros(t.shape[dim], dtype=bool)
    mask[positions] = True
    shape = [1] * t.ndim
    shape[dim] = t.shape[dim]
    return xp_of(t._data).asarray(mask.reshape(shape))


def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    """A copy of input with the slices at index along dim set to value."""
    dim = _wrap_dim(dim, max(input.ndim, 1))
    positions = _host_index(index).reshape(-1)
    if input.ndim == 0:
        return where(xp_of(input._data).asarray(positions.size > 0), value, input)
    return where(_along(input, dim, positions), value, input)


def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """A copy of input with source's slices written at index along dim."""
    dim = _wrap_dim(dim, max(input.ndim, 1))
    positions = _host_index(index).reshape(-1)
    count = source.shape[dim] if source.ndim else 1
    if positions.size != count:
        raise IndexError(
            f"index_copy_(): Number of indices ({positions.size}) should be equal to "
            f"source.size(dim) ({count})"
        )
    kept = where(_along(input, dim, positions), 0, input)
    return index_add(kept, dim, index, source)


def slice_scatter(
    input: Tensor, src: Tensor, dim: int = 0, start=None, end=None, step: int = 1
) -> Tensor:
    """A copy of input with input[start:end:step] along dim replaced by src."""
    dim = _wrap_dim(dim, input.ndim)
    positions = np.arange(input.shape[dim])[slice(start, end, step)]
    return index_copy(input, dim, _on(input, positions), src)


def select_scatter(input: Tensor, src: Tensor, dim: int, index: int) -> Tensor:
    """A copy of input with input.select(dim, index) replaced by src."""
    dim = _wrap_dim(dim, input.ndim)
    position = index % input.shape[dim]
    return index_copy(input, dim, _on(input, np.array([position])), src.unsqueeze(dim))


def index_put(input: Tensor, indices, values: Tensor, accumulate: bool = False) -> Tensor:
    """A copy of input with input[indices] set to values (added, duplicates included, with
    accumulate)."""
    from .indexing import IndexAddInto, prepare_index  # noqa: PLC0415 - indexing imports us

    indices = tuple(indices)
    if accumulate:
        idx, basic = prepare_index(indices, xp_of(input._data))
        values = values.to(input.dtype).expand(*input[indices].shape)
        return input + IndexAddInto.apply(values, shape=tuple(input.shape), idx=idx, basic=basic)
    out = input.clone()
    out[indices] = values
    return out


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """A copy of input with the positions where mask is true filled, in order, from
    source's leading elements."""
    mask_b = mask.expand(*input.shape) if tuple(mask.shape) != tuple(input.shape) else mask
    count = int(mask_b._data.sum())
    if source.numel() < count:
        raise RuntimeError(
            "masked_scatter: expected source to have at least as many elements as ones in mask"
        )
    taken = source.reshape(-1)[:count]
    return index_put(input, (mask_b,), taken)


def diagonal_scatter(input: Tensor, src: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1):
    """A copy of input with its offset diagonal (of dims dim1, dim2) replaced by src."""
    d1, d2 = _wrap_dim(dim1, input.ndim), _wrap_dim(dim2, input.ndim)
    rows = np.arange(input.shape[d1])
    cols = rows + offset
    keep = (cols >= 0) & (cols < input.shape[d2])
    if offset < 0:
        cols = np.arange(input.shape[d2])
        rows = cols - offset
        keep = (rows >= 0) & (rows < input.shape[d1])
    rows, cols = rows[keep], cols[keep]
    moved = input.movedim((d1, d2), (0, 1))
    updated = index_put(moved, (_on(input, rows), _on(input, cols)), src.movedim(-1, 0))
    return updated.movedim((0, 1), (d1, d2))


def put(input: Tensor, index: Tensor, source: Tensor, accumulate: bool = False) -> Tensor:
    """A copy of input with the flat positions index set to (or, with accumulate, increased
    by) source."""
    flat = input.reshape(-1)
    positions = index.reshape(-1) % max(flat.shape[0], 1)
    return index_put(flat, (positions,), source.reshape(-1), accumulate).reshape(*input.shape)


def sum_to_size(self: Tensor, *size) -> Tensor:
    """Sum over the dimensions that size broadcasts, so the result has that size."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    target = tuple(int(s) for s in size)
    try:
        if np.broadcast_shapes(target, tuple(self.shape)) != tuple(self.shape):
            raise ValueError
    except ValueError:
        raise RuntimeError(
            f"size {{{list(target)}}} is not expandable to size {{{list(self.shape)}}}."
        ) from None
    lead = self.ndim - len(target)
    dims = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(target) if s == 1 and self.shape[lead + i] != 1
    )
    out = self.sum(dims, keepdim=True) if dims else self
    return out.reshape(*target)


TENSOR_METHODS = {
    "kron": kron,
    "rot90": rot90,
    "diagflat": diagflat,
    "take_along_dim": take_along_dim,
    "hsplit": hsplit,
    "vsplit": vsplit,
    "dsplit": dsplit,
    "unfold": unfold,
    "index_fill": index_fill,
    "index_copy": index_copy,
    "slice_scatter": slice_scatter,
    "select_scatter": select_scatter,
    "sum_to_size": sum_to_size,
    "index_put": index_put,
    "masked_scatter": masked_scatter,
    "diagonal_scatter": diagonal_scatter,
    "put": put,
}

__all__ = [
    "diagonal_scatter",
    "index_put",
    "masked_scatter",
    "block_diag",
    "cartesian_prod",
    "combinations",
    "diagflat",
    "dsplit",
    "hsplit",
    "index_copy",
    "index_fill",
    "kron",
    "rot90",
    "select_scatter",
    "slice_scatter",
    "take_along_dim",
    "tril_indices",
    "triu_indices",
    "vander",
    "vsplit",
]
