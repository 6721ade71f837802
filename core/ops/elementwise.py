"""Elementwise ops. Each class is one op: forward on arrays, backward on Tensors.

Binary ops broadcast; their backward sums the gradient back to each input's shape
(`reduce_grad`). Backward formulas use Tensor ops only, so they are differentiable again;
where a formula has a piecewise-constant factor (a comparison mask), the factor is a constant
Tensor, whose derivative is zero almost everywhere, as in torch.
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from .. import _dtype
from ..autograd import grad_mode
from ..autograd.node import Op
from ..backend import is_array, xp_of
from ..tensor import Tensor
from . import _cuda_kernels as _kernels
from . import _special
from ._util import meta, prepare_binary, reduce_grad

_xp = xp_of
_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_TWO_OVER_SQRTPI = 2.0 / math.sqrt(math.pi)
_SQRTPI_OVER_TWO = math.sqrt(math.pi) / 2.0


def _fused(g: Tensor, y: Tensor) -> bool:
    """Whether an activation's backward may run as one CUDA kernel: a GPU float gradient of
    the output's dtype and no graph to record (create_graph needs the Tensor-op formula)."""
    return (
        not grad_mode.state.enabled
        and _kernels.active(g._data)
        and g._data.dtype == y._data.dtype
        and g._data.shape == y._data.shape
    )


def _const(array) -> Tensor:
    """A constant (no history) Tensor around an array."""
    return Tensor._make(array)


def _mask_like(mask, g: Tensor) -> Tensor:
    """A 0/1 mask array as a constant Tensor of g's dtype, ready to multiply."""
    return Tensor._make(mask.astype(g._data.dtype, copy=False))


def _floating(x) -> Tensor:
    """Integer and bool inputs of float-valued ops compute in the default float dtype."""
    try:
        kind = x._data.dtype.kind
    except AttributeError:
        raise TypeError(f"expected a Tensor as input, but got {type(x).__name__}") from None
    return x if kind == "f" else x.to(_dtype.get_default_dtype())


def _float_pair(input, other):
    """The operands of a float-valued binary op (atan2, xlogy, copysign, ...): brought to
    torch's common dtype, and to the default float dtype where that is an integer or bool
    (so int8 with float16 is float16, int8 with int8 float32, as in torch)."""
    a, b = _prep(input, other)
    a = _floating(a) if isinstance(a, Tensor) else a
    b = _floating(b) if isinstance(b, Tensor) else b
    return a, b


def _is_bool(x) -> bool:
    return x._data.dtype == np.bool_ if isinstance(x, Tensor) else isinstance(x, bool)


def _refuse_bools(a, b, kernel: str) -> None:
    """torch has no bool kernel for these: two bools (a Python bool counts) are refused."""
    if _is_bool(a) and _is_bool(b):
        raise NotImplementedError(f"\"{kernel}\" not implemented for 'Bool'")


def _tensor_arg(x, fn: str, arg: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{arg}' must be Tensor, not {type(x).__name__}")


_TORCH_NAMES = {
    "float32": ("Float", "float"), "float64": ("Double", "double"), "float16": ("Half", "half"),
    "int64": ("Long", "long"), "int32": ("Int", "int"), "int16": ("Short", "short"),
    "int8": ("Char", "char"), "uint8": ("Byte", "unsigned char"), "bool": ("Bool", "bool"),
}  # fmt: skip


def _dtype_name(t: Tensor) -> str:
    """torch's capitalised scalar-type name (`Float`), as its kernel errors spell it."""
    return _TORCH_NAMES[t._data.dtype.name][0]


def _short(t: Tensor) -> str:
    """torch's C type name (`float`), as its dtype-mismatch errors spell it."""
    return _TORCH_NAMES[t._data.dtype.name][1]


def _no_broadcast(*operands) -> RuntimeError:
    """torch's error for operands that do not broadcast (numpy raises ValueError)."""
    shapes = [x.shape for x in operands if hasattr(x, "shape")]
    for i, sa in enumerate(shapes):
        for sb in shapes[i + 1 :]:
            nd = builtins.max(len(sa), len(sb))
            for k in range(1, builtins.min(len(sa), len(sb)) + 1):
                if sa[-k] != sb[-k] and sa[-k] != 1 and sb[-k] != 1:
                    return RuntimeError(
                        f"The size of tensor a ({sa[-k]}) must match the size of tensor b "
                        f"({sb[-k]}) at non-singleton dimension {nd - k}"
                    )
    return RuntimeError(f"operands could not be broadcast together with shapes {shapes}")


# ---------------------------------------------------------------- binary arithmetic
class Add(Op):
    def forward(self, a, b, alpha=1):
        self.a, self.b, self.alpha = meta(a), meta(b), alpha
        try:
            return a + b if alpha == 1 else a + alpha * b
        except ValueError:
            raise _no_broadcast(a, b) from None

    def backward(self, g):
        ga = reduce_grad(g, *self.a) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            gb = reduce_grad(g if self.alpha == 1 else g * self.alpha, *self.b)
        return ga, gb


class Sub(Op):
    def forward(self, a, b, alpha=1):
        self.a, self.b, self.alpha = meta(a), meta(b), alpha
        try:
            return a - b if alpha == 1 else a - alpha * b
        except ValueError:
            raise _no_broadcast(a, b) from None

    def backward(self, g):
        ga = reduce_grad(g, *self.a) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            gb = reduce_grad(-g if self.alpha == 1 else g * -self.alpha, *self.b)
        return ga, gb


class Mul(Op):
    save_inputs = (0, 1)

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        try:
            return a * b
        except ValueError:
            raise _no_broadcast(a, b) from None

    def backward(self, g):
        a, b = self.saved
        ga = reduce_grad(g * b, *self.a) if self.needs_input_grad[0] else None
        gb = reduce_grad(g * a, *self.b) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Op):
    save_inputs = (0, 1)

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        try:
            return a / b
        except ValueError:
            raise _no_broadcast(a, b) from None

    def backward(self, g):
        a, b = self.saved
        ga = reduce_grad(g / b, *self.a) if self.needs_input_grad[0] else None
        # torch's order, -g * ((a / b) / b): b * b would underflow to 0 (or overflow) first
        gb = reduce_grad(-g * ((a / b) / b), *self.b) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(Op):
    save_inputs = (0, 1)
    save_output = True

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        try:
            return a**b
        except ValueError:
            raise _no_broadcast(a, b) from None

    def backward(self, g):
        a, b, out = self.saved
        ga = gb = None
        if self.needs_input_grad[0]:
            if isinstance(b, Tensor):  # torch: zero where the exponent is zero, even at a == 0
                ga = where(b._data == 0, 0.0, g * b * a ** (b - 1))
            elif b == 0:
                ga = g * 0.0
            elif b == 2:
                ga = g * 2.0 * a
            else:
                ga = g * b * a ** (b - 1)
            ga = reduce_grad(ga, *self.a)
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = reduce_grad(self._exponent_grad(g, a, b, out), *self.b)
        return ga, gb

    @staticmethod
    def _exponent_grad(g, a, b, out):
        """g * a**b * log(a), but zero where a == 0 and b >= 0 (0**b is flat there), as torch."""
        if isinstance(a, Tensor):
            zero = (a._data == 0) & (b._data >= 0)
            gb = g * out * log(a)
            if type(zero) is not np.ndarray:  # on a GPU a where beats a sync
                return where(zero, 0.0, gb)
            return where(zero, 0.0, gb) if zero.any() else gb
        if a == 0:
            return where(b._data >= 0, 0.0, g * out * float("-inf"))
        return g * out * (math.log(a) if a > 0 else float("nan"))


