"""In-place ops (`add_`, `mul_`, `zero_`, `copy_`, `clamp_`, ...) and the machinery they share
with `__setitem__`, `masked_fill_`, `scatter_` and `index_add_`.

Every in-place op writes into the tensor's own memory, so views and `detach()`ed aliases see
the change, and bumps the version counter that nodes which saved the tensor check before
their backward runs. With nothing to record (grad mode off, or nothing requires grad) that is
all: optimizers update parameters this way under `no_grad`. With a graph to record, the
out-of-place op is run on a snapshot of the old value, the result is written back, and the
tensor takes the new node as its `grad_fn`; on a view, the view's root takes a `CopySlices`
node instead (see `_view.py`). A leaf that requires grad refuses, as in torch.
"""

from __future__ import annotations

import numpy as np

from .._ieee import loud, quiet
from ..autograd import grad_mode
from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor
from ._util import meta, reduce_grad, result_dtype
from ._view import check_view_inplace, rebase_view, refresh_view

LEAF_MSG = "a leaf Variable that requires grad is being used in an in-place operation."
_OVERLAP_MSG = (
    "unsupported operation: more than one element of the written-to tensor refers to a single "
    "memory location. Please clone() the tensor before performing the operation."
)
_TYPE_NAMES = {
    "float16": "Half",
    "float32": "Float",
    "float64": "Double",
    "int8": "Char",
    "int16": "Short",
    "int32": "Int",
    "int64": "Long",
    "uint8": "Byte",
    "bool": "Bool",
}


def _tname(d) -> str:
    return _TYPE_NAMES.get(np.dtype(d).name, np.dtype(d).name)


def check_cast(res_dtype, dst_dtype) -> None:
    """torch refuses in-place results that would change kind (float into int, int into bool)."""
    if res_dtype != dst_dtype and not np.can_cast(res_dtype, dst_dtype, "same_kind"):
        raise RuntimeError(
            f"result type {_tname(res_dtype)} can't be cast to the desired output type "
            f"{_tname(dst_dtype)}"
        )


def _overlapping(a) -> bool:
    return any(st == 0 and n > 1 for st, n in zip(a.strides, a.shape))


def _read_only(a) -> bool:
    """numpy marks broadcast views read-only; cupy has no such flag, so check the strides."""
    flags = a.flags
    return not flags.writeable if hasattr(flags, "writeable") else _overlapping(a)


def _store(t: Tensor, res) -> None:
    """Write an out-of-place result array into t's memory."""
    dst = t._data
    if res.shape != dst.shape:
        raise RuntimeError(
            f"output with shape {list(dst.shape)} doesn't match the broadcast shape {list(res.shape)}"
        )
    check_cast(res.dtype, dst.dtype)
    if _read_only(dst):
        if _overlapping(dst):
            raise RuntimeError(_OVERLAP_MSG)
        t._data = res.astype(dst.dtype, copy=True)
        return
    xp_of(dst).copyto(dst, res, casting="unsafe")


def _snapshot(t: Tensor, keep_old: bool) -> Tensor:
    """An alias of t holding its current value and history, for the out-of-place op to read.
    Its data is a copy when the new node may save it (t's memory is about to change)."""
    src = Tensor._make(t._data.copy() if keep_old else t._data, t.grad_fn, t._output_nr)
    src._requires_grad = t._requires_grad
    src._accumulator = t._accumulator
    return src


def _with_graph(t: Tensor, make, keep_old: bool, leaf_msg: str) -> Tensor:
    if t._view is not None:
        if t._requires_grad and t._view[4] != t._vbox[0]:
            refresh_view(t)
    elif t.grad_fn is None and t._requires_grad:
        raise RuntimeError(leaf_msg)
    out = make(_snapshot(t, keep_old))
    check_cast(out._data.dtype, t._data.dtype)
    if out._data.dtype != t._data.dtype:
        out = out.to(t.dtype)
    _store(t, out._data)
    if t._view is not None:
        rebase_view(t, out)
        return t
    node = out.grad_fn
    t.grad_fn, t._output_nr, t._requires_grad = node, out._output_nr, out._requires_grad
    t._bump_version()
    if node is not None and getattr(node, "_out_vbox", None) is out._vbox:
        # the node saved its output: from now on that output is t itself
        node._out_data, node._out_vbox, node._out_version = t._data, t._vbox, t._vbox[0]
    return t


