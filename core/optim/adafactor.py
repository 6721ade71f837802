"""Adafactor (Shazeer and Stern, 2018): Adam's second moment kept as a row factor and a
column factor for matrices (so its memory is m + n, not m n), a step size relative to the
parameters' RMS, and updates clipped by their own RMS; `torch.optim.Adafactor`'s update,
operation by operation (its `_single_tensor_adafactor`)."""

from __future__ import annotations

import math

import numpy as np

from ..backend import xp_of
from ..tensor import Tensor
from ._arrays import lerp_
from .optimizer import Optimizer, ParamsT, bump_step, scalar_tensor, to_scalar

__all__ = ["Adafactor"]


def _rms(xp, a) -> float:
    return float(xp.sqrt((a * a).sum())) / math.sqrt(a.size)


class Adafactor(Optimizer):
    """State per parameter: `step`, and `row_var` and `col_var` (a matrix, or any tensor of
    two or more dimensions, factored over its last two) or `variance` (a vector)."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {
            "lr": lr, "beta2_decay": beta2_decay, "eps": eps, "d": d,
            "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize,
        }  # fmt: skip
        super().__init__(params, defaults)

    def _state_for(self, p: Tensor) -> dict:
        state = self.state[p]
        if len(state) == 0:
            state["step"] = scalar_tensor(0.0)
            grad = p.grad._data
            xp = xp_of(grad)
            if grad.ndim > 1:
                state["row_var"] = Tensor._make(xp.zeros(grad.shape[:-1] + (1,), grad.dtype))
                col_shape = grad.shape[:-2] + (1,) + grad.shape[-1:]
                state["col_var"] = Tensor._make(xp.zeros(col_shape, grad.dtype))
            else:
                state["variance"] = Tensor._make(xp.zeros_like(grad))
        return state

    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr = to_scalar(group["lr"])
            eps1_given, eps2 = group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._state_for(p)
                self._update(p, state, group, lr, eps1_given, eps2)
                p._bump_version()
        return loss

    @staticmethod
    def _update(p: Tensor, state: dict, group: dict, lr: float, eps1, eps2: float) -> None:
        param, grad = p._data, p.grad._data
        xp = xp_of(param)
        if group["maximize"]:
            grad = -grad
        eps1 = float(np.finfo(param.dtype).eps) if eps1 is None else eps1
        step = bump_step(state)
        one_minus_beta2 = step ** group["beta2_decay"]
        rho = min(lr, 1 / step**0.5)
        alpha = max(eps2, _rms(xp, param)) * rho
        if group["weight_decay"] != 0:
            param *= 1 - lr * group["weight_decay"]
        if grad.ndim > 1:
            row_var, col_var = state["row_var"]._data, state["col_var"]._data
            # the mean of g^2 over each row and column, as torch forms it (a norm, squared)
            row_mean = xp.sqrt((grad * grad).sum(-1, keepdims=True)) ** 2 / grad.shape[-1]
            lerp_(
                xp, row_var, row_mean.astype(row_var.dtype), one_minus_beta2, xp.empty_like(row_var)
            )
            col_mean = xp.sqrt((grad * grad).sum(-2, keepdims=True)) ** 2 / grad.shape[-2]
            lerp_(
                xp, col_var, col_mean.astype(col_var.dtype), one_minus_beta2, xp.empty_like(col_var)
            )
            estimate = row_var @ col_var
            estimate = estimate / xp.maximum(row_var.mean(-2, keepdims=True), eps1)
        else:
            variance = state["variance"]._data
            lerp_(xp, variance, grad * grad, one_minus_beta2, xp.empty_like(variance))
            estimate = variance.copy()
        update = (1 / xp.sqrt(xp.maximum(estimate, eps1 * eps1))) * grad
        update = update.astype(param.dtype, copy=False)
        denom = max(1.0, _rms(xp, update) / group["d"])
        param -= (alpha / denom) * update