class Remainder(Op):
    """Python-style modulo (sign of the divisor), torch.remainder."""

    save_inputs = (0, 1)

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        try:
            return _xp(a if hasattr(a, "shape") else b).remainder(a, b)
        except ValueError:
            raise _no_broadcast(a, b) from None

    def backward(self, g):
        a, b = self.saved
        ga = reduce_grad(g, *self.a) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            gb = reduce_grad(-g * _rounded_div(a, b, "floor"), *self.b)
        return ga, gb


class Fmod(Op):
    """C-style modulo (sign of the dividend), torch.fmod."""

    save_inputs = (0, 1)

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        try:
            return _xp(a if hasattr(a, "shape") else b).fmod(a, b)
        except ValueError:
            raise _no_broadcast(a, b) from None

    def backward(self, g):
        a, b = self.saved
        ga = reduce_grad(g, *self.a) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            gb = reduce_grad(-g * _rounded_div(a, b, "trunc"), *self.b)
        return ga, gb


class RoundedDiv(Op):
    """div with rounding_mode: Python's floor division (numpy's, which torch matches) or
    truncation. Piecewise constant, so the gradient is zero, as in torch."""

    def forward(self, a, b, mode="floor"):
        self.a, self.b = meta(a), meta(b)
        try:
            return self._divide(a, b, mode)
        except ValueError:
            raise _no_broadcast(a, b) from None

    @staticmethod
    def _divide(a, b, mode):
        xp = _xp(a if hasattr(a, "shape") else b)
        if mode == "floor":
            return xp.floor_divide(a, b)
        if _array_kind(a) in "iub" and _array_kind(b) in "iub":
            q = xp.abs(a) // xp.abs(b)  # exact integer truncation
            return xp.where((xp.asarray(a) < 0) != (xp.asarray(b) < 0), -q, q)
        return xp.trunc(xp.true_divide(a, b))

    def backward(self, g):
        zeros = Tensor._make(_xp(g._data).zeros_like(g._data))
        ga = reduce_grad(zeros, *self.a) if self.needs_input_grad[0] else None
        gb = reduce_grad(zeros, *self.b) if self.needs_input_grad[1] else None
        return ga, gb


def _array_kind(x) -> str:
    if hasattr(x, "dtype"):
        return x.dtype.kind
    return "f" if isinstance(x, float) else "i"


class _Extremum(Op):
    """maximum/minimum: the gradient goes to the selected side; ties split it in half.

    Where the comparison is undecided (a NaN on either side) both sides get the full
    gradient, exactly as torch's masked_fill formulation gives."""

    save_inputs = (0, 1)
    fn = "maximum"

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        try:
            return getattr(_xp(a), self.fn)(a, b)
        except ValueError:
            raise _no_broadcast(a, b) from None

    def backward(self, g):
        a, b = self.saved
        ad, bd = a._data, b._data
        eq = ad == bd
        a_loses = ad < bd if self.fn == "maximum" else ad > bd
        b_loses = ad > bd if self.fn == "maximum" else ad < bd
        ga = gb = None
        if self.needs_input_grad[0]:
            w = 1.0 - a_loses - 0.5 * eq
            ga = reduce_grad(g * _mask_like(w, g), *self.a)
        if self.needs_input_grad[1]:
            w = 1.0 - b_loses - 0.5 * eq
            gb = reduce_grad(g * _mask_like(w, g), *self.b)
        return ga, gb


class Maximum(_Extremum):
    fn = "maximum"


class Minimum(_Extremum):
    fn = "minimum"


