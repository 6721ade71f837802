"""The Tensor: an array plus the autograd bookkeeping around it.

A Tensor holds `_data` (a numpy or cupy array), `grad`, `grad_fn` (the node that made it, or
None for leaves) and `_requires_grad`. Views share a version counter (`_vbox`, a one-item
list) with their base, so an in-place change through any of them is seen by every node that
saved one of them. The methods users call (`x.exp()`, `x + y`, `x.sum(1)`) are installed from
the op modules' `TENSOR_METHODS` tables at import time, so each op is written in one place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _dtype, backend
from .autograd import engine, grad_mode
from .autograd import node as node_mod
from .autograd.node import AccumulateGrad, Node


class _Handle:
    """What `register_hook` returns: `.remove()` takes the hook out again."""

    def __init__(self, hooks: list, hook) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class Tensor:
    __slots__ = (
        "_data",
        "grad",
        "grad_fn",
        "_output_nr",
        "_requires_grad",
        "_vbox",
        "_accumulator",
        "_retains_grad",
        "_view",
        "_post_accumulate_hooks",
        "__weakref__",
    )
    __array_priority__ = 1000  # numpy defers `ndarray * Tensor` to Tensor.__rmul__

    def __init__(self, data: Any = None, *, requires_grad: bool = False, dtype=None, device=None):
        from .factory import _to_array  # noqa: PLC0415

        arr = _to_array([] if data is None else data, dtype, device)
        self._init(arr, None, 0)
        if requires_grad:
            self.requires_grad_(True)

    def _init(self, data, grad_fn: Node | None, output_nr: int) -> None:
        self._data = data
        self.grad = None
        self.grad_fn = grad_fn
        self._output_nr = output_nr
        self._requires_grad = grad_fn is not None
        self._vbox = [0]
        self._accumulator = None
        self._retains_grad = False
        self._view = None

    @classmethod
    def _make(cls, data, grad_fn: Node | None = None, output_nr: int = 0) -> Tensor:
        """Wrap an array without copying (the constructor used by every op)."""
        t = object.__new__(cls)
        t._data = data
        t.grad = None
        t.grad_fn = grad_fn
        t._output_nr = output_nr
        t._requires_grad = grad_fn is not None
        t._vbox = [0]
        t._accumulator = None
        t._retains_grad = False
        t._view = None
        return t

    # ------------------------------------------------------------------ graph plumbing
    def _edge(self) -> tuple[Node, int]:
        view = self._view
        if view is not None and view[4] != self._vbox[0]:
            # the base changed in place since this view's history was recorded
            from .ops._view import refresh_view  # noqa: PLC0415

            refresh_view(self)
        if self.grad_fn is not None:
            return (self.grad_fn, self._output_nr)
        acc = self._accumulator
        if acc is None:
            acc = self._accumulator = AccumulateGrad(self)
        return (acc, 0)

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self.grad_fn is not None:
            if not requires_grad:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to "
                    "use a computed variable in a subgraph that doesn't require differentiation "
                    "use var_no_grad = var.detach()."
                )
            return self
        if requires_grad and not self.dtype.is_floating_point:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def data(self) -> Tensor:
        """The same memory with no history and its own version counter: edits through
        `.data` are invisible to autograd (the old idiom), unlike edits through `detach()`."""
        return Tensor._make(self._data)

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._data if isinstance(value, Tensor) else value

    def _is_view(self) -> bool:
        return self._view is not None

    @property
    def _base(self) -> Tensor | None:
        """The tensor this one is a view of (the first non-view one), as in torch."""
        view = self._view
        if view is None:
            return None
        base = view[0]
        while base._view is not None:
            base = base._view[0]
        return base

    @property
    def _version(self) -> int:
        return self._vbox[0]

    def _bump_version(self) -> None:
        self._vbox[0] += 1

    def detach(self) -> Tensor:
        t = Tensor._make(self._data)
        t._vbox = self._vbox
        return t

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._requires_grad = False
        return self

    def backward(
        self,
        gradient=None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs=None,
    ) -> None:
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if not self._requires_grad:
                raise RuntimeError(
                    "element 0 of tensors does not require grad and does not have a grad_fn"
                )
            gradient = Tensor._make(backend.xp_of(self._data).ones_like(self._data))
        elif not isinstance(gradient, Tensor):
            gradient = Tensor(gradient, dtype=self.dtype, device=self.device)
        elif gradient.shape != self.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[0] has a shape of {gradient.shape} and "
                f"output[0] has a shape of {self.shape}."
            )
        if retain_graph is None:
            retain_graph = create_graph
        if inputs is not None:
            inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
            grads = engine.run_backward(
                [self],
                [gradient],
                True if retain_graph else False,
                create_graph,
                inputs,
                allow_unused=True,
            )
            for t, g in zip(inputs, grads):
                if g is not None:
                    t.grad = g if t.grad is None else t.grad + g
            return
        engine.run_backward([self], [gradient], retain_graph, create_graph)

    def register_hook(self, hook) -> _Handle:
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        node, nr = self._edge()
        if self.grad_fn is None:
            hooks = node.variable_hooks
            hooks.append(hook)
            return _Handle(hooks, hook)
        if node._pre_hooks is None:
            node._pre_hooks = {}
        hooks = node._pre_hooks.setdefault(nr, [])
        # retain_grad's hook stays last, so `.grad` holds what the other hooks returned
        pos = len(hooks)
        while pos and getattr(hooks[pos - 1], "_retains_grad", False):
            pos -= 1
        hooks.insert(pos, hook)
        return _Handle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook) -> _Handle:
        if self.grad_fn is not None:
            raise RuntimeError(
                "post accumulate grad hooks cannot be registered on non-leaf tensors"
            )
        hooks = getattr(self, "_post_accumulate_hooks", None)
        if hooks is None:
            hooks = self._post_accumulate_hooks = []
        hooks.append(hook)
        return _Handle(hooks, hook)

    def retain_grad(self) -> None:
        if self.grad_fn is None:
            if not self._requires_grad:
                raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
            return
        if self._retains_grad:
            return
        self._retains_grad = True
        import weakref  # noqa: PLC0415

        ref = weakref.ref(self)

        def keep(grad):
            t = ref()
            if t is not None:
                g = grad.detach()
                t.grad = Tensor._make(g._data.copy()) if t.grad is None else t.grad + g
            return None

        keep._retains_grad = True
        node, nr = self._edge()
        node.add_pre_hook(nr, keep)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    @property
    def dtype(self) -> _dtype.dtype:
        return _dtype.from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> backend.device:
        return backend.device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def is_cpu(self) -> bool:
        return self.device.type == "cpu"

    def get_device(self) -> int:
        """The CUDA device index, or -1 on the CPU (torch's answer)."""
        return self.device.index or 0 if self.is_cuda else -1

    @property
    def nbytes(self) -> int:
        return int(self._data.nbytes)

    @property
    def itemsize(self) -> int:
        return self._data.itemsize

    def is_complex(self) -> bool:
        return False  # shardgrad has no complex dtypes

    def is_signed(self) -> bool:
        return self._data.dtype.kind in "fi"

    def is_inference(self) -> bool:
        return False

    def is_same_size(self, other: Tensor) -> bool:
        return tuple(self._data.shape) == tuple(other._data.shape)

    def is_nonzero(self) -> bool:
        """The truth of a one-element tensor, as bool(t)."""
        if self._data.size == 0:
            raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
        if self._data.size > 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self._data.reshape(()).item())

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    def numel(self) -> int:
        return int(self._data.size)

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def stride(self, dim: int | None = None):
        strides = tuple(s // self._data.itemsize for s in self._data.strides)
        return strides if dim is None else strides[_wrap_dim(dim, self._data.ndim)]

    def data_ptr(self) -> int:
        if backend.xp_of(self._data) is np:
            return self._data.__array_interface__["data"][0]
        return self._data.data.ptr

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __hash__(self) -> int:
        return id(self)

    # ------------------------------------------------------------------ conversion
    def item(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        return self._data.reshape(()).item()

    def tolist(self):
        return (self._data if self.device.type == "cpu" else self._data.get()).tolist()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        if self._requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
            )
        if self.device.type != "cpu":
            if not force:
                raise TypeError(
                    f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() "
                    "to copy the tensor to host memory first."
                )
            return self._data.get()
        return self._data

    def __array__(self, dtype=None, copy=None):
        arr = self.detach().cpu()._data
        return arr if dtype is None else arr.astype(dtype)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __repr__(self) -> str:
        from . import _dtype, _tensor_str  # noqa: PLC0415 - printing is not a hot path

        arr = self._data if self.device.type == "cpu" else self._data.get()
        prefix, suffixes = "tensor(", []
        if self.device.type != "cpu":
            suffixes.append(f"device='{self.device}'")
        implicit = (_dtype.get_default_dtype().np,)
        if arr.size == 0:
            if arr.ndim != 1:
                suffixes.append(f"size={tuple(arr.shape)}")
            body = "[]"
        else:
            if _tensor_str.hides_values():
                suffixes.append(f"size={tuple(arr.shape)}")
            implicit += (np.dtype(np.int64), np.dtype(np.bool_))
            body = _tensor_str.tensor_body(arr, len(prefix))
        if arr.dtype not in implicit:
            suffixes.append(f"dtype={self.dtype!r}")
        if self.grad_fn is not None:
            suffixes.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self._requires_grad:
            suffixes.append("requires_grad=True")
        return _tensor_str.with_suffixes(prefix + body, suffixes, len(prefix))

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0:
            return format(self.item(), spec)
        return repr(self)

    def __reduce_ex__(self, protocol):
        # Pickling is for local use (multiprocessing); shardgrad never unpickles from the network.
        return (_rebuild, (self.detach().cpu()._data, self._requires_grad, str(self.device)))

    # Device / dtype moves are ops (differentiable), defined in ops/convert.py.


def _rebuild(arr, requires_grad, device):
    t = Tensor._make(arr)
    if device != "cpu":
        t = t.to(device)
    t._requires_grad = requires_grad
    return t


class Size(tuple):
    """torch.Size: a tuple that prints as `shardgrad.Size([2, 3])`."""

    def __repr__(self) -> str:
        return f"shardgrad.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


def _wrap_dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    return dim % n


def install_methods(table: dict) -> None:
    """Attach an op module's `TENSOR_METHODS` to Tensor."""
    for name, fn in table.items():
        setattr(Tensor, name, fn)


node_mod.Tensor = Tensor
engine.Tensor = Tensor
_ = grad_mode
