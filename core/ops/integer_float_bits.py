"""Integer and floating-point bit functions: gcd, lcm, the bit shifts (and the << and >>
operators), ldexp, frexp and nextafter. None but ldexp is differentiable (torch defines no
gradient for them); ldexp is input * 2**other, a product of Tensor ops."""

from __future__ import annotations

import numpy as np

from ..backend import xp_of
from ..tensor import Tensor
from ._select import return_type
from ._util import result_dtype

_frexp_t = return_type("frexp", ("mantissa", "exponent"))


def _operands(name: str, input, other, integers: bool):
    """The two operands as arrays of one dtype (torch's promotion), checked for kind."""
    a = input._data if isinstance(input, Tensor) else np.asarray(input)
    b = other._data if isinstance(other, Tensor) else other
    xp = xp_of(a)
    b = xp.asarray(b)
    dtype = result_dtype(a.dtype, b.dtype) if b.ndim or isinstance(other, Tensor) else a.dtype
    if integers and dtype.kind not in "iub":
        type_name = {"float32": "Float", "float64": "Double"}.get(dtype.name, dtype.name)
        raise NotImplementedError(f"\"{name}_cpu\" not implemented for '{type_name}'")
    return xp, a.astype(dtype, copy=False), b.astype(dtype, copy=False)


def gcd(input: Tensor, other: Tensor) -> Tensor:
    """The greatest common divisor, elementwise (integers)."""
    xp, a, b = _operands("gcd", input, other, integers=True)
    return Tensor._make(xp.gcd(a, b))


def lcm(input: Tensor, other: Tensor) -> Tensor:
    """The least common multiple, elementwise (integers)."""
    xp, a, b = _operands("lcm", input, other, integers=True)
    return Tensor._make(xp.lcm(a, b))


def bitwise_left_shift(input, other) -> Tensor:
    xp, a, b = _operands("lshift", input, other, integers=True)
    return Tensor._make(xp.left_shift(a, b))


def bitwise_right_shift(input, other) -> Tensor:
    xp, a, b = _operands("rshift", input, other, integers=True)
    return Tensor._make(xp.right_shift(a, b))


def ldexp(input: Tensor, other: Tensor) -> Tensor:
    """input * 2**other."""
    x = input if input.is_floating_point() else input.float()
    return x * (2.0 ** other.to(x.dtype))


def frexp(input: Tensor):
    """(mantissa, exponent) with input = mantissa * 2**exponent, |mantissa| in [0.5, 1)."""
    if not input.is_floating_point():
        raise RuntimeError(
            "torch.frexp() only supports floating-point dtypes, but got "
            f"{str(input.dtype).replace('shardgrad.', '').capitalize()}"
        )
    mantissa, exponent = xp_of(input._data).frexp(input._data)
    return _frexp_t(Tensor._make(mantissa), Tensor._make(exponent.astype(np.int32)))


def nextafter(input: Tensor, other: Tensor) -> Tensor:
    """The next representable value after input towards other."""
    xp, a, b = _operands("nextafter", input, other, integers=False)
    return Tensor._make(xp.nextafter(a, b))


TENSOR_METHODS = {
    "gcd": gcd,
    "lcm": lcm,
    "bitwise_left_shift": bitwise_left_shift,
    "bitwise_right_shift": bitwise_right_shift,
    "__lshift__": bitwise_left_shift,
    "__rshift__": bitwise_right_shift,
    "ldexp": ldexp,
    "frexp": frexp,
    "nextafter": nextafter,
}

__all__ = [
    "bitwise_left_shift", "bitwise_right_shift", "frexp", "gcd", "lcm", "ldexp", "nextafter",
]  # fmt: skip