class _FExtremum(Op):
    """fmax/fmin ignore NaN; the gradient goes to the side that was picked (self on ties)."""

    save_inputs = (0, 1)
    fn = "fmax"

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        try:
            return getattr(_xp(a), self.fn)(a, b)
        except ValueError:
            raise _no_broadcast(a, b) from None

    def backward(self, g):
        a, b = self.saved
        ad, bd = a._data, b._data
        xp = _xp(ad)
        picked_a = (ad >= bd if self.fn == "fmax" else ad <= bd) | xp.isnan(bd)
        ga = reduce_grad(g * _mask_like(picked_a, g), *self.a) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            gb = reduce_grad(g * _mask_like(~picked_a, g), *self.b)
        return ga, gb


class Fmax(_FExtremum):
    fn = "fmax"


class Fmin(_FExtremum):
    fn = "fmin"


class Atan2(Op):
    save_inputs = (0, 1)

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        try:
            return _xp(a).arctan2(a, b)
        except ValueError:
            raise _no_broadcast(a, b) from None

    def backward(self, g):
        a, b = self.saved
        scale = g / (a * a + b * b)
        ga = reduce_grad(scale * b, *self.a) if self.needs_input_grad[0] else None
        gb = reduce_grad(-scale * a, *self.b) if self.needs_input_grad[1] else None
        return ga, gb


class Hypot(Op):
    """sqrt(a^2 + b^2) without overflowing on the way (numpy's hypot)."""

    save_inputs = (0, 1)
    save_output = True

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        try:
            return _xp(a).hypot(a, b)
        except ValueError:
            raise _no_broadcast(a, b) from None

    def backward(self, g):
        a, b, out = self.saved
        ga = reduce_grad(g * a / out, *self.a) if self.needs_input_grad[0] else None
        gb = reduce_grad(g * b / out, *self.b) if self.needs_input_grad[1] else None
        return ga, gb


class Logaddexp(Op):
    """log(exp(a) + exp(b)), computed without overflow."""

    save_inputs = (0, 1)

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        try:
            return _xp(a).logaddexp(a, b)
        except ValueError:
            raise _no_broadcast(a, b) from None

    def backward(self, g):
        a, b = self.saved
        # torch's form: grad / (1 + exp(other - self)), and the same the other way
        ga = reduce_grad(g / ((b - a).exp() + 1), *self.a) if self.needs_input_grad[0] else None
        gb = reduce_grad(g / ((a - b).exp() + 1), *self.b) if self.needs_input_grad[1] else None
        return ga, gb


class Xlogy(Op):
    """x * log(y), and 0 where x is 0 (unless y is nan), as torch and scipy define it."""

    save_inputs = (0, 1)

    def forward(self, x, y):
        self.a, self.b = meta(x), meta(y)
        xp = _xp(x)
        try:
            out = x * xp.log(y)
        except ValueError:
            raise _no_broadcast(x, y) from None
        return xp.where((x == 0) & ~xp.isnan(y), xp.zeros((), out.dtype), out)

    def backward(self, g):
        x, y = self.saved
        gx = gy = None
        if self.needs_input_grad[0]:
            # torch: xlogy(grad, y), and 0 where x == 0 and y <= 0
            y_values = y._data if isinstance(y, Tensor) else y  # y may be a Python number
            dead = Tensor._make((x._data == 0) & (y_values <= 0))
            gx = reduce_grad(xlogy(g, y).masked_fill(dead, 0.0), *self.a)
        if self.needs_input_grad[1]:
            gy = reduce_grad(g * x / y, *self.b)
        return gx, gy


class Lerp(Op):
    """start + weight * (end - start), computed like torch: from the nearer end, so that
    weight 0 gives `start` and weight 1 gives `end` exactly."""

    save_inputs = (0, 1, 2)

    def forward(self, start, end, weight):
        self.s, self.e, self.w = meta(start), meta(end), meta(weight)
        try:
            return self._lerp(start, end, weight)
        except ValueError:
            raise _no_broadcast(start, end, weight) from None

    @staticmethod
    def _lerp(start, end, weight):
        diff = end - start
        if not hasattr(weight, "shape"):
            return (
                start + weight * diff if builtins.abs(weight) < 0.5 else end - diff * (1 - weight)
            )
        xp = _xp(start)
        return xp.where(xp.abs(weight) < 0.5, start + weight * diff, end - diff * (1 - weight))

    def backward(self, g):
        start, end, weight = self.saved
        gs = reduce_grad(g * (1 - weight), *self.s) if self.needs_input_grad[0] else None
        ge = reduce_grad(g * weight, *self.e) if self.needs_input_grad[1] else None
        gw = reduce_grad(g * (end - start), *self.w) if self.needs_input_grad[2] else None
        return gs, ge, gw


def _prep(a, b):
    return prepare_binary(a, b)


def add(input, other, *, alpha=1):
    a, b = _prep(input, other)
    return Add.apply(a, b, alpha=alpha) if alpha != 1 else Add.apply(a, b)


def sub(input, other, *, alpha=1):
    if _is_bool(input) and _is_bool(other):
        raise RuntimeError(
            "Subtraction, the `-` operator, with two bool tensors is not supported. Use the "
            "`^` or `logical_xor()` operator instead."
        )
    if _is_bool(input) or _is_bool(other):
        raise RuntimeError(
            "Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
            "trying to invert a mask, use the `~` or `logical_not()` operator instead."
        )
    a, b = _prep(input, other)
    return Sub.apply(a, b, alpha=alpha) if alpha != 1 else Sub.apply(a, b)


def mul(input, other):
    a, b = _prep(input, other)
    return Mul.apply(a, b)


def div(input, other, *, rounding_mode=None):
    a, b = _prep(input, other)
    if rounding_mode is not None:
        return _rounded_div(a, b, rounding_mode)
    # true division of integers gives the default float dtype, as in torch
    if isinstance(a, Tensor):
        if a._data.dtype.kind != "f" and (not isinstance(b, Tensor) or b._data.dtype.kind != "f"):
            a = a.to(_dtype.get_default_dtype())
            if isinstance(b, Tensor):
                b = b.to(a.dtype)
    elif b._data.dtype.kind != "f":
        b = b.to(_dtype.get_default_dtype())
    return Div.apply(a, b)


