"""Adam (and, through `decoupled_weight_decay`, AdamW), following torch's single-tensor update
operation by operation so float64 trajectories agree to rounding."""

from __future__ import annotations

from ..tensor import Tensor
from . import _cuda
from ._arrays import decayed_grad, launch, lerp_, second_moment_, state_like
from .optimizer import (
    Optimizer,
    ParamsT,
    bump_step,
    check_adam_args,
    reject_unsupported,
    scalar_tensor,
    to_scalar,
)

__all__ = ["Adam"]


class Adam(Optimizer):
    """`torch.optim.Adam`; state per parameter: `step`, `exp_avg`, `exp_avg_sq` and, with
    `amsgrad`, `max_exp_avg_sq`."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_adam_args(lr, betas, eps, weight_decay)
        if not (
            (isinstance(betas[0], float) and isinstance(betas[1], float))
            or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))
        ):
            raise ValueError("betas must be either both floats or both Tensors")
        betas = (float(betas[0]), float(betas[1]))
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")

    def step(self, closure=None):
        loss = self._run_closure(closure)
        ws = self._ws
        for group in self.param_groups:
            lr = to_scalar(group["lr"])
            beta1, beta2 = group["betas"]
            beta1, beta2 = to_scalar(beta1), to_scalar(beta2)
            eps = group["eps"]
            wd = group["weight_decay"]
            amsgrad = group["amsgrad"]
            maximize = group["maximize"]
            decoupled = group["decoupled_weight_decay"]
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                data = p._data
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = scalar_tensor(0.0)
                    state["exp_avg"] = Tensor._make(state_like(data))
                    state["exp_avg_sq"] = Tensor._make(state_like(data))
                    if amsgrad:
                        state["max_exp_avg_sq"] = Tensor._make(state_like(data))
                step = bump_step(state)
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                max_sq = state["max_exp_avg_sq"]._data if amsgrad else None
                launch(
                    _adam_kernel,
                    ws,
                    (data, grad._data, state["exp_avg"]._data, state["exp_avg_sq"]._data, max_sq),
                    fused=_cuda.adam,
                    beta1=beta1,
                    beta2=beta2,
                    eps=eps,
                    wd=wd,
                    decay=1 - lr * wd if decoupled else None,
                    maximize=maximize,
                    step_size=lr / bias_correction1,
                    bias_correction2_sqrt=bias_correction2**0.5,
                )
                p._bump_version()
        return loss


def _adam_kernel(
    xp,
    s0,
    s1,
    p,
    g,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    *,
    beta1,
    beta2,
    eps,
    wd,
    decay,
    maximize,
    step_size,
    bias_correction2_sqrt,
):
    g = decayed_grad(xp, p, g, wd, decay, maximize, s0)
    lerp_(xp, exp_avg, g, 1 - beta1, s1)
    second_moment_(xp, exp_avg_sq, g, beta2, s1)
    second = exp_avg_sq
    if max_exp_avg_sq is not None:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    # denom = (second.sqrt() / bias_correction2_sqrt).add_(eps)
    xp.sqrt(second, out=s1)
    xp.divide(s1, bias_correction2_sqrt, out=s1)
    xp.add(s1, eps, out=s1)
    # param.addcdiv_(exp_avg, denom, value=-step_size); the gradient in s0 is spent
    xp.multiply(exp_avg, -step_size, out=s0)
    xp.divide(s0, s1, out=s0)
    xp.add(p, s0, out=p)
