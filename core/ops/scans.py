"""Running maxima and minima (`cummax`, `cummin`) and the running log-sum-exp
(`logcumsumexp`); `cumsum` and `cumprod` live with the reductions.

cummax's indices follow torch's loop: a value at least as large as the running maximum takes
over (so ties go to the latest position), and a nan takes over and is never displaced. Its
values are gathered at those indices, so each output's gradient goes to the position it came
from. logcumsumexp runs numpy's `logaddexp.accumulate`, stable at any magnitude, and its
backward is torch's (a log-space reverse scan for each sign of the gradient).
"""

from __future__ import annotations

import numpy as np

from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor, _wrap_dim
from ._select import return_type
from .elementwise import where
from .indexing import gather

_cummax_t = return_type("cummax")
_cummin_t = return_type("cummin")


def _accumulate(ufunc_name: str, x, axis: int):
    """`xp.<ufunc>.accumulate(x, axis)` on any array module."""
    xp = xp_of(x)
    combine = getattr(xp, ufunc_name)
    if xp is np:
        return combine.accumulate(x, axis=axis)
    out = xp.ascontiguousarray(x).copy()
    n = out.shape[axis]
    step = 1
    while step < n:  # out[i] combines x[i - 2*step + 1 .. i] after this pass
        later = [slice(None)] * out.ndim
        earlier = [slice(None)] * out.ndim
        later[axis], earlier[axis] = slice(step, None), slice(None, n - step)
        out[tuple(later)] = combine(out[tuple(later)], out[tuple(earlier)])
        step *= 2
    return out


def _running_extreme(input: Tensor, dim: int, larger: bool):
    if input.ndim == 0:
        zero = Tensor._make(xp_of(input._data).zeros((), dtype=np.int64))
        return input * 1, zero
    dim = _wrap_dim(dim, input.ndim)
    x = input._data
    xp = xp_of(x)
    n = x.shape[dim]
    shape = [1] * x.ndim
    shape[dim] = n
    positions = xp.arange(n, dtype=np.int64).reshape(shape)
    if x.dtype.kind == "b":
        x = x.astype(np.int8)
    running = _accumulate("maximum" if larger else "minimum", x, dim)
    takes_over = x == running  # a new extreme, or one equal to it
    last = _accumulate("maximum", xp.where(takes_over, positions, 0), dim)
    if x.dtype.kind == "f":
        nan_at = _accumulate("maximum", xp.where(xp.isnan(x), positions, -1), dim)
        last = xp.where(nan_at >= 0, nan_at, last)
    indices = Tensor._make(xp.ascontiguousarray(last))
    return gather(input, dim, indices), indices


def cummax(input: Tensor, dim: int):
    return _cummax_t(*_running_extreme(input, dim, larger=True))


def cummin(input: Tensor, dim: int):
    return _cummin_t(*_running_extreme(input, dim, larger=False))


class LogCumSumExp(Op):
    save_inputs = (0,)
    save_output = True

    def forward(self, a, dim=0):
        self.dim = dim
        if a.ndim == 0:
            return a.copy()
        return _accumulate("logaddexp", a, dim)

    def backward(self, g):
        x, out = self.saved
        if x.ndim == 0:
            return g
        dim = self.dim
        lowest = float(np.finfo(g._data.dtype).min)

        def reverse_scan(t: Tensor) -> Tensor:
            return LogCumSumExp.apply(t.flip(dim), dim=dim).flip(dim)

        log_abs = g.abs().log()
        positive = where(g._data > 0, log_abs, lowest)
        negative = where(g._data < 0, log_abs, lowest)
        return (reverse_scan(positive - out) + x).exp() - (reverse_scan(negative - out) + x).exp()


def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """log(cumsum(exp(x))) along dim, without overflow or underflow."""
    if input._data.dtype.kind != "f":
        input = input.float()
    dim = _wrap_dim(dim, max(input.ndim, 1))
    return LogCumSumExp.apply(input, dim=dim)


TENSOR_METHODS = {"cummax": cummax, "cummin": cummin, "logcumsumexp": logcumsumexp}

__all__ = ["cummax", "cummin", "logcumsumexp"]