def _is_int(x) -> bool:
    return x._data.dtype.kind in "iub" if isinstance(x, Tensor) else isinstance(x, int)


def _check_int_zero(a, b) -> None:
    """Integer division by zero is an error in torch, not numpy's silent 0. A divisor tensor
    on the GPU is not checked (it would cost a host round trip; torch's CUDA kernels do not
    raise either)."""
    if _is_int(a) and _is_int(b):
        if not isinstance(b, Tensor):
            if b == 0:
                raise RuntimeError("ZeroDivisionError")
        elif type(b._data) is np.ndarray and bool((b._data == 0).any()):
            raise RuntimeError("ZeroDivisionError")


def _rounded_div(a, b, mode):
    if mode not in ("floor", "trunc"):
        raise RuntimeError(
            f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{mode}'"
        )
    _check_int_zero(a, b)
    return RoundedDiv.apply(a, b, mode=mode)


def floor_divide(input, other):
    _refuse_bools(input, other, "div_floor_cpu")
    a, b = _prep(input, other)
    return _rounded_div(a, b, "floor")


def remainder(input, other):
    _refuse_bools(input, other, "remainder_cpu")
    a, b = _prep(input, other)
    _check_int_zero(a, b)
    return Remainder.apply(a, b)


def fmod(input, other):
    _refuse_bools(input, other, "fmod_cpu")
    a, b = _prep(input, other)
    _check_int_zero(a, b)
    return Fmod.apply(a, b)


def pow(input, exponent):  # noqa: A001 - torch's name
    if isinstance(input, Tensor) and _is_bool(input) and isinstance(exponent, bool):
        return input.clone() if exponent else input.new_ones(input.shape)  # stays bool
    _refuse_bools(input, exponent, "pow")
    a, b = _prep(input, exponent)
    if (
        isinstance(a, Tensor)
        and isinstance(b, int)
        and not isinstance(b, bool)
        and b < 0
        and a._data.dtype.kind in "iu"
    ):
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    return Pow.apply(a, b)


def float_power(input, exponent):
    """pow computed in float64, as torch.float_power."""
    a = input.double() if isinstance(input, Tensor) else float(input)
    b = exponent.double() if isinstance(exponent, Tensor) else float(exponent)
    return pow(a, b)


def _extremum_args(fn: str, input, other):
    _tensor_arg(input, fn, "input")
    _tensor_arg(other, fn, "other")
    return _prep(input, other)


def maximum(input: Tensor, other: Tensor) -> Tensor:
    return Maximum.apply(*_extremum_args("maximum", input, other))


def minimum(input: Tensor, other: Tensor) -> Tensor:
    return Minimum.apply(*_extremum_args("minimum", input, other))


def fmax(input: Tensor, other: Tensor) -> Tensor:
    return Fmax.apply(*_extremum_args("fmax", input, other))


def fmin(input: Tensor, other: Tensor) -> Tensor:
    return Fmin.apply(*_extremum_args("fmin", input, other))


def hypot(input: Tensor, other: Tensor) -> Tensor:
    _tensor_arg(input, "hypot", "input")
    _tensor_arg(other, "hypot", "other")
    return Hypot.apply(*_float_pair(input, other))


def logaddexp(input: Tensor, other: Tensor) -> Tensor:
    _tensor_arg(input, "logaddexp", "input")
    _tensor_arg(other, "logaddexp", "other")
    return Logaddexp.apply(*_float_pair(input, other))


def xlogy(input, other) -> Tensor:
    """input * log(other), 0 where input is 0; either may be a Python number."""
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError("xlogy(): at least one of input and other must be a Tensor")
    a, b = _float_pair(input, other)
    # a Python number takes the tensor's dtype (its log would otherwise be a float64)
    a = a if isinstance(a, Tensor) else b.new_tensor(a)
    b = b if isinstance(b, Tensor) else a.new_tensor(b)
    return Xlogy.apply(a, b)


def atan2(input: Tensor, other: Tensor) -> Tensor:
    _tensor_arg(input, "atan2", "input")
    _tensor_arg(other, "atan2", "other")
    return Atan2.apply(*_float_pair(input, other))


def lerp(input: Tensor, end: Tensor, weight) -> Tensor:
    _tensor_arg(end, "lerp", "end")
    if input._data.dtype != end._data.dtype:
        raise RuntimeError(f"expected dtype {_short(input)} for `end` but got dtype {_short(end)}")
    if input._data.dtype.kind != "f":
        raise NotImplementedError(
            f"\"lerp_kernel_scalar\" not implemented for '{_dtype_name(input)}'"
        )
    if isinstance(weight, Tensor) and weight._data.dtype != input._data.dtype:
        raise RuntimeError(
            f"expected dtype {_short(input)} for `weight` but got dtype {_short(weight)}"
        )
    return Lerp.apply(input, end, weight)


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    prod = mul(tensor1, tensor2)
    return add(input, prod if value == 1 else mul(prod, value))


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:
    if _is_int(tensor1) and _is_int(tensor2):
        raise RuntimeError(
            "Integer division with addcdiv is no longer supported, and in a future  release "
            "addcdiv will perform a true division of tensor1 and tensor2. The historic addcdiv "
            "behavior can be implemented as (input + value * torch.trunc(tensor1 / tensor2))."
            "to(input.dtype) for integer inputs and as (input + value * tensor1 / tensor2) for "
            "float inputs. The future addcdiv behavior is just the latter implementation: "
            "(input + value * tensor1 / tensor2), for all dtypes."
        )
    quot = div(tensor1, tensor2)
    return add(input, quot if value == 1 else mul(quot, value))


