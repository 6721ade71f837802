"""The rest of torch's Tensor API that concerns a tensor's shape and storage rather than its
values: the in-place view ops (unsqueeze_, squeeze_, t_, transpose_, swapaxes_), resize_,
storage_offset, as_strided, the legacy `new`, `apply_` and `map_`, and the flags that are
constant for shardgrad's dense, real, unquantized, unpinned tensors.

An in-place view op changes the tensor's shape in place and bumps its version, so a node
that saved the tensor before refuses to run on the changed one, as in torch. On a tensor
that is itself a view of another and records a graph, use the out-of-place form: shardgrad
does not rebase such a view's shape."""

from __future__ import annotations

import numpy as np

from ..autograd import grad_mode
from ..backend import xp_of
from ..tensor import Tensor
from .inplace import LEAF_MSG


class _Layout:
    """strided: the only layout shardgrad's tensors have (torch.strided)."""

    def __repr__(self) -> str:
        return "shardgrad.strided"


strided = _Layout()


def _metadata_inplace(name: str):
    def method(self: Tensor, *args, **kwargs) -> Tensor:
        from . import shape  # noqa: PLC0415

        recording = grad_mode.state.enabled and self._requires_grad
        if recording and self.grad_fn is None:
            raise RuntimeError(LEAF_MSG)
        if recording and self._view is not None:
            raise RuntimeError(
                f"{name}_() on a view that records a graph is not supported; use "
                f"x = x.{name}(...) instead"
            )
        out = getattr(shape, name)(self, *args, **kwargs)
        self._data = out._data
        if recording:
            self.grad_fn, self._output_nr = out.grad_fn, out._output_nr
        self._bump_version()
        return self

    method.__name__ = name + "_"
    return method


def resize_(self: Tensor, *sizes) -> Tensor:
    """New shape in place, keeping the leading elements in order (the rest uninitialised, as
    torch leaves them; here zeros)."""
    if grad_mode.state.enabled and self._requires_grad:
        raise RuntimeError("cannot resize variables that require grad")
    shape = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    xp = xp_of(self._data)
    flat = xp.zeros(int(np.prod(shape, dtype=np.int64)), dtype=self._data.dtype)
    old = self._data.reshape(-1)
    n = min(old.size, flat.size)
    flat[:n] = old[:n]
    self._data = flat.reshape(shape)
    self._view = None
    self._bump_version()
    return self


def resize_as_(self: Tensor, other: Tensor) -> Tensor:
    return resize_(self, tuple(other.shape))


def storage_offset(self: Tensor) -> int:
    """The element offset of this tensor's first element in its base array."""
    data = self._data
    base = data
    while getattr(base, "base", None) is not None:
        base = base.base
    if base is data or not hasattr(data, "__array_interface__"):
        return 0
    start = data.__array_interface__["data"][0]
    origin = base.__array_interface__["data"][0]
    return (start - origin) // data.itemsize


def new(self: Tensor, *args, **kwargs) -> Tensor:
    """The legacy constructor: `x.new(2, 3)` an uninitialised tensor of x's dtype and device,
    `x.new(data)` one from data, `x.new()` an empty one."""
    if len(args) == 1 and not isinstance(args[0], int):
        return self.new_tensor(args[0], **kwargs)
    return self.new_empty(args if args else (0,), **kwargs)


def apply_(self: Tensor, fn) -> Tensor:
    """fn applied to every element, in place (CPU tensors; a Python loop, as in torch)."""
    if self.device.type != "cpu":
        raise TypeError("apply_ is only implemented on CPU tensors")
    flat = self._data.reshape(-1)
    for i in range(flat.size):
        flat[i] = fn(flat[i].item())
    return self


def map_(self: Tensor, other: Tensor, fn) -> Tensor:
    """fn(self_element, other_element) for every element (other broadcast), in place."""
    if self.device.type != "cpu":
        raise TypeError("map_ is only implemented on CPU tensors")
    others = np.broadcast_to(other._data, self._data.shape).reshape(-1)
    flat = self._data.reshape(-1)
    for i in range(flat.size):
        flat[i] = fn(flat[i].item(), others[i].item())
    return self


