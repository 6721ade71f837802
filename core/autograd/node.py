"""Graph nodes: what `tensor.grad_fn` is.

Every differentiable op is a subclass of `Op` with `forward` (arrays in, array out) and
`backward` (gradient Tensors in, input-gradient Tensors out) side by side. `Op.apply` runs the
forward and, only when grad mode is on and some input requires grad, records the node: its
edges to the inputs' nodes and the tensors it saved. Because backward is written with Tensor
ops, the same formulas give higher-order gradients when the engine runs them with
`create_graph=True`.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np

from .._ieee import loud, quiet
from ..backend import device_mismatch, is_array
from . import grad_mode

_FREED_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)


# Activation-checkpoint regions (shardgrad.utils.checkpoint): while a thread has one open,
# every node it records is appended to its innermost region's list. `regions_open` counts
# the open regions of all threads, so the hot path tests one global int.
regions_open = 0
# anomaly detection (autograd.detect_anomaly): nodes remember their forward traceback
anomaly_enabled = False
anomaly_check_nan = True
_regions = threading.local()
_regions_lock = threading.Lock()


def open_region(nodes: list) -> None:
    global regions_open
    stack = getattr(_regions, "stack", None)
    if stack is None:
        stack = _regions.stack = []
    stack.append(nodes)
    with _regions_lock:
        regions_open += 1


def close_region() -> None:
    global regions_open
    _regions.stack.pop()
    with _regions_lock:
        regions_open -= 1


def in_region() -> bool:
    """Whether this thread is running inside a checkpointed region."""
    return bool(getattr(_regions, "stack", None))


# Saved-tensor hooks (autograd.graph.saved_tensors_hooks): while a thread has a (pack, unpack)
# pair open, each tensor a node saves is stored as pack(tensor) and given back as
# unpack(packed) when backward reads it. `saved_hooks_open` counts the open pairs of all
# threads, so the hot path tests one global int.
saved_hooks_open = 0
_saved_hooks = threading.local()


def push_saved_hooks(pack, unpack) -> None:
    global saved_hooks_open
    stack = getattr(_saved_hooks, "stack", None)
    if stack is None:
        stack = _saved_hooks.stack = []
    stack.append((pack, unpack))
    with _regions_lock:
        saved_hooks_open += 1


def pop_saved_hooks() -> None:
    global saved_hooks_open
    _saved_hooks.stack.pop()
    with _regions_lock:
        saved_hooks_open -= 1


def _current_saved_hooks():
    """The innermost open hooks of this thread, or None (also while one of them runs: what
    a hook computes is saved plainly, as in torch, instead of recursing)."""
    stack = getattr(_saved_hooks, "stack", None)
    if not stack or getattr(_saved_hooks, "running", False):
        return None
    return stack[-1]


def _run_hook(hook, value):
    _saved_hooks.running = True
    try:
        return hook(value)
    finally:
        _saved_hooks.running = False


class Packed:
    """A saved tensor as a pack hook returned it, with what is needed to check it was not
    modified in place and to give the unpacked value back its place in the graph (as
    torch's SavedVariable does, so second derivatives still reach the inputs)."""

    __slots__ = ("value", "unpack", "vbox", "version", "edge", "is_output")

    def __init__(self, tensor, hooks, is_output: bool = False) -> None:
        pack, self.unpack = hooks
        self.vbox, self.version = tensor._vbox, tensor._vbox[0]
        self.is_output = is_output
        # the node's own output points back at the node: rebuilt from it, not stored here
        self.edge = tensor._edge() if tensor._requires_grad and not is_output else None
        self.value = _run_hook(pack, tensor)

    def get(self, node):
        if self.vbox[0] != self.version:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: a tensor saved by {node.name()} is at version "
                f"{self.vbox[0]}; expected version {self.version} instead."
            )
        from ..tensor import Tensor  # noqa: PLC0415

        out = _run_hook(self.unpack, self.value)
        if not isinstance(out, Tensor):
            raise TypeError(
                f"Output of saved tensor unpack_hook expected to be a Tensor but got result of "
                f"type {type(out).__name__}"
            )
        if self.is_output:
            restored = Tensor._make(out._data, node, 0)
        elif self.edge is None:
            return out
        elif isinstance(self.edge[0], AccumulateGrad):  # a leaf that requires grad
            restored = Tensor._make(out._data)
            restored._requires_grad, restored._accumulator = True, self.edge[0]
        else:
            restored = Tensor._make(out._data, self.edge[0], self.edge[1])
        restored._vbox = self.vbox
        return restored