# ---------------------------------------------------------------- unary
class Neg(Op):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Exp(Op):
    save_output = True

    def forward(self, a):
        return _xp(a).exp(a)

    def backward(self, g):
        (out,) = self.saved
        return g * out


class Exp2(Op):
    save_output = True

    def forward(self, a):
        return _xp(a).exp2(a)

    def backward(self, g):
        (out,) = self.saved
        return g * out * _LN2


class Expm1(Op):
    save_output = True

    def forward(self, a):
        return _xp(a).expm1(a)

    def backward(self, g):
        (out,) = self.saved
        return g * (out + 1.0)


class Log(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).log(a)

    def backward(self, g):
        (a,) = self.saved
        return g / a


class Log2(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).log2(a)

    def backward(self, g):
        (a,) = self.saved
        return g / (a * _LN2)


class Log10(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).log10(a)

    def backward(self, g):
        (a,) = self.saved
        return g / (a * _LN10)


class Log1p(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).log1p(a)

    def backward(self, g):
        (a,) = self.saved
        return g / (a + 1.0)


class Sqrt(Op):
    save_output = True

    def forward(self, a):
        return _xp(a).sqrt(a)

    def backward(self, g):
        (out,) = self.saved
        return g / (2.0 * out)


class Rsqrt(Op):
    save_output = True

    def forward(self, a):
        root = _xp(a).sqrt(a)
        return _xp(a).reciprocal(root, out=root) if root.ndim else 1.0 / root

    def backward(self, g):
        (out,) = self.saved
        return g * -0.5 * out * out * out


class Reciprocal(Op):
    save_output = True

    def forward(self, a):
        return _xp(a).reciprocal(a)

    def backward(self, g):
        (out,) = self.saved
        return -g * out * out


class Square(Op):
    save_inputs = (0,)

    def forward(self, a):
        return a * a

    def backward(self, g):
        (a,) = self.saved
        return g * 2.0 * a


class Abs(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).abs(a)

    def backward(self, g):
        (a,) = self.saved
        return g * _mask_like(_sign(a._data), g)


class Sin(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).sin(a)

    def backward(self, g):
        (a,) = self.saved
        return g * cos(a)


class Cos(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).cos(a)

    def backward(self, g):
        (a,) = self.saved
        return -g * sin(a)


class Tan(Op):
    save_output = True

    def forward(self, a):
        return _xp(a).tan(a)

    def backward(self, g):
        (out,) = self.saved
        return g * (1.0 + out * out)


class Sinh(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).sinh(a)

    def backward(self, g):
        (a,) = self.saved
        return g * cosh(a)


class Cosh(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).cosh(a)

    def backward(self, g):
        (a,) = self.saved
        return g * sinh(a)


class Tanh(Op):
    save_output = True

    def forward(self, a):
        return _xp(a).tanh(a)

    def backward(self, g):
        (out,) = self.saved
        if _fused(g, out):
            return Tensor._make(_kernels.tanh_backward(g._data, out._data))
        return g * (1.0 - out * out)


class Asin(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).arcsin(a)

    def backward(self, g):
        (a,) = self.saved
        return g * rsqrt(1.0 - a * a)


class Acos(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).arccos(a)

    def backward(self, g):
        (a,) = self.saved
        return -g * rsqrt(1.0 - a * a)


class Atan(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).arctan(a)

    def backward(self, g):
        (a,) = self.saved
        return g / (a * a + 1.0)


class Asinh(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).arcsinh(a)

    def backward(self, g):
        (a,) = self.saved
        return g * rsqrt(a * a + 1.0)


class Acosh(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).arccosh(a)

    def backward(self, g):
        (a,) = self.saved
        return g * rsqrt(a * a - 1.0)


class Atanh(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).arctanh(a)

    def backward(self, g):
        (a,) = self.saved
        return g / (1.0 - a * a)


class Sigmoid(Op):
    save_output = True

    def forward(self, a):
        if _kernels.active(a):
            return _kernels.sigmoid(a)
        xp = _xp(a)
        # from exp(-|a|), so neither sign overflows: 1/(1+e) for a >= 0, e/(1+e) below
        e = xp.exp(-xp.abs(a))
        r = 1.0 / (1.0 + e)
        return xp.where(a >= 0, r, e * r).astype(a.dtype, copy=False)

    def backward(self, g):
        (out,) = self.saved
        if _fused(g, out):
            return Tensor._make(_kernels.sigmoid_backward(g._data, out._data))
        return g * out * (1.0 - out)


class Relu(Op):
    """max(x, 0). As in torch's threshold_backward, the gradient passes wherever the output
    is not <= 0, a nan included: the output is never negative, so that is `out != 0`. With no
    graph to record, the backward is one multiply by that mask (one kernel on the GPU); under
    create_graph it is the same product of Tensors."""

    save_output = True

    def forward(self, a):
        return _xp(a).maximum(a, 0)

    def backward(self, g):
        (out,) = self.saved
        if _fused(g, out):
            return Tensor._make(_kernels.relu_backward(g._data, out._data))
        if not grad_mode.state.enabled:
            return Tensor._make(g._data * (out._data != 0))
        return g * _mask_like(out._data != 0, g)


class Entr(Op):
    """-x log x (torch.special.entr): 0 at 0, -inf below 0; the derivative -(1 + log x) is
    inf at 0 and nan below, as torch's."""

    save_inputs = (0,)

    def forward(self, a):
        xp = _xp(a)
        safe = xp.where(a > 0, a, 1)
        out = xp.where(a > 0, -a * xp.log(safe), xp.where(a == 0, 0, -np.inf))
        return xp.where(xp.isnan(a), a, out).astype(a.dtype, copy=False)

    def backward(self, g):
        (a,) = self.saved
        return g * -(a.log() + 1)


