"""Elementwise ops. Each class is one op: forward on arrays, backward on Tensors.

Binary ops broadcast; their backward sums the gradient back to each input's shape
(`reduce_grad`). Backward formulas use Tensor ops only, so they are differentiable again.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor
from ._util import meta, prepare_binary, reduce_grad


def _xp(x):
    return xp_of(x)


# ---------------------------------------------------------------- binary arithmetic
class Add(Op):
    def forward(self, a, b, alpha=1):
        self.a, self.b, self.alpha = meta(a), meta(b), alpha
        return a + b if alpha == 1 else a + alpha * b

    def backward(self, g):
        ga = reduce_grad(g, *self.a) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            gb = reduce_grad(g if self.alpha == 1 else g * self.alpha, *self.b)
        return ga, gb


class Sub(Op):
    def forward(self, a, b, alpha=1):
        self.a, self.b, self.alpha = meta(a), meta(b), alpha
        return a - b if alpha == 1 else a - alpha * b

    def backward(self, g):
        ga = reduce_grad(g, *self.a) if self.needs_input_grad[0] else None
        gb = reduce_grad(-g if self.alpha == 1 else g * -self.alpha, *self.b) if self.needs_input_grad[1] else None
        return ga, gb


class Mul(Op):
    save_inputs = (0, 1)

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        return a * b

    def backward(self, g):
        a, b = self.saved
        ga = reduce_grad(g * b, *self.a) if self.needs_input_grad[0] else None
        gb = reduce_grad(g * a, *self.b) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Op):
    save_inputs = (0, 1)

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        return a / b

    def backward(self, g):
        a, b = self.saved
        ga = reduce_grad(g / b, *self.a) if self.needs_input_grad[0] else None
        gb = reduce_grad(-g * a / (b * b), *self.b) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(Op):
    save_inputs = (0, 1)
    save_output = True

    def forward(self, a, b):
        self.a, self.b = meta(a), meta(b)
        return a**b

    def backward(self, g):
        a, b, out = self.saved
        ga = gb = None
        if self.needs_input_grad[0]:
            if isinstance(b, Tensor):
                ga = g * b * a ** (b - 1)
            elif b == 0:
                ga = g * 0.0
            else:
                ga = g * b * a ** (b - 1) if b != 2 else g * 2.0 * a
            ga = reduce_grad(ga, *self.a)
        if self.needs_input_grad[1]:
            la = log(a) if isinstance(a, Tensor) else math.log(a) if a > 0 else float("-inf")
            gb = g * out * la
            if not isinstance(a, Tensor) and a == 0:
                gb = g * 0.0
            elif isinstance(a, Tensor):
                gb = where(a == 0, g * 0.0, gb) if bool((a._data == 0).any()) else gb
            gb = reduce_grad(gb, *self.b)
        return ga, gb


def _prep(a, b):
    return prepare_binary(a, b)


def add(input, other, *, alpha=1):
    a, b = _prep(input, other)
    return Add.apply(a, b, alpha=alpha) if alpha != 1 else Add.apply(a, b)


def sub(input, other, *, alpha=1):
    a, b = _prep(input, other)
    if isinstance(a, Tensor) and a.dtype.name == "bool" and isinstance(b, Tensor) and b.dtype.name == "bool":
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported.")
    return Sub.apply(a, b, alpha=alpha) if alpha != 1 else Sub.apply(a, b)


def mul(input, other):
    a, b = _prep(input, other)
    return Mul.apply(a, b)


def div(input, other, *, rounding_mode=None):
    a, b = _prep(input, other)
    if rounding_mode is not None:
        return _rounded_div(a, b, rounding_mode)
    # true division of integers gives the default float dtype, as in torch
    if isinstance(a, Tensor) and a._data.dtype.kind != "f" and (not isinstance(b, Tensor) or b._data.dtype.kind != "f"):
        a = a.float()
    elif isinstance(b, Tensor) and b._data.dtype.kind != "f" and not isinstance(a, Tensor):
        b = b.float()
    return Div.apply(a, b)


def _rounded_div(a, b, mode):
    ad = a._data if isinstance(a, Tensor) else a
    bd = b._data if isinstance(b, Tensor) else b
    if mode == "floor":
        out = ad // bd
    elif mode == "trunc":
        q = ad / bd
        out = _xp(q).trunc(q).astype(np.result_type(ad, bd), copy=False)
    else:
        raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{mode}'")
    return Tensor._make(np.asarray(out) if not hasattr(out, "shape") else out)


def floor_divide(input, other):
    a, b = _prep(input, other)
    return _rounded_div(a, b, "floor")


def remainder(input, other):
    a, b = _prep(input, other)
    return sub(a, mul(_rounded_div(a, b, "floor"), b))


fmod = remainder


def pow(input, exponent):
    a, b = _prep(input, exponent)
    if isinstance(a, Tensor) and isinstance(b, int) and not isinstance(b, bool) and b < 0 and a._data.dtype.kind in "iu":
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    return Pow.apply(a, b)


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


class Log(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).log(a)

    def backward(self, g):
        (a,) = self.saved
        return g / a


class Sqrt(Op):
    save_output = True

    def forward(self, a):
        return _xp(a).sqrt(a)

    def backward(self, g):
        (out,) = self.saved
        return g / (2.0 * out)


class Abs(Op):
    save_inputs = (0,)

    def forward(self, a):
        return _xp(a).abs(a)

    def backward(self, g):
        (a,) = self.saved
        return g * sign(a)


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


class Tanh(Op):
    save_output = True

    def forward(self, a):
        return _xp(a).tanh(a)

    def backward(self, g):
        (out,) = self.saved
        return g * (1.0 - out * out)


class Sigmoid(Op):
    save_output = True

    def forward(self, a):
        xp = _xp(a)
        # split by sign so neither branch overflows
        e = xp.exp(-xp.abs(a))
        return xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)

    def backward(self, g):
        (out,) = self.saved
        return g * out * (1.0 - out)


class Relu(Op):
    save_output = True

    def forward(self, a):
        return _xp(a).maximum(a, 0)

    def backward(self, g):
        (out,) = self.saved
        return g * (out > 0)


class Sign(Op):
    def forward(self, a):
        return _xp(a).sign(a)

    def backward(self, g):
        return g * 0.0


class Clamp(Op):
    save_inputs = (0,)

    def forward(self, a, min=None, max=None):
        self.lo, self.hi = min, max
        return _xp(a).clip(a, min, max)

    def backward(self, g):
        (a,) = self.saved
        mask = a._data == a._data  # all True, same shape
        if self.lo is not None:
            mask = mask & (a._data >= self.lo)
        if self.hi is not None:
            mask = mask & (a._data <= self.hi)
        return g * Tensor._make(mask)


def neg(x):
    return Neg.apply(x)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def rsqrt(x):
    return 1.0 / sqrt(x)


def abs(x):  # noqa: A001 - torch's name
    return Abs.apply(x)


def sin(x):
    return Sin.apply(x)


def cos(x):
    return Cos.apply(x)


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def relu(x):
    return Relu.apply(x)


def sign(x):
    return Sign.apply(x)


def clamp(x, min=None, max=None):
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    return Clamp.apply(x, min=min, max=max)


clip = clamp


class Where(Op):
    def forward(self, cond, a, b):
        self.cond = cond
        self.a, self.b = meta(a), meta(b)
        return _xp(cond).where(cond, a, b)

    def backward(self, g):
        zero = g * 0.0
        c = Tensor._make(self.cond)
        ga = reduce_grad(where(c, g, zero), *self.a) if self.needs_input_grad[1] else None
        gb = reduce_grad(where(c, zero, g), *self.b) if self.needs_input_grad[2] else None
        return None, ga, gb


def where(condition, input=None, other=None):
    if input is None and other is None:
        from .indexing import nonzero  # noqa: PLC0415

        return nonzero(condition, as_tuple=True)
    cond = condition._data if isinstance(condition, Tensor) else condition
    a, b = _prep(input, other)
    if cond.dtype != np.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {condition.dtype.name.capitalize()}")
    return Where.apply(cond, a, b)


# ---------------------------------------------------------------- comparisons (no grad)
def _compare(fn):
    def op(input, other):
        a, b = _prep(input, other)
        ad = a._data if isinstance(a, Tensor) else a
        bd = b._data if isinstance(b, Tensor) else b
        out = fn(ad, bd)
        return Tensor._make(out if hasattr(out, "shape") and not isinstance(out, np.generic) else np.asarray(out))

    return op


eq = _compare(lambda a, b: a == b)
ne = _compare(lambda a, b: a != b)
lt = _compare(lambda a, b: a < b)
le = _compare(lambda a, b: a <= b)
gt = _compare(lambda a, b: a > b)
ge = _compare(lambda a, b: a >= b)


def _eq_method(self, other):
    if other is None or not isinstance(other, (Tensor, int, float, bool, np.ndarray, np.generic)) and not hasattr(other, "__array__"):
        return False
    return eq(self, other)


def _ne_method(self, other):
    if other is None or not isinstance(other, (Tensor, int, float, bool, np.ndarray, np.generic)) and not hasattr(other, "__array__"):
        return True
    return ne(self, other)


TENSOR_METHODS = {
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
    "__pow__": pow,
    "__rpow__": lambda self, other: pow(other, self),
    "__neg__": neg,
    "__pos__": lambda self: self,
    "__abs__": abs,
    "__eq__": _eq_method,
    "__ne__": _ne_method,
    "__lt__": lt,
    "__le__": le,
    "__gt__": gt,
    "__ge__": ge,
    "add": add,
    "sub": sub,
    "mul": mul,
    "div": div,
    "true_divide": div,
    "floor_divide": floor_divide,
    "remainder": remainder,
    "pow": pow,
    "neg": neg,
    "exp": exp,
    "log": log,
    "sqrt": sqrt,
    "rsqrt": rsqrt,
    "abs": abs,
    "sin": sin,
    "cos": cos,
    "tanh": tanh,
    "sigmoid": sigmoid,
    "relu": relu,
    "sign": sign,
    "clamp": clamp,
    "clip": clamp,
    "eq": eq,
    "ne": ne,
    "lt": lt,
    "le": le,
    "gt": gt,
    "ge": ge,
    "where": lambda self, condition, other: where(condition, self, other),
}

__all__ = [
    "add", "sub", "mul", "div", "floor_divide", "remainder", "fmod", "pow", "neg", "exp", "log",
    "sqrt", "rsqrt", "abs", "sin", "cos", "tanh", "sigmoid", "relu", "sign", "clamp", "clip",
    "where", "eq", "ne", "lt", "le", "gt", "ge",
]
