"""In-place ops (`add_`, `mul_`, `zero_`, `copy_`, ...).

Without a graph to record (grad mode off, or nothing requires grad) they write into the
array and bump the version counter, which every node that saved this tensor checks. With a
graph, a non-leaf tensor is rebound to the out-of-place result, as torch does; a leaf that
requires grad refuses, with torch's message.
"""

from __future__ import annotations

import numpy as np

from ..autograd import grad_mode
from ..backend import xp_of
from ..tensor import Tensor

_LEAF_MSG = "a leaf Variable that requires grad is being used in an in-place operation."


def _check_leaf(t: Tensor) -> None:
    if t.grad_fn is None and t._requires_grad and grad_mode.state.enabled:
        raise RuntimeError(_LEAF_MSG)


def rebind_inplace(t: Tensor, make) -> Tensor:
    """Run `make(src)` on an alias of `t` holding its old value and history, then make `t`
    the result. Nodes that saved `t` itself see the version bump and refuse to run."""
    _check_leaf(t)
    if t._is_view and t._requires_grad:
        raise RuntimeError(
            "shardgrad does not support in-place operations on views of tensors that require "
            "grad; use an out-of-place op (e.g. torch.where or torch.cat) instead"
        )
    src = Tensor._make(t._data, t.grad_fn, t._output_nr)
    src._requires_grad = t._requires_grad
    src._accumulator = t._accumulator
    src._vbox = [t._vbox[0]]
    out = make(src)
    if np.dtype(out._data.dtype) != np.dtype(t._data.dtype):
        out = out.to(t.dtype)
    t._data = out._data
    t.grad_fn = out.grad_fn
    t._output_nr = out._output_nr
    t._requires_grad = out._requires_grad
    t._bump_version()
    return t


def _write(t: Tensor, result) -> Tensor:
    """Store an out-of-place result into t's own memory (so views see it) and bump."""
    dst = t._data
    res_dtype = getattr(result, "dtype", None)
    if res_dtype is not None and not np.can_cast(res_dtype, dst.dtype, "same_kind"):
        raise RuntimeError(
            f"result type {_tname(res_dtype)} can't be cast to the desired output type {_tname(dst.dtype)}"
        )
    xp_of(dst).copyto(dst, result, casting="unsafe")
    t._bump_version()
    return t


def _tname(d) -> str:
    return {"f": "Float", "i": "Long", "b": "Bool", "u": "Byte"}[np.dtype(d).kind]


def _needs_graph(t: Tensor, *others) -> bool:
    if not grad_mode.state.enabled:
        return False
    return t._requires_grad or any(isinstance(o, Tensor) and o._requires_grad for o in others)


def _binary_inplace(fn):
    """An in-place version of the out-of-place op `fn(self, other, **kw)`."""

    def method(self: Tensor, other, **kwargs):
        if _needs_graph(self, other):
            return rebind_inplace(self, lambda src: fn(src, other, **kwargs))
        res = fn(self.detach(), other.detach() if isinstance(other, Tensor) else other, **kwargs)
        return _write(self, res._data)

    return method


def _unary_inplace(fn):
    def method(self: Tensor, *args, **kwargs):
        if _needs_graph(self):
            return rebind_inplace(self, lambda src: fn(src, *args, **kwargs))
        return _write(self, fn(self.detach(), *args, **kwargs)._data)

    return method


def zero_(self: Tensor) -> Tensor:
    _check_leaf(self)
    if _needs_graph(self):
        return rebind_inplace(self, lambda src: src * 0)
    self._data.fill(0)
    self._bump_version()
    return self


def fill_(self: Tensor, value) -> Tensor:
    _check_leaf(self)
    if isinstance(value, Tensor):
        value = value.item()
    if _needs_graph(self):
        return rebind_inplace(self, lambda src: src * 0 + value)
    self._data.fill(value)
    self._bump_version()
    return self


def copy_(self: Tensor, src: Tensor, non_blocking: bool = False) -> Tensor:
    if _needs_graph(self, src):
        from .shape import expand  # noqa: PLC0415

        return rebind_inplace(self, lambda old: expand(src.to(self.dtype).to(self.device), self.shape) + old * 0)
    data = src._data if isinstance(src, Tensor) else np.asarray(src)
    if isinstance(src, Tensor) and type(data) is not type(self._data):
        data = src.to(self.device)._data
    xp_of(self._data).copyto(self._data, data, casting="unsafe")
    self._bump_version()
    return self


def _inplace_methods() -> dict:
    from . import elementwise as ew  # noqa: PLC0415

    table = {
        "add_": _binary_inplace(ew.add),
        "sub_": _binary_inplace(ew.sub),
        "mul_": _binary_inplace(ew.mul),
        "div_": _binary_inplace(ew.div),
        "pow_": _binary_inplace(ew.pow),
        "__iadd__": _binary_inplace(ew.add),
        "__isub__": _binary_inplace(ew.sub),
        "__imul__": _binary_inplace(ew.mul),
        "__itruediv__": _binary_inplace(ew.div),
        "clamp_": _unary_inplace(ew.clamp),
        "clip_": _unary_inplace(ew.clamp),
        "exp_": _unary_inplace(ew.exp),
        "log_": _unary_inplace(ew.log),
        "sqrt_": _unary_inplace(ew.sqrt),
        "neg_": _unary_inplace(ew.neg),
        "abs_": _unary_inplace(ew.abs),
        "tanh_": _unary_inplace(ew.tanh),
        "sigmoid_": _unary_inplace(ew.sigmoid),
        "relu_": _unary_inplace(ew.relu),
        "zero_": zero_,
        "fill_": fill_,
        "copy_": copy_,
    }
    return table


TENSOR_METHODS = _inplace_methods()

__all__: list[str] = []
