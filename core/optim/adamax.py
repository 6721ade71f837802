"""Adamax: Adam with the infinity norm in place of the second moment, following torch's
single-tensor update operation by operation."""

from __future__ import annotations

from ..tensor import Tensor
from ._arrays import effective_grad, launch, lerp_, state_like
from .optimizer import (
    Optimizer,
    ParamsT,
    bump_step,
    check_adam_args,
    reject_unsupported,
    scalar_tensor,
    to_scalar,
)

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """`torch.optim.Adamax`; state per parameter: `step`, `exp_avg`, `exp_inf`."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        check_adam_args(lr, betas, eps, weight_decay)
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = {
            "lr": lr, "betas": (float(betas[0]), float(betas[1])), "eps": eps,
            "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize,
            "differentiable": differentiable, "capturable": capturable,
        }  # fmt: skip
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr = to_scalar(group["lr"])
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = scalar_tensor(0.0)
                    state["exp_avg"] = Tensor._make(state_like(p._data))
                    state["exp_inf"] = Tensor._make(state_like(p._data))
                step = bump_step(state)
                launch(
                    _adamax_kernel,
                    self._ws,
                    (p._data, p.grad._data, state["exp_avg"]._data, state["exp_inf"]._data),
                    beta1=beta1,
                    beta2=beta2,
                    eps=group["eps"],
                    wd=group["weight_decay"],
                    maximize=group["maximize"],
                    clr=lr / (1 - beta1**step),
                )
                p._bump_version()
        return loss


def _adamax_kernel(xp, s0, s1, p, g, exp_avg, exp_inf, *, beta1, beta2, eps, wd, maximize, clr):
    g = effective_grad(xp, p, g, wd, maximize, s0)
    lerp_(xp, exp_avg, g, 1 - beta1, s1)
    # torch.maximum(exp_inf.mul_(beta2), grad.abs().add_(eps), out=exp_inf)
    xp.multiply(exp_inf, beta2, out=exp_inf)
    xp.abs(g, out=s1)
    xp.add(s1, eps, out=s1)
    xp.maximum(exp_inf, s1, out=exp_inf)
    # param.addcdiv_(exp_avg, exp_inf, value=-clr)
    xp.multiply(exp_avg, -clr, out=s1)
    xp.divide(s1, exp_inf, out=s1)
    xp.add(p, s1, out=p)
