"""`autograd.Function`: users' own differentiable ops, with torch's ctx API.

`MyFn.apply(*args)` runs `forward(ctx, *args)` with grad mode off, then records one graph node
(the ctx itself) whose backward calls `MyFn.backward(ctx, *grads)`.
"""

from __future__ import annotations

from typing import Any

from . import grad_mode
from . import node as _node
from .node import _FREED_MSG, Node, _raise_modified


class FunctionCtx(Node):
    """The `ctx` passed to forward/backward, and the node recorded in the graph."""

    def __init__(self, fn_cls) -> None:
        self._fn_cls = fn_cls
        self._saved: tuple = ()
        self._versions: tuple = ()
        self.needs_input_grad: tuple = ()
        self.materialize_grads = True
        self._non_differentiable: set[int] = set()
        self._dirty: tuple = ()

    def name(self) -> str:
        return self._fn_cls.__name__ + "Backward"

    def save_for_backward(self, *tensors) -> None:
        from ..tensor import Tensor  # noqa: PLC0415

        self._saved = tensors
        self._versions = tuple(t._vbox[0] if isinstance(t, Tensor) else 0 for t in tensors)
        self._had_saved = True
        if _node.saved_hooks_open:
            packed = _node.pack_saved(tensors)
            if packed is not None:
                self._saved, self._packed = packed, True

    @property
    def saved_tensors(self) -> tuple:
        from ..tensor import Tensor  # noqa: PLC0415

        if self._released and self._had_saved:
            raise RuntimeError(_FREED_MSG)
        if self._packed:
            return _node.unpack_saved(self._saved, self)
        for t, v in zip(self._saved, self._versions):
            if isinstance(t, Tensor) and t._vbox[0] != v:
                _raise_modified(t, v, self)
        return self._saved

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors) -> None:
        self._dirty = tensors

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = value

    def release(self) -> None:
        self._released = True
        self._saved = ()

    def backward(self, *grads):
        if self.materialize_grads:
            grads = tuple(self._zeros_for(i) if g is None else g for i, g in enumerate(grads))
        out = self._fn_cls.backward(self, *grads)
        if not isinstance(out, tuple):
            out = (out,)
        n_in = len(self.next_edges)
        if len(out) < n_in:
            raise RuntimeError(
                f"function {self.name()} returned an incorrect number of gradients "
                f"(expected {n_in}, got {len(out)})"
            )
        return tuple(out[:n_in])

    def _zeros_for(self, i: int):
        from .. import factory  # noqa: PLC0415

        shape, dtype, dev = self._out_meta[i]
        return factory.zeros(shape, dtype=dtype, device=dev)


class _FunctionMeta(type):
    pass


class Function(metaclass=_FunctionMeta):
    """Subclass with static `forward(ctx, ...)` and `backward(ctx, *grad_outputs)`."""

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "You must implement the forward function for custom autograd.Function."
        )

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Any) -> Any:
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom autograd.Function to use it with backward mode AD."
        )

    @classmethod
    def apply(cls, *args, **kwargs):
        from ..tensor import Tensor  # noqa: PLC0415

        ctx = FunctionCtx(cls)
        tensor_args = [a for a in args if isinstance(a, Tensor)]
        needs = grad_mode.state.enabled and any(t._requires_grad for t in tensor_args)
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
        with grad_mode.no_grad():
            outputs = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        if not needs:
            return outputs
        ctx.next_edges = tuple(
            a._edge() if isinstance(a, Tensor) and a._requires_grad else None for a in args
        )
        if _node.regions_open:
            _node.note_node(ctx)
        if _node.anomaly_enabled:
            from .anomaly_mode import forward_trace  # noqa: PLC0415 - debugging only

            ctx._forward_trace = forward_trace()
        ctx.n_outputs = len(outs)
        ctx._out_meta = [
            (o.shape, o.dtype, o.device) if isinstance(o, Tensor) else None for o in outs
        ]
        wrapped = []
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                wrapped.append(o)
                continue
            if id(o) in ctx._non_differentiable:
                wrapped.append(o)
                continue
            if any(o is a for a in args):  # returned an input: give it a new identity
                o = Tensor._make(o._data)
            t = Tensor._make(o._data, ctx, i)
            t._vbox = o._vbox
            wrapped.append(t)
        return wrapped[0] if single else tuple(wrapped)


class once_differentiable:  # noqa: N801 - torch's decorator name
    """Accepted for compatibility; the backward still runs with torch's semantics."""

    def __new__(cls, fn):
        return fn