def nonzero_static(self: Tensor, *, size: int, fill_value: int = -1) -> Tensor:
    """nonzero()'s indices padded with fill_value (or cut) to exactly `size` rows."""
    found = self.nonzero()
    rows = found.shape[0]
    if rows >= size:
        return found[:size]
    pad = found.new_full((size - rows, found.shape[1]), fill_value)
    from .join import cat  # noqa: PLC0415

    return cat([found, pad])


def as_strided(input: Tensor, size, stride, storage_offset: int | None = None) -> Tensor:
    """A view of `input`'s elements at offset + sum(i_k * stride_k), as torch.as_strided.

    The elements are read in `input`'s contiguous order, which is torch's storage for a
    contiguous tensor (the case as_strided is used for: sliding windows, overlapping
    patches). It is computed as a gather, so it is differentiable, and positions read twice
    sum their gradients, as torch's backward does."""
    size, stride = tuple(int(n) for n in size), tuple(int(n) for n in stride)
    if len(size) != len(stride):
        raise RuntimeError(f"mismatch in length of strides and shape: {len(stride)} != {len(size)}")
    # offsets count from the storage's start; `input` may itself start further in
    start = input.storage_offset()
    offset = 0 if storage_offset is None else int(storage_offset) - start
    if offset < 0:
        raise RuntimeError(
            f"as_strided: storage offset {storage_offset} lies before this tensor's first "
            f"element (offset {start}); call it on the base tensor"
        )
    xp = xp_of(input._data)
    index = np.full(size, offset, dtype=np.int64)
    for dim, (n, st) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[dim] = n
        index = index + (np.arange(n, dtype=np.int64) * st).reshape(shape)
    flat = input.reshape(-1)
    needed = int(index.max()) + 1 if index.size else 0
    if needed > flat.shape[0] or (index.size and int(index.min()) < 0):
        raise RuntimeError(
            f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset "
            f"{offset + start} "
            f"require a storage of {needed} elements, but it holds {flat.shape[0]}"
        )
    from .indexing import take  # noqa: PLC0415

    return take(flat, Tensor._make(xp.asarray(index)))


def orgqr(self: Tensor, tau: Tensor) -> Tensor:
    """The Q of geqrf's Householder form (linalg.householder_product)."""
    from .matrix_functions import householder_product  # noqa: PLC0415

    return householder_product(self, tau)


def _imag(self: Tensor):
    raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")


def _false(self: Tensor) -> bool:
    return False


TENSOR_METHODS = {
    "unsqueeze_": _metadata_inplace("unsqueeze"),
    "squeeze_": _metadata_inplace("squeeze"),
    "t_": _metadata_inplace("t"),
    "transpose_": _metadata_inplace("transpose"),
    "swapaxes_": _metadata_inplace("swapaxes"),
    "swapdims_": _metadata_inplace("swapdims"),
    "resize_": resize_,
    "resize_as_": resize_as_,
    "storage_offset": storage_offset,
    "new": new,
    "new_empty_strided": lambda self, size, stride, **kw: self.new_empty(tuple(size), **kw),
    "apply_": apply_,
    "map_": map_,
    "nonzero_static": nonzero_static,
    "as_strided": as_strided,
    "orgqr": orgqr,
    "to_dense": lambda self, dtype=None, **kw: self if dtype is None else self.to(dtype),
    "dim_order": lambda self: tuple(
        int(i) for i in np.argsort([-s for s in self.stride()], kind="stable")
    ),
    "output_nr": property(lambda self: self._output_nr),
    "real": property(lambda self: self),
    "imag": property(_imag),
    "layout": property(lambda self: strided),
    "pin_memory": lambda self, device=None: self,
    "share_memory_": lambda self: self,
    "is_pinned": _false,
    "is_shared": _false,
    "is_conj": _false,
    "is_neg": _false,
    "is_sparse": property(_false),
    "is_sparse_csr": property(_false),
    "is_quantized": property(_false),
    "is_meta": property(_false),
    "is_nested": property(_false),
    "is_mkldnn": property(_false),
}

__all__ = ["as_strided", "strided"]