def run_inplace(
    t: Tensor,
    make,
    others: tuple = (),
    fast=None,
    keep_old: bool = True,
    leaf_msg: str = LEAF_MSG,
) -> Tensor:
    """Apply an in-place op to `t`.

    `make(src)` computes the result out of place from a Tensor holding t's value and history;
    `fast(array)` (optional) writes the result straight into t's array when no graph is
    recorded. `keep_old=False` says the node made by `make` never reads src's values.
    """
    if grad_mode.state.enabled:
        others_grad = False
        for o in others:
            if isinstance(o, Tensor) and o._requires_grad:
                others_grad = True
        if t._view is not None:
            check_view_inplace(t, others_grad)
        if t._requires_grad or others_grad:
            return _with_graph(t, make, keep_old, leaf_msg)
    dst = t._data
    if fast is not None:
        if _read_only(dst) and _overlapping(dst):
            raise RuntimeError(_OVERLAP_MSG)
        token = quiet()  # inf and nan without numpy's warnings, as in torch
        try:
            fast(dst)
        finally:
            loud(token)
    else:
        _store(t, make(t.detach())._data)
    t._bump_version()
    return t


# ---------------------------------------------------------------- ops with no out-of-place twin
class Fill(Op):
    def forward(self, a, value):
        self.value_tensor = hasattr(value, "shape")
        return xp_of(a).full(a.shape, value, dtype=a.dtype)

    def backward(self, g):
        ga = g * 0 if self.needs_input_grad[0] else None
        gv = g.sum() if self.needs_input_grad[1] else None
        return ga, gv

    def name(self) -> str:
        return "FillBackward3" if self.value_tensor else "FillBackward2"


class Zero(Op):
    def forward(self, a):
        return xp_of(a).zeros_like(a)

    def backward(self, g):
        return g * 0

    def name(self) -> str:
        return "ZeroBackward0"


class CopyFrom(Op):
    """dst.copy_(src) as a function of both: src broadcast and cast to dst's shape and dtype."""

    def forward(self, dst, src):
        self.src = meta(src)
        xp = xp_of(dst)
        out = xp.empty_like(dst)
        xp.copyto(out, src, casting="unsafe")
        return out

    def backward(self, g):
        gd = g * 0 if self.needs_input_grad[0] else None
        gs = reduce_grad(g, *self.src) if self.needs_input_grad[1] else None
        return gd, gs

    def name(self) -> str:
        return "CopyBackwards"


# ---------------------------------------------------------------- dtype rules of the fast paths
def _scalar_result(dst_dtype, s) -> np.dtype:
    if isinstance(s, bool):
        return dst_dtype
    if isinstance(s, float) and dst_dtype.kind != "f":
        return np.dtype(np.float32)
    if isinstance(s, int) and dst_dtype.kind == "b":
        return np.dtype(np.int64)
    return dst_dtype


def _other_array(t: Tensor, other):
    """`other` as an operand for a ufunc writing into t, after torch's dtype check."""
    dst = t._data
    if isinstance(other, Tensor):
        o = other._data
        if type(o) is not type(dst):
            if o.ndim == 0:
                return _other_array(t, other.item())
            from ._util import check_same_device  # noqa: PLC0415

            check_same_device(dst, o)
        check_cast(result_dtype(dst.dtype, o.dtype), dst.dtype)
        return o
    if isinstance(other, (int, float, bool)):
        check_cast(_scalar_result(dst.dtype, other), dst.dtype)
        return other
    if isinstance(other, (np.ndarray, np.generic)):
        check_cast(result_dtype(dst.dtype, np.asarray(other).dtype), dst.dtype)
        return other
    raise TypeError(f"unsupported operand type {type(other).__name__} for an in-place op")