def pack_saved(saved: tuple, is_output: bool = False) -> tuple | None:
    """`saved` with every Tensor packed by the innermost open hooks (None if none are open
    in this thread)."""
    hooks = _current_saved_hooks()
    if hooks is None:
        return None
    from ..tensor import Tensor  # noqa: PLC0415

    return tuple(Packed(t, hooks, is_output) if isinstance(t, Tensor) else t for t in saved)


def unpack_saved(saved: tuple, node) -> tuple:
    return tuple(p.get(node) if isinstance(p, Packed) else p for p in saved)


def note_node(node) -> None:
    stack = getattr(_regions, "stack", None)
    if stack:
        stack[-1].append(node)


class Node:
    """Base of every graph node. `next_edges[i]` is `(node, output_nr)` for input i, or None."""

    next_edges: tuple = ()
    # set on the nodes of a checkpointed region whose saved values were dropped: the engine
    # calls it before the node's backward to recompute them
    _recompute = None
    # True when the saved tensors went through saved-tensor hooks (see Packed)
    _packed = False
    _out_packed = None
    n_outputs: int = 1
    _released: bool = False
    _had_saved: bool = False
    _pre_hooks: dict | None = None  # output_nr -> [hook(grad) -> grad | None]

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name()} object at {hex(id(self))}>"

    @property
    def next_functions(self) -> tuple:
        return tuple((e[0], e[1]) if e is not None else (None, 0) for e in self.next_edges)

    def release(self) -> None:
        """Drop saved tensors once the graph has been used (unless retain_graph)."""
        self._released = True

    def add_pre_hook(self, output_nr: int, hook) -> None:
        if self._pre_hooks is None:
            self._pre_hooks = {}
        self._pre_hooks.setdefault(output_nr, []).append(hook)

    def register_hook(self, hook):  # torch's Node.register_hook (post hook) is rarely used
        raise NotImplementedError("Node.register_hook is not supported; use Tensor.register_hook")


class AccumulateGrad(Node):
    """The node of a leaf that requires grad: adds incoming gradients into `leaf.grad`."""

    def __init__(self, leaf) -> None:
        self._leaf = weakref.ref(leaf)
        self.variable_hooks: list = []

    @property
    def variable(self):
        return self._leaf()

    def name(self) -> str:
        return "AccumulateGrad"

    def backward(self, grad):  # the engine handles leaves itself; see engine.py
        return ()


