"""Matrix products. `matmul` covers torch's shape cases (1-D·1-D, 1-D·2-D, 2-D·1-D, batched
with broadcasting); `linear` is the fused x @ W.T + b that nn.Linear uses, so a layer costs one
GEMM forward and two backward."""

from __future__ import annotations

from ..autograd.node import Op
from ..tensor import Tensor
from ._util import check_same_device, reduce_grad, sum_to


class Matmul(Op):
    save_inputs = (0, 1)

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a @ b

    def backward(self, g):
        a, b = self.saved
        ga = gb = None
        a_nd, b_nd = len(self.a_shape), len(self.b_shape)
        if a_nd == 1 and b_nd == 1:  # dot
            ga = g * b if self.needs_input_grad[0] else None
            gb = g * a if self.needs_input_grad[1] else None
            return ga, gb
        if a_nd == 1:  # (k) @ (..., k, n) -> (..., n)
            if self.needs_input_grad[0]:
                ga = sum_to((g.unsqueeze(-2) @ b.mT).squeeze(-2), self.a_shape)
            if self.needs_input_grad[1]:
                gb = sum_to(a.unsqueeze(-1) * g.unsqueeze(-2), self.b_shape)
            return ga, gb
        if b_nd == 1:  # (..., m, k) @ (k) -> (..., m)
            if self.needs_input_grad[0]:
                ga = sum_to(g.unsqueeze(-1) * b, self.a_shape)
            if self.needs_input_grad[1]:
                gb = sum_to((a.mT @ g.unsqueeze(-1)).squeeze(-1), self.b_shape)
            return ga, gb
        if self.needs_input_grad[0]:
            ga = sum_to(g @ b.mT, self.a_shape)
        if self.needs_input_grad[1]:
            if a_nd == 2 and b_nd == 2:
                gb = a.mT @ g
            else:
                gb = sum_to(a.mT @ g, self.b_shape)
        return ga, gb


def matmul(input: Tensor, other: Tensor) -> Tensor:
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("matmul(): argument 'other' must be Tensor")
    check_same_device(input._data, other._data)
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError(
            f"both arguments to matmul need to be at least 1D, but they are {input.ndim}D and {other.ndim}D"
        )
    if input._data.dtype != other._data.dtype:
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {input.dtype.name} != {other.dtype.name}"
        )
    k_a = input.shape[-1]
    k_b = other.shape[-2] if other.ndim > 1 else other.shape[0]
    if k_a != k_b:
        if input.ndim == 1 and other.ndim == 1:
            raise RuntimeError(
                "inconsistent tensor size, expected tensor [%d] and src [%d] to have the same "
                "number of elements, but got %d and %d elements respectively" % (k_a, k_b, k_a, k_b)
            )
        a_shape = "x".join(map(str, input.shape if input.ndim > 1 else (1, k_a)))
        b_shape = "x".join(map(str, other.shape if other.ndim > 1 else (k_b, 1)))
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a_shape} and {b_shape})")
    return Matmul.apply(input, other)


class Linear(Op):
    save_inputs = (0, 1)

    def forward(self, x, w, b=None):
        self.x_shape, self.has_bias = x.shape, b is not None
        self.b_meta = (b.shape, b.dtype) if b is not None else None
        out = x @ w.T
        if b is not None:
            out += b
        return out

    def backward(self, g):
        x, w = self.saved
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = g @ w
        if self.needs_input_grad[1]:
            if g.ndim == 2:
                gw = g.mT @ x
            else:
                gw = g.reshape(-1, g.shape[-1]).mT @ x.reshape(-1, x.shape[-1])
        if self.has_bias and self.needs_input_grad[2]:
            gb = reduce_grad(g, *self.b_meta)
        return gx, gw, gb


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    if input.shape[-1] != weight.shape[-1]:
        a = "x".join(map(str, (input.numel() // max(input.shape[-1], 1), input.shape[-1])))
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({a} and {weight.shape[1]}x{weight.shape[0]})"
        )
    check_same_device(input._data, weight._data)
    if input._data.dtype != weight._data.dtype:
        raise RuntimeError(
            f"mat1 and mat2 must have the same dtype, but got {input.dtype.name.capitalize()} and "
            f"{weight.dtype.name.capitalize()}"
        )
    if bias is None:
        return Linear.apply(input, weight)
    return Linear.apply(input, weight, bias)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError("self must be a matrix")
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    return matmul(input, mat2)


def dot(input: Tensor, other: Tensor) -> Tensor:
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    return matmul(input, other)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    return matmul(input, vec)


TENSOR_METHODS = {
    "__matmul__": matmul,
    "__rmatmul__": lambda self, other: matmul(other, self),
    "matmul": matmul,
    "mm": mm,
    "bmm": bmm,
    "dot": dot,
    "mv": mv,
}

__all__ = ["matmul", "mm", "bmm", "dot", "mv"]
