"""Helpers shared by the op families: type promotion, device checks, unbroadcasting."""

from __future__ import annotations

import numpy as np

from .. import _dtype
from ..tensor import Tensor

_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


def result_dtype(a: np.dtype, b: np.dtype) -> np.dtype:
    """torch's promotion for two tensors: a float beats an int whatever the widths
    (int64 + float32 -> float32, where numpy would say float64)."""
    ka, kb = _KIND_RANK[a.kind], _KIND_RANK[b.kind]
    if ka != kb:
        return a if ka > kb else b
    return np.promote_types(a, b)


def check_same_device(a, b) -> None:
    """torch's error where two arrays live on different devices."""
    from .. import backend  # noqa: PLC0415

    if not backend.same_device(a, b):
        raise backend.device_mismatch(a, b)


def prepare_binary(a, b):
    """Bring the operands of a binary op to one dtype and device, torch-style.

    Python scalars stay scalars (numpy treats them as weak, like torch), except that a float
    scalar with an integer tensor promotes the tensor to the default float dtype.
    """
    a_t, b_t = isinstance(a, Tensor), isinstance(b, Tensor)
    if a_t and b_t:
        da, db = a._data.dtype, b._data.dtype
        if type(a._data) is not type(b._data):
            if a._data.ndim == 0 and a.device.type == "cpu":
                a = a.item()
                return prepare_binary(a, b)
            if b._data.ndim == 0 and b.device.type == "cpu":
                return prepare_binary(a, b.item())
            check_same_device(a._data, b._data)
        if da != db:
            target = result_dtype(da, db)
            # torch: a 0-dim tensor does not widen a dimensioned one of the same kind
            if (
                a._data.ndim == 0
                and b._data.ndim > 0
                and _KIND_RANK[da.kind] <= _KIND_RANK[db.kind]
            ):
                target = db
            elif (
                b._data.ndim == 0
                and a._data.ndim > 0
                and _KIND_RANK[db.kind] <= _KIND_RANK[da.kind]
            ):
                target = da
            if da != target:
                a = a.to(_dtype.from_numpy_dtype(target))
            if db != target:
                b = b.to(_dtype.from_numpy_dtype(target))
        return a, b
    t, s = (a, b) if a_t else (b, a)
    if not isinstance(t, Tensor):
        raise TypeError(f"unsupported operand types: {type(a).__name__} and {type(b).__name__}")
    kind = t._data.dtype.kind
    if isinstance(s, bool):
        pass
    elif isinstance(s, float) and kind != "f":
        t = t.to(_dtype.get_default_dtype())
    elif isinstance(s, int) and kind == "b":
        t = t.to(_dtype.int64)
    elif isinstance(s, np.ndarray | np.generic):
        s = Tensor._make(np.asarray(s))
        return prepare_binary(t, s) if a_t else prepare_binary(s, t)
    elif not isinstance(s, (int, float)):
        from .. import backend  # noqa: PLC0415

        if backend.is_array(s):
            s = Tensor._make(s)
            return prepare_binary(t, s) if a_t else prepare_binary(s, t)
        raise TypeError(f"unsupported operand type {type(s).__name__} for a Tensor op")
    return (t, s) if a_t else (s, t)


def reduce_grad(g: Tensor, shape: tuple, dtype) -> Tensor:
    """Undo broadcasting: sum `g` down to `shape`, and cast it to the input's dtype."""
    if g._data.shape != shape:
        g = sum_to(g, shape)
    if dtype is not None and g._data.dtype != dtype:
        g = g.to(_dtype.from_numpy_dtype(dtype))
    return g


def meta(x):
    """(shape, dtype) of an op input, or None for a Python scalar."""
    return (x.shape, x.dtype) if hasattr(x, "shape") else None


def sum_to(g: Tensor, shape: tuple) -> Tensor:
    from .shape import SumTo  # noqa: PLC0415

    if g._data.shape == tuple(shape):
        return g
    return SumTo.apply(g, shape=tuple(shape))


def normalize_dims(dim, ndim: int) -> tuple[int, ...] | None:
    """torch's `dim=` forms (None, int, negative, tuple) as a sorted tuple of axes."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    n = max(ndim, 1)
    out = []
    for d in dims:
        if not -n <= d < n:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})"
            )
        out.append(int(d) % n)
    if len(set(out)) != len(out):
        raise RuntimeError(f"dim {out} appears multiple times in the list of dims")
    return tuple(sorted(out)) if ndim else ()