def _ufunc_into(ufunc: str, dst, o) -> None:
    try:
        getattr(xp_of(dst), ufunc)(dst, o, out=dst, casting="unsafe")
    except ValueError as exc:
        shape = np.broadcast_shapes(dst.shape, getattr(o, "shape", ()))
        if shape != dst.shape:
            raise RuntimeError(
                f"output with shape {list(dst.shape)} doesn't match the broadcast shape {list(shape)}"
            ) from None
        raise RuntimeError(str(exc)) from None


# ---------------------------------------------------------------- the in-place methods
def _ew():
    from . import elementwise  # noqa: PLC0415

    return elementwise


def add_(self: Tensor, other, *, alpha=1) -> Tensor:
    def fast(dst):
        o = _other_array(self, other)
        _ufunc_into("add", dst, o if alpha == 1 else o * alpha)

    return run_inplace(self, lambda s: _ew().add(s, other, alpha=alpha), (other,), fast, False)


def sub_(self: Tensor, other, *, alpha=1) -> Tensor:
    def fast(dst):
        o = _other_array(self, other)
        _ufunc_into("subtract", dst, o if alpha == 1 else o * alpha)

    return run_inplace(self, lambda s: _ew().sub(s, other, alpha=alpha), (other,), fast, False)


def mul_(self: Tensor, other) -> Tensor:
    def fast(dst):
        _ufunc_into("multiply", dst, _other_array(self, other))

    return run_inplace(self, lambda s: _ew().mul(s, other), (other,), fast)


def div_(self: Tensor, other, *, rounding_mode=None) -> Tensor:
    def fast(dst):
        if dst.dtype.kind != "f":
            raise RuntimeError(
                f"result type Float can't be cast to the desired output type {_tname(dst.dtype)}"
            )
        _ufunc_into("true_divide", dst, _other_array(self, other))

    if rounding_mode is not None:
        fast = None
    return run_inplace(
        self, lambda s: _ew().div(s, other, rounding_mode=rounding_mode), (other,), fast
    )


def pow_(self: Tensor, exponent) -> Tensor:
    return run_inplace(self, lambda s: _ew().pow(s, exponent), (exponent,))


def zero_(self: Tensor) -> Tensor:
    return run_inplace(self, Zero.apply, (), lambda dst: dst.fill(0), False)


def fill_(self: Tensor, value) -> Tensor:
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                "fill_ only supports 0-dimension value tensor but got tensor with "
                f"{value.ndim} dimensions."
            )
        if not (value._requires_grad and grad_mode.state.enabled):
            value = value.item()

    def fast(dst):
        dst.fill(value)

    return run_inplace(self, lambda s: Fill.apply(s, value), (value,), fast, False)


def copy_(self: Tensor, src, non_blocking: bool = False) -> Tensor:
    if not isinstance(src, Tensor):
        src = Tensor._make(np.asarray(src))
    from .indexing import broadcast_shape_or_raise  # noqa: PLC0415

    if broadcast_shape_or_raise(self._data.shape, src._data.shape) != self._data.shape:
        raise RuntimeError(
            f"output with shape {list(self.shape)} doesn't match the broadcast shape "
            f"{list(np.broadcast_shapes(self._data.shape, src._data.shape))}"
        )
    if type(src._data) is not type(self._data):
        src = src.to(self.device)

    def fast(dst):
        xp_of(dst).copyto(dst, src._data, casting="unsafe")

    return run_inplace(self, lambda s: CopyFrom.apply(s, src), (src,), fast, False)


