"""Tensor creation: `tensor`, `zeros`, `ones`, `full`, `arange`, `rand`, ... with torch's
signatures (`dtype=`, `device=`, `requires_grad=`)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import numpy as np

from . import _dtype, backend
from . import random as _random
from .tensor import Tensor

_default_device: backend.device | None = None  # None: the CPU, without a lookup


def set_default_device(device) -> None:
    """torch.set_default_device: where factory calls without `device=` allocate (from_numpy
    and the `*_like` functions are not affected, as in torch)."""
    global _default_device
    dev = None if device is None else backend.as_device(device)
    _default_device = None if dev is None or dev.type == "cpu" else backend.resolve(dev)


def get_default_device() -> backend.device:
    return backend.CPU if _default_device is None else _default_device


def _dev(device) -> backend.device:
    if device is None:
        return backend.CPU if _default_device is None else _default_device
    return backend.as_device(device)


def _to_array(data, dtype=None, device=None):
    """Turn anything array-like into an array on `device`, inferring dtype like torch does:
    Python floats become the default float dtype, ints int64, bools bool."""
    dev = backend.as_device(device) if device is not None else None
    if dev is None and not isinstance(data, Tensor):
        dev = _default_device
    if isinstance(data, Tensor):
        arr = data._data
        if dev is None:
            dev = data.device
    elif backend.is_array(data):
        arr = data
    else:
        if isinstance(data, (list, tuple)) and _contains_tensor(data):
            data = _nested_tensors_to_lists(data)
        arr = np.asarray(data)
        if dtype is None and not isinstance(data, np.generic):  # numpy scalars keep theirs
            if arr.dtype.kind == "f":
                arr = arr.astype(_dtype.get_default_dtype().np)
            elif arr.dtype.kind in "iu" and arr.dtype != np.uint8:
                arr = arr.astype(np.int64)
    if dtype is not None:
        npd = _dtype.to_np(dtype)
        if arr.dtype != npd:
            arr = arr.astype(npd)
    elif arr.dtype.kind not in "fiub":
        raise TypeError(f"can't convert an array of type {arr.dtype} to a Tensor")
    if dev is not None:
        arr = backend.to_device(arr, dev)
    return arr


def _contains_tensor(seq) -> bool:
    return builtins.any(
        isinstance(x, Tensor) or (isinstance(x, (list, tuple)) and _contains_tensor(x)) for x in seq
    )


def _nested_tensors_to_lists(seq):
    return [
        x.item()
        if isinstance(x, Tensor) and x.ndim == 0
        else (
            x.tolist()
            if isinstance(x, Tensor)
            else (_nested_tensors_to_lists(x) if isinstance(x, (list, tuple)) else x)
        )
        for x in seq
    ]


def _finish(arr, requires_grad: bool) -> Tensor:
    t = Tensor._make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Always copies, like torch.tensor."""
    arr = _to_array(data, dtype, device)
    if isinstance(data, Tensor) or backend.is_array(data):
        arr = arr.copy()
    return _finish(arr, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return Tensor._make(_to_array(data, dtype, device))


def from_numpy(array: np.ndarray) -> Tensor:
    """Shares memory with `array`, like torch.from_numpy."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    if array.dtype.kind not in "fiub":
        raise TypeError(f"can't convert np.ndarray of type {array.dtype}")
    return Tensor._make(array)


def _shape(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (Sequence, np.ndarray)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)):
            raise TypeError(f"size must be a sequence of ints, got {size!r}")
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(size)}")
    return tuple(int(s) for s in size)


def _make(device, fn_name: str, *args, **kwargs):
    """`xp.<fn_name>(*args, **kwargs)` allocated on `device` (a given GPU index included)."""
    dev = _dev(device)
    xp = backend.xp_for(dev)
    with backend.using(dev):
        return getattr(xp, fn_name)(*args, **kwargs)


def _fill(fill, size, dtype, device, requires_grad):
    dt = _dtype.as_dtype(dtype).np
    return _finish(_make(device, "full", _shape(size), fill, dtype=dt), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _fill(0, size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _fill(1, size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt = _dtype.as_dtype(dtype).np
    return _finish(_make(device, "empty", _shape(size), dtype=dt), requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = _infer_scalar_dtype(fill_value)
    return _fill(
        fill_value, (size,) if isinstance(size, int) else tuple(size), dtype, device, requires_grad
    )


def _infer_scalar_dtype(v):
    if isinstance(v, bool):
        return _dtype.bool_
    if isinstance(v, int):
        return _dtype.int64
    return _dtype.get_default_dtype()


def _like(t: Tensor, dtype, device):
    return (dtype if dtype is not None else t.dtype), (device if device is not None else t.device)


def zeros_like(t: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    d, dev = _like(t, dtype, device)
    return zeros(t.shape, dtype=d, device=dev, requires_grad=requires_grad)


def ones_like(t: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    d, dev = _like(t, dtype, device)
    return ones(t.shape, dtype=d, device=dev, requires_grad=requires_grad)


def empty_like(t: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    d, dev = _like(t, dtype, device)
    return empty(t.shape, dtype=d, device=dev, requires_grad=requires_grad)


def full_like(
    t: Tensor, fill_value, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    d, dev = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=d, device=dev, requires_grad=requires_grad)


def rand_like(t: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    d, dev = _like(t, dtype, device)
    return rand(t.shape, dtype=d, device=dev, requires_grad=requires_grad)


def randn_like(t: Tensor, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    d, dev = _like(t, dtype, device)
    return randn(t.shape, dtype=d, device=dev, requires_grad=requires_grad)


def arange(
    start, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = builtins.all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = _dtype.int64 if is_int else _dtype.get_default_dtype()
    if step == 0:
        raise RuntimeError("step must be nonzero")
    arr = _make(device, "arange", start, end, step, dtype=_dtype.to_np(dtype))
    return _finish(arr, requires_grad)


def linspace(
    start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    arr = _make(device, "linspace", start, end, steps, dtype=np.float64)
    arr = arr.astype(_dtype.as_dtype(dtype).np)
    return _finish(arr, requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None) -> Tensor:
    arr = _make(device, "logspace", start, end, steps, base=base)
    arr = arr.astype(_dtype.as_dtype(dtype).np)
    return Tensor._make(arr)


def eye(
    n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    arr = _make(device, "eye", n, m, dtype=_dtype.as_dtype(dtype).np)
    return _finish(arr, requires_grad)


def _random_array(kind: str, size, dtype, device, generator=None, **kw):
    dev = _dev(device)
    gen = _random.stream(dev, generator)
    dt = _dtype.as_dtype(dtype).np
    shape = _shape(size)
    if kind == "rand":
        arr = gen.random(shape, dtype=dt if dt in (np.float32, np.float64) else np.float64)
    elif kind == "randn":
        arr = gen.standard_normal(shape, dtype=dt if dt in (np.float32, np.float64) else np.float64)
    else:
        arr = gen.integers(kw["low"], kw["high"], shape)
    return arr.astype(dt, copy=False)


def rand(*size, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    return _finish(_random_array("rand", size, dtype, device, generator), requires_grad)


def randn(*size, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    return _finish(_random_array("randn", size, dtype, device, generator), requires_grad)


def randint(low, high=None, size=None, *, dtype=None, device=None, generator=None) -> Tensor:
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    dtype = dtype if dtype is not None else _dtype.int64
    return Tensor._make(
        _random_array("randint", (tuple(size),), dtype, device, generator, low=low, high=high)
    )


def randperm(n: int, *, dtype=None, device=None, generator=None) -> Tensor:
    dev = _dev(device)
    arr = _random.stream(dev, generator).permutation(n)
    arr = arr.astype(_dtype.as_dtype(dtype or _dtype.int64).np)
    return Tensor._make(arr)


def manual_seed(seed: int):
    return _random.manual_seed(seed)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(t: Tensor) -> int:
    return t.numel()


# ---------------------------------------------------------------- Tensor.new_*
# torch's `x.new_zeros(...)` and kin: a new tensor with x's dtype and device unless told
# otherwise, unrelated to x's graph.
def _dtype_device(self: Tensor, dtype, device) -> tuple:
    return (self.dtype if dtype is None else dtype), (self.device if device is None else device)


def new_zeros(self: Tensor, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt, dev = _dtype_device(self, dtype, device)
    return zeros(*size, dtype=dt, device=dev, requires_grad=requires_grad)


def new_ones(self: Tensor, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt, dev = _dtype_device(self, dtype, device)
    return ones(*size, dtype=dt, device=dev, requires_grad=requires_grad)


def new_empty(self: Tensor, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    dt, dev = _dtype_device(self, dtype, device)
    return empty(*size, dtype=dt, device=dev, requires_grad=requires_grad)


def new_full(
    self: Tensor, size, fill_value, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    dt, dev = _dtype_device(self, dtype, device)
    return full(size, fill_value, dtype=dt, device=dev, requires_grad=requires_grad)


def new_tensor(
    self: Tensor, data, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    dt, dev = _dtype_device(self, dtype, device)
    return tensor(data, dtype=dt, device=dev, requires_grad=requires_grad)


TENSOR_METHODS = {
    "new_zeros": new_zeros,
    "new_ones": new_ones,
    "new_empty": new_empty,
    "new_full": new_full,
    "new_tensor": new_tensor,
}