class Erf(Op):
    save_inputs = (0,)

    def forward(self, a):
        if _kernels.active(a):
            return _kernels.erf(a)
        return _special.erf(a)

    def backward(self, g):
        (a,) = self.saved
        return g * _TWO_OVER_SQRTPI * exp(-(a * a))


class Erfc(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _special.erfc(a)

    def backward(self, g):
        (a,) = self.saved
        return g * -_TWO_OVER_SQRTPI * exp(-(a * a))


class Erfinv(Op):
    save_output = True

    def forward(self, a):
        return _special.erfinv(a)

    def backward(self, g):
        (out,) = self.saved
        return g * _SQRTPI_OVER_TWO * exp(out * out)


class _Flat(Op):
    """Piecewise-constant ops (floor, ceil, round, trunc, sign): zero gradient."""

    fn = "floor"

    def forward(self, a):
        return getattr(_xp(a), self.fn)(a)

    def backward(self, g):
        return Tensor._make(_xp(g._data).zeros_like(g._data))


class Floor(_Flat):
    fn = "floor"


class Ceil(_Flat):
    fn = "ceil"


class Trunc(_Flat):
    fn = "trunc"


class Sign(_Flat):
    def forward(self, a):
        return _sign(a)


def _sign(a):
    """numpy's sign, except NaN gives 0 as in torch."""
    xp = _xp(a)
    out = xp.sign(a)
    if a.dtype.kind != "f":
        return out
    return xp.nan_to_num(out, copy=False) if out.ndim else xp.nan_to_num(out)


class Round(_Flat):
    def forward(self, a, decimals=0):
        return _xp(a).round(a, decimals)


class Frac(Op):
    def forward(self, a):
        return a - _xp(a).trunc(a)

    def backward(self, g):
        return g


class Clamp(Op):
    """clamp with scalar or Tensor bounds. torch's gradient rules: input gets it where
    min <= input <= max; min where input < min (and min < max); max where input > max (or
    max < min, where max wins)."""

    save_inputs = (0, 1, 2)

    def forward(self, a, lo=None, hi=None):
        self.a, self.lo, self.hi = meta(a), meta(lo), meta(hi)
        xp = _xp(a)
        try:
            if lo is None:
                return xp.minimum(a, hi)
            if hi is None:
                return xp.maximum(a, lo)
            return xp.minimum(xp.maximum(a, lo), hi)
        except ValueError:
            raise _no_broadcast(a, lo, hi) from None

    def backward(self, g):
        a, lo, hi = self.saved
        ad = a._data
        lo_d = lo._data if isinstance(lo, Tensor) else lo
        hi_d = hi._data if isinstance(hi, Tensor) else hi
        ga = g_lo = g_hi = None
        if self.needs_input_grad[0]:
            if lo_d is None:
                keep = ad <= hi_d
            elif hi_d is None:
                keep = ad >= lo_d
            else:
                keep = (ad >= lo_d) & (ad <= hi_d)
            ga = reduce_grad(g * _mask_like(keep, g), *self.a)
        if self.needs_input_grad[1]:
            pick = ad < lo_d if hi_d is None else (ad < lo_d) & (lo_d < hi_d)
            g_lo = reduce_grad(g * _mask_like(pick, g), *self.lo)
        if self.needs_input_grad[2]:
            pick = ad > hi_d if lo_d is None else (ad > hi_d) | (hi_d < lo_d)
            g_hi = reduce_grad(g * _mask_like(pick, g), *self.hi)
        return ga, g_lo, g_hi


class NanToNum(Op):
    save_inputs = (0,)

    def forward(self, a, nan=0.0, posinf=None, neginf=None):
        return _xp(a).nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)

    def backward(self, g):
        (a,) = self.saved
        return g * _mask_like(_xp(a._data).isfinite(a._data), g)


def _unary(op):
    def fn(input: Tensor) -> Tensor:
        return op.apply(_floating(input))

    fn.__name__ = op.__name__.lower()
    fn.__qualname__ = fn.__name__
    return fn


exp = _unary(Exp)
exp2 = _unary(Exp2)
expm1 = _unary(Expm1)
log = _unary(Log)
log2 = _unary(Log2)
log10 = _unary(Log10)
log1p = _unary(Log1p)
sqrt = _unary(Sqrt)
rsqrt = _unary(Rsqrt)
reciprocal = _unary(Reciprocal)
sin = _unary(Sin)
cos = _unary(Cos)
tan = _unary(Tan)
sinh = _unary(Sinh)
cosh = _unary(Cosh)
tanh = _unary(Tanh)
asin = arcsin = _unary(Asin)
acos = arccos = _unary(Acos)
atan = arctan = _unary(Atan)
asinh = arcsinh = _unary(Asinh)
acosh = arccosh = _unary(Acosh)
atanh = arctanh = _unary(Atanh)
sigmoid = _unary(Sigmoid)
erf = _unary(Erf)
erfc = _unary(Erfc)
erfinv = _unary(Erfinv)
arctan2 = atan2


def neg(input: Tensor) -> Tensor:
    if input._data.dtype == np.bool_:
        raise RuntimeError(
            "Negation, the `-` operator, on a bool tensor is not supported. If you are trying "
            "to invert a mask, use the `~` or `logical_not()` operator instead."
        )
    return Neg.apply(input)


negative = neg


def square(input: Tensor) -> Tensor:
    if input._data.dtype == np.bool_:
        input = input.long()
    return Square.apply(input)


def abs(input: Tensor) -> Tensor:  # noqa: A001 - torch's name
    if input._data.dtype == np.bool_:
        raise NotImplementedError("\"abs_cpu\" not implemented for 'Bool'")
    return Abs.apply(input)


absolute = abs


def relu(input: Tensor) -> Tensor:
    return Relu.apply(input)


