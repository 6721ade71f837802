"""NAdam and RAdam: Adam with Nesterov momentum, and Adam with a rectified warm-up, following
torch's single-tensor updates operation by operation."""

from __future__ import annotations

from ..tensor import Tensor
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

__all__ = ["NAdam", "RAdam"]


class NAdam(Optimizer):
    """`torch.optim.NAdam`; state per parameter: `step`, `mu_product`, `exp_avg`,
    `exp_avg_sq`. `mu_product` is a scalar tensor in torch's scalar dtype, so its rounding is
    torch's too."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_adam_args(lr, betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = {
            "lr": lr, "betas": (float(betas[0]), float(betas[1])), "eps": eps,
            "weight_decay": weight_decay, "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay, "foreach": foreach,
            "maximize": maximize, "capturable": capturable, "differentiable": differentiable,
        }  # fmt: skip
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr = to_scalar(group["lr"])
            beta1, beta2 = group["betas"]
            wd, decay = group["weight_decay"], group["momentum_decay"]
            decoupled = group["decoupled_weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = scalar_tensor(0.0)
                    state["mu_product"] = scalar_tensor(1.0)
                    state["exp_avg"] = Tensor._make(state_like(p._data))
                    state["exp_avg_sq"] = Tensor._make(state_like(p._data))
                step = bump_step(state)
                mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * decay)))
                mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * decay)))
                product = state["mu_product"]._data
                product *= mu  # in the scalar tensor's own dtype, as torch's mu_product *= mu
                mu_product = float(product)
                launch(
                    _nadam_kernel,
                    self._ws,
                    (p._data, p.grad._data, state["exp_avg"]._data, state["exp_avg_sq"]._data),
                    beta1=beta1,
                    beta2=beta2,
                    eps=group["eps"],
                    wd=wd,
                    decay=1 - lr * wd if decoupled else None,
                    maximize=group["maximize"],
                    bias_correction2=1 - beta2**step,
                    grad_step=-lr * (1.0 - mu) / (1.0 - mu_product),
                    avg_step=(-lr * mu_next) / (1.0 - mu_product * mu_next),
                )
                p._bump_version()
        return loss


def _nadam_kernel(
    xp, s0, s1, p, g, exp_avg, exp_avg_sq, *,
    beta1, beta2, eps, wd, decay, maximize, bias_correction2, grad_step, avg_step,
):  # fmt: skip
    g = decayed_grad(xp, p, g, wd, decay, maximize, s0)
    lerp_(xp, exp_avg, g, 1 - beta1, s1)
    second_moment_(xp, exp_avg_sq, g, beta2, s1)
    # denom = exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
    xp.divide(exp_avg_sq, bias_correction2, out=s1)
    xp.sqrt(s1, out=s1)
    xp.add(s1, eps, out=s1)
    # param.addcdiv_(grad, denom, value=grad_step), then the same with exp_avg
    xp.multiply(g, grad_step, out=s0)
    xp.divide(s0, s1, out=s0)
    xp.add(p, s0, out=p)
    xp.multiply(exp_avg, avg_step, out=s0)
    xp.divide(s0, s1, out=s0)
    xp.add(p, s0, out=p)


class RAdam(Optimizer):
    """`torch.optim.RAdam`; state per parameter: `step`, `exp_avg`, `exp_avg_sq`. While the
    variance estimate is too short (rho_t <= 5) the step is plain momentum."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_adam_args(lr, betas, eps, weight_decay)
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = {
            "lr": lr, "betas": (float(betas[0]), float(betas[1])), "eps": eps,
            "weight_decay": weight_decay, "decoupled_weight_decay": decoupled_weight_decay,
            "foreach": foreach, "maximize": maximize, "capturable": capturable,
            "differentiable": differentiable,
        }  # fmt: skip
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr = to_scalar(group["lr"])
            beta1, beta2 = group["betas"]
            wd, decoupled = group["weight_decay"], group["decoupled_weight_decay"]
            rho_inf = 2 / (1 - beta2) - 1
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = scalar_tensor(0.0)
                    state["exp_avg"] = Tensor._make(state_like(p._data))
                    state["exp_avg_sq"] = Tensor._make(state_like(p._data))
                step = bump_step(state)
                bias_correction2 = 1 - beta2**step
                rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
                rect = None
                if rho_t > 5.0:
                    rect = (
                        (rho_t - 4)
                        * (rho_t - 2)
                        * rho_inf
                        / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                    ) ** 0.5
                launch(
                    _radam_kernel,
                    self._ws,
                    (p._data, p.grad._data, state["exp_avg"]._data, state["exp_avg_sq"]._data),
                    beta1=beta1,
                    beta2=beta2,
                    eps=group["eps"],
                    wd=wd,
                    decay=1 - lr * wd if decoupled else None,
                    maximize=group["maximize"],
                    lr=lr,
                    bias_correction1=1 - beta1**step,
                    bias_correction2_sqrt=bias_correction2**0.5,
                    rect=rect,
                )
                p._bump_version()
        return loss


def _radam_kernel(
    xp, s0, s1, p, g, exp_avg, exp_avg_sq, *,
    beta1, beta2, eps, wd, decay, maximize, lr, bias_correction1, bias_correction2_sqrt, rect,
):  # fmt: skip
    g = decayed_grad(xp, p, g, wd, decay, maximize, s0)
    lerp_(xp, exp_avg, g, 1 - beta1, s1)
    second_moment_(xp, exp_avg_sq, g, beta2, s1)
    # the gradient is spent: s0 holds (exp_avg / bias_correction1) * lr
    xp.divide(exp_avg, bias_correction1, out=s0)
    xp.multiply(s0, lr, out=s0)
    if rect is not None:
        # * (bias_correction2 ** 0.5 / (exp_avg_sq.sqrt() + eps)) * rect
        xp.sqrt(exp_avg_sq, out=s1)
        xp.add(s1, eps, out=s1)
        xp.divide(bias_correction2_sqrt, s1, out=s1)
        xp.multiply(s0, s1, out=s0)
        xp.multiply(s0, rect, out=s0)
    xp.subtract(p, s0, out=p)  # param.add_(..., alpha=-1.0)
