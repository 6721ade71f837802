"""Rprop: each weight's step size grows while its gradient keeps its sign and shrinks when it
flips, following torch's single-tensor update operation by operation."""

from __future__ import annotations

from ..tensor import Tensor
from ._arrays import effective_grad, launch, state_like
from .optimizer import (
    Optimizer,
    ParamsT,
    bump_step,
    check_lr,
    reject_unsupported,
    scalar_tensor,
    to_scalar,
)

__all__ = ["Rprop"]


class Rprop(Optimizer):
    """`torch.optim.Rprop`; state per parameter: `step`, `prev` (the last gradient used),
    `step_size`."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = {
            "lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach,
            "maximize": maximize, "differentiable": differentiable, "capturable": capturable,
        }  # fmt: skip
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            etaminus, etaplus = group["etas"]
            step_size_min, step_size_max = group["step_sizes"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = scalar_tensor(0.0)
                    state["prev"] = Tensor._make(state_like(p._data))
                    state["step_size"] = Tensor._make(
                        state_like(p.grad._data, to_scalar(group["lr"]))
                    )
                bump_step(state)
                launch(
                    _rprop_kernel,
                    self._ws,
                    (p._data, p.grad._data, state["prev"]._data, state["step_size"]._data),
                    etaminus=etaminus,
                    etaplus=etaplus,
                    low=step_size_min,
                    high=step_size_max,
                    maximize=group["maximize"],
                )
                p._bump_version()
        return loss


def _rprop_kernel(xp, s0, s1, p, g, prev, step_size, *, etaminus, etaplus, low, high, maximize):
    g = effective_grad(xp, p, g, 0, maximize, s0)
    # sign = grad.mul(prev).sign(), then etaplus where > 0, etaminus where < 0, 1 where 0
    xp.multiply(g, prev, out=s1)
    xp.sign(s1, out=s1)
    grew, shrank, same = s1 > 0, s1 < 0, s1 == 0  # a nan stays nan, as in torch
    s1[grew] = etaplus
    s1[shrank] = etaminus
    s1[same] = 1
    # step_size.mul_(sign).clamp_(min, max)
    xp.multiply(step_size, s1, out=step_size)
    xp.clip(step_size, low, high, out=step_size)
    # grad = grad.clone(); grad[sign.eq(etaminus)] = 0; param.addcmul_(grad.sign(), step_size,
    # value=-1); prev.copy_(grad)
    xp.copyto(prev, g)
    prev[shrank] = 0
    xp.sign(prev, out=s1)
    xp.multiply(s1, step_size, out=s1)
    xp.subtract(p, s1, out=p)