class Op(Node):
    """A built-in differentiable op.

    Subclasses set `save_inputs` (indices of inputs whose Tensors backward reads) and
    `save_output` (backward reads the result), write `forward(self, *arrays, **kwargs)`
    returning an array, and `backward(self, grad)` returning one gradient (or None) per input.
    Large extra arrays that backward needs go in `self.extras` so they are freed with the graph;
    small metadata (shapes, axes) go in plain attributes.
    """

    save_inputs: tuple[int, ...] = ()
    save_output: bool = False
    extras: Any = None
    needs_input_grad: tuple[bool, ...] = ()
    _saved: tuple = ()
    _versions: tuple = ()

    def name(self) -> str:
        return type(self).__name__ + "Backward0"

    # The hot path of every op in shardgrad: keep it short.
    @classmethod
    def apply(cls, *args, **kwargs):
        node = cls()
        arrays = []
        any_grad = False
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a._data)
                if a._requires_grad:
                    any_grad = True
            else:
                arrays.append(a)
        token = quiet()  # inf and nan without numpy's warnings, as in torch
        try:
            out = node.forward(*arrays, **kwargs)
        except (TypeError, ValueError):
            # numpy and cupy refuse each other's arrays; say so the way torch does
            mixed = device_mismatch(*arrays)
            if mixed is not None:
                raise mixed from None
            raise
        finally:
            loud(token)
        if type(out) is tuple:
            out = tuple(o if type(o) is np.ndarray else _as_array(o) for o in out)
        elif type(out) is not np.ndarray:
            out = _as_array(out)
        if not (any_grad and grad_mode.state.enabled):
            if type(out) is tuple:
                return tuple(Tensor._make(o) for o in out)
            return Tensor._make(out)
        node._record(args)
        if type(out) is tuple:
            node.n_outputs = len(out)
            return tuple(Tensor._make(o, node, i) for i, o in enumerate(out))
        result = Tensor._make(out, node, 0)
        if cls.save_output:
            node._out_data = out
            node._out_vbox = result._vbox
            node._out_version = result._vbox[0]
            node._had_saved = True
            if saved_hooks_open:
                packed = pack_saved((result,), is_output=True)
                if packed is not None:
                    node._out_packed, node._out_data, node._packed = packed[0], None, True
        return result

    def _record(self, args: tuple) -> None:
        edges = []
        needs = []
        for a in args:
            if isinstance(a, Tensor) and a._requires_grad:
                edges.append(a._edge())
                needs.append(True)
            else:
                edges.append(None)
                needs.append(False)
        self.next_edges = tuple(edges)
        self.needs_input_grad = tuple(needs)
        if self.save_inputs:
            saved = tuple(args[i] for i in self.save_inputs)
            self._saved = saved
            self._versions = tuple(t._vbox[0] if isinstance(t, Tensor) else 0 for t in saved)
            self._had_saved = True
            if saved_hooks_open:
                packed = pack_saved(saved)
                if packed is not None:
                    self._saved, self._packed = packed, True
        if self.extras is not None:
            self._had_saved = True
        if regions_open:
            note_node(self)
        if anomaly_enabled:
            from .anomaly_mode import forward_trace  # noqa: PLC0415 - debugging only

            self._forward_trace = forward_trace()

    @property
    def saved(self) -> tuple:
        """The saved inputs (and the output last, if `save_output`), checked for in-place edits."""
        if self._released and self._had_saved:
            raise RuntimeError(_FREED_MSG)
        if self._packed:
            return self._unpacked()
        for t, v in zip(self._saved, self._versions):
            if isinstance(t, Tensor) and t._vbox[0] != v:
                _raise_modified(t, v, self)
        if not self.save_output:
            return self._saved
        if self._out_vbox[0] != self._out_version:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: output 0 of {self.name()} is at version "
                f"{self._out_vbox[0]}; expected version {self._out_version} instead."
            )
        out = Tensor._make(self._out_data, self, 0)
        out._vbox = self._out_vbox
        return (*self._saved, out)

    def _unpacked(self) -> tuple:
        """`saved` for a node whose tensors went through saved-tensor hooks."""
        inputs = unpack_saved(self._saved, self)
        if not self.save_output:
            return inputs
        if self._out_packed is not None:
            out = self._out_packed.get(self)
        else:
            out = Tensor._make(self._out_data, self, 0)
            out._vbox = self._out_vbox
        return (*inputs, out)

    def release(self) -> None:
        self._released = True
        self._saved = ()
        self.extras = None
        self._out_data = None
        self._out_packed = None

    def forward(self, *arrays, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grads):  # pragma: no cover - abstract
        raise NotImplementedError


def _raise_modified(t, expected: int, node: Node) -> None:
    raise RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: [{t.dtype.name.capitalize()}Tensor {list(t.shape)}] is at version "
        f"{t._vbox[0]}; expected version {expected} instead. Hint: the tensor was saved by "
        f"{node.name()}; avoid changing it in place before backward."
    )


def _as_array(x):
    if isinstance(x, np.generic) or not is_array(x):
        return np.asarray(x)
    return x


# Bound at import time by tensor.py to avoid an import cycle.
Tensor: Any = None
