"""Numerical calculus on sampled functions: torch.gradient (central differences, numpy's
formulas, uniform or per-point spacing) and cumulative_trapezoid (the running trapezoidal
rule; trapezoid itself is in `composite`). Both are compositions of Tensor ops, so they are
differentiable in the samples (and in coordinate spacings).
"""

from __future__ import annotations

from ..tensor import Tensor, _wrap_dim
from .join import cat
from .reduce import cumsum

__all__ = ["cumulative_trapezoid", "gradient"]


def _along(t: Tensor, dim: int, start: int, length: int) -> Tensor:
    return t.narrow(dim, start, length)


def _as_column(values: Tensor, dim: int, ndim: int) -> Tensor:
    """A 1-D tensor shaped to broadcast along `dim` of an ndim tensor."""
    shape = [1] * ndim
    shape[dim] = values.shape[0]
    return values.reshape(*shape)


def _gradient_along(f: Tensor, dim: int, spacing, edge_order: int) -> Tensor:
    n = f.shape[dim]
    if n < edge_order + 1:
        raise RuntimeError(
            "torch.gradient expected each dimension size to be at least edge_order+1"
        )
    if isinstance(spacing, Tensor) and spacing.ndim == 1:  # coordinates of the samples
        x = spacing
        if x.shape[0] != n:
            raise RuntimeError(
                f"torch.gradient expected each tensor to be on the same device and the same "
                f"size as the dimension it spans ({x.shape[0]} vs {n})"
            )
        dx = x[1:] - x[:-1]
        dx1, dx2 = _as_column(dx[:-1], dim, f.ndim), _as_column(dx[1:], dim, f.ndim)
        a = -dx2 / (dx1 * (dx1 + dx2))
        b = (dx2 - dx1) / (dx1 * dx2)
        c = dx1 / (dx2 * (dx1 + dx2))
        inner = (
            a * _along(f, dim, 0, n - 2)
            + b * _along(f, dim, 1, n - 2)
            + c * _along(f, dim, 2, n - 2)
        )
        h0, hn = dx[0], dx[-1]
        if edge_order == 1:
            first = (_along(f, dim, 1, 1) - _along(f, dim, 0, 1)) / h0
            last = (_along(f, dim, n - 1, 1) - _along(f, dim, n - 2, 1)) / hn
        else:
            d1, d2 = dx[0], dx[1]
            a0 = -(2 * d1 + d2) / (d1 * (d1 + d2))
            b0 = (d1 + d2) / (d1 * d2)
            c0 = -d1 / (d2 * (d1 + d2))
            first = (
                a0 * _along(f, dim, 0, 1) + b0 * _along(f, dim, 1, 1) + c0 * _along(f, dim, 2, 1)
            )
            e1, e2 = dx[-2], dx[-1]
            an = e2 / (e1 * (e1 + e2))
            bn = -(e2 + e1) / (e1 * e2)
            cn = (2 * e2 + e1) / (e2 * (e1 + e2))
            last = (
                an * _along(f, dim, n - 3, 1)
                + bn * _along(f, dim, n - 2, 1)
                + cn * _along(f, dim, n - 1, 1)
            )
        return cat([first, inner, last], dim)
    h = float(spacing) if not isinstance(spacing, Tensor) else spacing
    inner = (_along(f, dim, 2, n - 2) - _along(f, dim, 0, n - 2)) / (2 * h)
    if edge_order == 1:
        first = (_along(f, dim, 1, 1) - _along(f, dim, 0, 1)) / h
        last = (_along(f, dim, n - 1, 1) - _along(f, dim, n - 2, 1)) / h
    else:
        first = (
            -1.5 * _along(f, dim, 0, 1) + 2 * _along(f, dim, 1, 1) - 0.5 * _along(f, dim, 2, 1)
        ) / h
        last = (
            0.5 * _along(f, dim, n - 3, 1)
            - 2 * _along(f, dim, n - 2, 1)
            + 1.5 * _along(f, dim, n - 1, 1)
        ) / h
    return cat([first, inner, last], dim)


def gradient(input: Tensor, *, spacing=1, dim=None, edge_order: int = 1) -> tuple:
    """The derivative of sampled values along each of `dim` (all dims by default): central
    differences inside, one-sided at the ends (first or second order)."""
    if edge_order not in (1, 2):
        raise RuntimeError(
            f"torch.gradient only supports edge_order=1 and edge_order=2, got {edge_order}"
        )
    if not input.is_floating_point():
        input = input.double() if input.dtype.name == "int64" else input.float()
    if dim is None:
        dims = list(range(input.ndim))
    elif isinstance(dim, int):
        dims = [_wrap_dim(dim, input.ndim)]
    else:
        dims = [_wrap_dim(d, input.ndim) for d in dim]
    if isinstance(spacing, (list, tuple)):
        if len(spacing) != len(dims):
            raise RuntimeError(
                f"torch.gradient expected spacing to be unspecified, a scalar or it's spacing "
                f"and dim arguments to have the same length, but got a spacing argument of "
                f"length {len(spacing)} and a dim argument of length {len(dims)}."
            )
        spacings = list(spacing)
    else:
        spacings = [spacing] * len(dims)
    return tuple(_gradient_along(input, d, s, edge_order) for d, s in zip(dims, spacings))


def cumulative_trapezoid(y: Tensor, x: Tensor | None = None, *, dx=None, dim: int = -1) -> Tensor:
    """The running trapezoidal integral along dim (one value fewer than the samples)."""
    dim = _wrap_dim(dim, y.ndim)
    n = y.shape[dim]
    if n == 0:
        return y.narrow(dim, 0, 0)
    left, right = y.narrow(dim, 0, n - 1), y.narrow(dim, 1, n - 1)
    if x is not None:
        if x.ndim == 1:
            x = _as_column(x, dim, y.ndim)
        xd = _wrap_dim(dim, x.ndim)
        areas = (left + right) * (x.narrow(xd, 1, n - 1) - x.narrow(xd, 0, n - 1)) / 2
    else:
        areas = (left + right) * ((1 if dx is None else dx) / 2)
    return cumsum(areas, dim)


TENSOR_METHODS: dict = {}