def clamp_(self: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 - torch's names
    def fast(dst):
        for bound in (min, max):
            if bound is not None:
                _other_array(self, bound)
        lo = min._data if isinstance(min, Tensor) else min
        hi = max._data if isinstance(max, Tensor) else max
        xp_of(dst).clip(dst, lo, hi, out=dst)  # the dtype check above is torch's

    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    return run_inplace(self, lambda s: _ew().clamp(s, min, max), (min, max), fast)


def addcmul_(self: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    def fast(dst):
        prod = tensor1._data * tensor2._data
        _ufunc_into("add", dst, prod if value == 1 else prod * value)

    return run_inplace(
        self,
        lambda s: _ew().addcmul(s, tensor1, tensor2, value=value),
        (tensor1, tensor2),
        fast,
        False,
    )


def addcdiv_(self: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    def fast(dst):
        q = tensor1._data / tensor2._data
        _ufunc_into("add", dst, q if value == 1 else q * value)

    return run_inplace(
        self,
        lambda s: _ew().addcdiv(s, tensor1, tensor2, value=value),
        (tensor1, tensor2),
        fast,
        False,
    )


def lerp_(self: Tensor, end: Tensor, weight) -> Tensor:
    def fast(dst):
        w = weight._data if isinstance(weight, Tensor) else weight
        _ufunc_into("add", dst, (end._data - dst) * w)

    return run_inplace(self, lambda s: _ew().lerp(s, end, weight), (end, weight), fast)


def _unary_inplace(fn):
    def method(self: Tensor, *args, **kwargs) -> Tensor:
        return run_inplace(self, lambda s: fn(s, *args, **kwargs), ())

    return method


def _binary_inplace(fn):
    def method(self: Tensor, other, *args, **kwargs) -> Tensor:
        return run_inplace(self, lambda s: fn(s, other, *args, **kwargs), (other,))

    return method


def _shape_inplace(name: str):
    def method(self: Tensor, *args, **kwargs) -> Tensor:
        from . import shape  # noqa: PLC0415

        fn = getattr(shape, name)
        return run_inplace(self, lambda s: fn(s, *args, **kwargs), ())

    method.__name__ = name + "_"
    return method


def _function_inplace(module: str, name: str):
    """`x.name_(...)` as `name(x, ...)` written back into x, for functions of other op
    families (index_fill, cumsum, addmm, ...)."""

    def method(self: Tensor, *args, **kwargs) -> Tensor:
        from importlib import import_module  # noqa: PLC0415

        fn = getattr(import_module(f"shardgrad.ops.{module}"), name)
        flat = [x for a in (*args, *kwargs.values()) for x in (a if isinstance(a, tuple) else (a,))]
        others = tuple(a for a in flat if isinstance(a, Tensor))
        return run_inplace(self, lambda s: fn(s, *args, **kwargs), others)

    method.__name__ = name + "_"
    return method


def fill_diagonal_(self: Tensor, fill_value, wrap: bool = False) -> Tensor:
    """Set the main diagonal (of a matrix, or of an n-cube) to fill_value; with wrap, a
    tall matrix's diagonal starts again after every (columns + 1) rows, as numpy's."""
    shape = tuple(self.shape)
    if len(shape) < 2:
        raise RuntimeError("dimensions must larger than 1")
    if len(shape) > 2 and len(set(shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    mask = np.zeros(shape, dtype=bool)
    np.fill_diagonal(mask, True, wrap=wrap)
    mask = xp_of(self._data).asarray(mask)

    def fast(dst) -> None:
        dst[mask] = fill_value

    return run_inplace(self, lambda s: _ew().where(mask, fill_value, s), (fill_value,), fast=fast)


# In-place twins of elementwise ops that have no faster path of their own.
_UNARY = (
    "exp",
    "exp2",
    "expm1",
    "log",
    "log2",
    "log10",
    "log1p",
    "sqrt",
    "rsqrt",
    "reciprocal",
    "square",
    "neg",
    "negative",
    "abs",
    "absolute",
    "sin",
    "cos",
    "tan",
    "sinh",
    "cosh",
    "tanh",
    "asin",
    "acos",
    "atan",
    "asinh",
    "acosh",
    "atanh",
    "arcsin",
    "arccos",
    "arctan",
    "arcsinh",
    "arccosh",
    "arctanh",
    "sigmoid",
    "relu",
    "erf",
    "erfc",
    "erfinv",
    "sign",
    "sgn",
    "floor",
    "ceil",
    "trunc",
    "fix",
    "round",
    "frac",
    "clamp_min",
    "clamp_max",
    "nan_to_num",
    "logical_not",
    "bitwise_not",
)
_BINARY = (
    "remainder",
    "fmod",
    "floor_divide",
    "float_power",
    "atan2",
    "arctan2",
    "logical_and",
    "logical_or",
    "logical_xor",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "not_equal",
)
_OPERATORS = {
    "__ipow__": "pow",
    "__ifloordiv__": "floor_divide",
    "__imod__": "remainder",
    "__iand__": "bitwise_and",
    "__ior__": "bitwise_or",
    "__ixor__": "bitwise_xor",
}


def _elementwise_inplace() -> dict:
    ew = _ew()
    table = {n + "_": _unary_inplace(getattr(ew, n)) for n in _UNARY if hasattr(ew, n)}
    table.update({n + "_": _binary_inplace(getattr(ew, n)) for n in _BINARY if hasattr(ew, n)})
    table.update(
        {k: _binary_inplace(getattr(ew, n)) for k, n in _OPERATORS.items() if hasattr(ew, n)}
    )
    return table


TENSOR_METHODS = {
    **_elementwise_inplace(),
    "add_": add_,
    "sub_": sub_,
    "subtract_": sub_,
    "mul_": mul_,
    "multiply_": mul_,
    "div_": div_,
    "divide_": div_,
    "true_divide_": div_,
    "pow_": pow_,
    "__iadd__": add_,
    "__isub__": sub_,
    "__imul__": mul_,
    "__itruediv__": div_,
    "zero_": zero_,
    "fill_": fill_,
    "copy_": copy_,
    "clamp_": clamp_,
    "clip_": clamp_,
    "addcmul_": addcmul_,
    "addcdiv_": addcdiv_,
    "lerp_": lerp_,
    "triu_": _shape_inplace("triu"),
    "tril_": _shape_inplace("tril"),
    "fill_diagonal_": fill_diagonal_,
    "index_fill_": _function_inplace("arrangements", "index_fill"),
    "index_copy_": _function_inplace("arrangements", "index_copy"),
    "index_put_": _function_inplace("arrangements", "index_put"),
    "masked_scatter_": _function_inplace("arrangements", "masked_scatter"),
    "put_": _function_inplace("arrangements", "put"),
    "cumsum_": _function_inplace("reduce", "cumsum"),
    "cumprod_": _function_inplace("reduce", "cumprod"),
    "addmm_": _function_inplace("products", "addmm"),
    "addmv_": _function_inplace("products", "addmv"),
    "baddbmm_": _function_inplace("products", "baddbmm"),
    "addbmm_": _function_inplace("composite", "addbmm"),
    "addr_": _function_inplace("composite", "addr"),
    "copysign_": _function_inplace("composite", "copysign"),
    "heaviside_": _function_inplace("composite", "heaviside"),
    "renorm_": _function_inplace("composite", "renorm"),
    "logit_": _function_inplace("composite", "logit"),
    "sinc_": _function_inplace("composite", "sinc"),
    "deg2rad_": _function_inplace("composite", "deg2rad"),
    "rad2deg_": _function_inplace("composite", "rad2deg"),
    "hypot_": _function_inplace("elementwise", "hypot"),
    "xlogy_": _function_inplace("elementwise", "xlogy"),
    "i0_": _function_inplace("special_functions", "i0"),
    "igamma_": _function_inplace("special_functions", "gammainc"),
    "igammac_": _function_inplace("special_functions", "gammaincc"),
    "gcd_": _function_inplace("integer_float_bits", "gcd"),
    "lcm_": _function_inplace("integer_float_bits", "lcm"),
    "ldexp_": _function_inplace("integer_float_bits", "ldexp"),
    "nextafter_": _function_inplace("integer_float_bits", "nextafter"),
    "bitwise_left_shift_": _function_inplace("integer_float_bits", "bitwise_left_shift"),
    "bitwise_right_shift_": _function_inplace("integer_float_bits", "bitwise_right_shift"),
    "conj_physical_": lambda self: self,  # a real tensor is its own conjugate
}

__all__: list[str] = []