def sign(input: Tensor) -> Tensor:
    if input._data.dtype == np.bool_:
        return input.clone()
    return Sign.apply(input)


sgn = sign


def _rounding(op, name: str):
    def fn(input: Tensor) -> Tensor:
        kind = input._data.dtype.kind
        if kind == "f":
            return op.apply(input)
        if kind == "b":
            raise NotImplementedError(f"\"{name}_vml_cpu\" not implemented for 'Bool'")
        return input.clone()  # integers are already whole

    fn.__name__ = fn.__qualname__ = name
    return fn


floor = _rounding(Floor, "floor")
ceil = _rounding(Ceil, "ceil")
trunc = fix = _rounding(Trunc, "trunc")


def round(input: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001 - torch's name
    kind = input._data.dtype.kind
    if kind != "f":
        if kind == "b" or decimals:
            raise NotImplementedError(f"\"round_cpu\" not implemented for '{_dtype_name(input)}'")
        return input.clone()
    return Round.apply(input, decimals=decimals) if decimals else Round.apply(input)


def frac(input: Tensor) -> Tensor:
    if input._data.dtype.kind != "f":
        raise NotImplementedError(f"\"frac_cpu\" not implemented for '{_dtype_name(input)}'")
    return Frac.apply(input)


def clamp(input: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 - torch's names
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    bounds = (min, max)
    if input._data.dtype.kind != "f":  # a float bound promotes an integer input
        for bd in bounds:
            if isinstance(bd, Tensor) and bd._data.dtype.kind == "f":
                input = input.to(bd.dtype)
                break
            if isinstance(bd, float):
                input = input.to(_dtype.get_default_dtype())
                break
    lo, hi = (
        bd.to(input.dtype) if isinstance(bd, Tensor) and bd._data.dtype != input._data.dtype else bd
        for bd in bounds
    )
    return Clamp.apply(input, lo, hi)


clip = clamp


def clamp_min(input: Tensor, min) -> Tensor:  # noqa: A002
    return clamp(input, min=min)


def clamp_max(input: Tensor, max) -> Tensor:  # noqa: A002
    return clamp(input, max=max)


def nan_to_num(input: Tensor, nan: float = 0.0, posinf=None, neginf=None) -> Tensor:
    if input._data.dtype.kind != "f":
        return input.clone()
    return NanToNum.apply(input, nan=nan, posinf=posinf, neginf=neginf)


# ---------------------------------------------------------------- selection
class Where(Op):
    def forward(self, cond, a, b):
        self.cond = cond
        self.a, self.b = meta(a), meta(b)
        try:
            return _xp(cond).where(cond, a, b)
        except ValueError:
            raise _no_broadcast(cond, a, b) from None

    def backward(self, g):
        zero = Tensor._make(_xp(g._data).zeros((), dtype=g._data.dtype))
        c = self.cond
        ga = reduce_grad(where(c, g, zero), *self.a) if self.needs_input_grad[1] else None
        gb = reduce_grad(where(c, zero, g), *self.b) if self.needs_input_grad[2] else None
        return None, ga, gb


def where(condition, input=None, other=None):
    if input is None and other is None:
        from .indexing import nonzero  # noqa: PLC0415

        return nonzero(condition, as_tuple=True)
    cond = condition._data if isinstance(condition, Tensor) else condition
    if not hasattr(cond, "dtype"):
        cond = np.asarray(cond)
    if cond.dtype != np.bool_:
        name = _dtype_name(condition) if isinstance(condition, Tensor) else str(cond.dtype)
        raise RuntimeError(
            f"where expected condition to be a boolean tensor, but got a tensor with dtype {name}"
        )
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        # two scalars: the result takes the scalars' dtype (float -> default float)
        xp = _xp(cond)
        scalars = (input, other)
        if builtins.any(isinstance(s, float) for s in scalars):
            dt = _dtype.get_default_dtype().np
        elif builtins.all(isinstance(s, bool) for s in scalars):
            dt = np.bool_
        else:
            dt = np.int64
        return Tensor._make(
            xp.where(cond, xp.asarray(input, dtype=dt), xp.asarray(other, dtype=dt))
        )
    a, b = _prep(input, other)
    return Where.apply(cond, a, b)


# ---------------------------------------------------------------- comparisons (no grad)
def _operands(input, other):
    a, b = _prep(input, other)
    return (a._data if isinstance(a, Tensor) else a), (b._data if isinstance(b, Tensor) else b)


def _wrap(out) -> Tensor:
    """numpy returns scalars for 0-d operands; a Tensor always holds an array."""
    return Tensor._make(out if is_array(out) else np.asarray(out))


def _compare(ufunc: str):
    def op(input, other):
        ad, bd = _operands(input, other)
        try:
            return _wrap(getattr(_xp(ad if hasattr(ad, "shape") else bd), ufunc)(ad, bd))
        except ValueError:
            raise _no_broadcast(ad, bd) from None

    op.__name__ = op.__qualname__ = ufunc
    return op


eq = _compare("equal")
ne = not_equal = _compare("not_equal")
lt = less = _compare("less")
le = less_equal = _compare("less_equal")
gt = greater = _compare("greater")
ge = greater_equal = _compare("greater_equal")


def _eq_method(self, other):
    if (
        other is None
        or not isinstance(other, (Tensor, int, float, bool, np.ndarray, np.generic))
        and not hasattr(other, "__array__")
    ):
        return False
    return eq(self, other)


def _ne_method(self, other):
    if (
        other is None
        or not isinstance(other, (Tensor, int, float, bool, np.ndarray, np.generic))
        and not hasattr(other, "__array__")
    ):
        return True
    return ne(self, other)


def _logical(ufunc: str):
    def op(input, other):
        _tensor_arg(other, ufunc, "other")
        a, b = input._data, other._data
        try:
            return Tensor._make(getattr(_xp(a), ufunc)(a, b))
        except ValueError:
            raise _no_broadcast(a, b) from None

    op.__name__ = op.__qualname__ = ufunc
    return op


logical_and = _logical("logical_and")
logical_or = _logical("logical_or")
logical_xor = _logical("logical_xor")


def logical_not(input: Tensor) -> Tensor:
    return Tensor._make(_xp(input._data).logical_not(input._data))


def _bitwise(ufunc: str, kernel: str):
    def op(input, other):
        a, b = _prep(input, other)
        for t in (a, b):
            if isinstance(t, Tensor) and t._data.dtype.kind == "f":
                raise NotImplementedError(
                    f"\"{kernel}_cpu\" not implemented for '{_dtype_name(t)}'"
                )
            if isinstance(t, float):
                raise TypeError(
                    f"{ufunc}(): argument 'other' must be an integer or bool, not float"
                )
        ad = a._data if isinstance(a, Tensor) else a
        bd = b._data if isinstance(b, Tensor) else b
        try:
            return _wrap(getattr(_xp(ad if hasattr(ad, "shape") else bd), ufunc)(ad, bd))
        except ValueError:
            raise _no_broadcast(ad, bd) from None

    op.__name__ = op.__qualname__ = kernel
    return op


bitwise_and = _bitwise("bitwise_and", "bitwise_and")
bitwise_or = _bitwise("bitwise_or", "bitwise_or")
bitwise_xor = _bitwise("bitwise_xor", "bitwise_xor")


def bitwise_not(input: Tensor) -> Tensor:
    if input._data.dtype.kind == "f":
        raise TypeError(
            "~ (operator.invert) is only implemented on integer and Boolean-type tensors"
        )
    return Tensor._make(_xp(input._data).invert(input._data))


def _predicate(ufunc: str):
    def op(input: Tensor) -> Tensor:
        return Tensor._make(getattr(_xp(input._data), ufunc)(input._data))

    op.__name__ = op.__qualname__ = ufunc
    return op


isnan = _predicate("isnan")
isinf = _predicate("isinf")
isfinite = _predicate("isfinite")
isposinf = _predicate("isposinf")
isneginf = _predicate("isneginf")
signbit = _predicate("signbit")


def _check_same_dtype(input: Tensor, other: Tensor) -> None:
    if input._data.dtype != other._data.dtype:
        raise RuntimeError(f"{_dtype_name(input)} did not match {_dtype_name(other)}")


def isclose(
    input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> Tensor:
    _tensor_arg(other, "isclose", "other")
    _check_same_dtype(input, other)
    a, b = input._data, other._data
    xp = _xp(a)
    try:
        if a.dtype == np.bool_:
            return _wrap(a == b)
        if a.dtype.kind != "f":
            return _wrap(xp.abs(a - b) <= atol + rtol * xp.abs(b))
        return _wrap(xp.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))
    except ValueError:
        raise _no_broadcast(a, b) from None


def allclose(
    input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> bool:
    return bool(isclose(input, other, rtol, atol, equal_nan)._data.all())


def equal(input: Tensor, other: Tensor) -> bool:
    _tensor_arg(other, "equal", "other")
    a, b = input._data, other._data
    return a.shape == b.shape and bool((a == b).all())


_METHOD_NAMES = (
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide",
    "floor_divide", "remainder", "fmod", "pow", "float_power", "maximum", "minimum", "fmax",
    "fmin", "atan2", "arctan2", "hypot", "logaddexp", "xlogy", "lerp", "addcmul", "addcdiv", "neg", "negative", "exp", "exp2",
    "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "reciprocal", "square", "abs",
    "absolute", "sin", "cos", "tan", "sinh", "cosh", "tanh", "asin", "acos", "atan", "asinh",
    "acosh", "atanh", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "sigmoid",
    "relu", "erf", "erfc", "erfinv", "sign", "sgn", "floor", "ceil", "trunc", "fix", "round",
    "frac", "clamp", "clip", "clamp_min", "clamp_max", "nan_to_num", "eq", "ne", "lt", "le",
    "gt", "ge", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
    "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor",
    "bitwise_not", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit", "isclose",
    "allclose", "equal",
)  # fmt: skip

divide = true_divide = div
multiply = mul
subtract = sub

TENSOR_METHODS = {name: globals()[name] for name in _METHOD_NAMES}
TENSOR_METHODS.update({
    "__add__": add,
    "__radd__": lambda self, other: add(other, self),
    "__sub__": sub,
    "__rsub__": lambda self, other: sub(other, self),
    "__mul__": mul,
    "__rmul__": lambda self, other: mul(other, self),
    "__truediv__": div,
    "__rtruediv__": lambda self, other: div(other, self),
    "__floordiv__": floor_divide,
    "__rfloordiv__": lambda self, other: floor_divide(other, self),
    "__mod__": remainder,
    "__rmod__": lambda self, other: remainder(other, self),
    "__pow__": pow,
    "__rpow__": lambda self, other: pow(other, self),
    "__neg__": neg,
    "__pos__": lambda self: self,
    "__abs__": abs,
    "__invert__": bitwise_not,
    "__and__": bitwise_and,
    "__rand__": lambda self, other: bitwise_and(other, self),
    "__or__": bitwise_or,
    "__ror__": lambda self, other: bitwise_or(other, self),
    "__xor__": bitwise_xor,
    "__rxor__": lambda self, other: bitwise_xor(other, self),
    "__eq__": _eq_method,
    "__ne__": _ne_method,
    "__lt__": lt,
    "__le__": le,
    "__gt__": gt,
    "__ge__": ge,
    "where": lambda self, condition, other: where(condition, self, other),
})  # fmt: skip

__all__ = [*_METHOD_NAMES, "where"]
