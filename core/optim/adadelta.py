"""Adadelta, following torch's single-tensor update operation by operation."""

from __future__ import annotations

from ..tensor import Tensor
from ._arrays import effective_grad, launch, state_like
from .optimizer import Optimizer, ParamsT, bump_step, reject_unsupported, scalar_tensor, to_scalar

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """`torch.optim.Adadelta`; state per parameter: `step`, `square_avg`, `acc_delta`."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = {
            "lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "foreach": foreach,
            "capturable": capturable, "maximize": maximize, "differentiable": differentiable,
        }  # fmt: skip
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr = to_scalar(group["lr"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = scalar_tensor(0.0)
                    state["square_avg"] = Tensor._make(state_like(p._data))
                    state["acc_delta"] = Tensor._make(state_like(p._data))
                bump_step(state)
                launch(
                    _adadelta_kernel,
                    self._ws,
                    (p._data, p.grad._data, state["square_avg"]._data, state["acc_delta"]._data),
                    lr=lr,
                    rho=group["rho"],
                    eps=group["eps"],
                    wd=group["weight_decay"],
                    maximize=group["maximize"],
                )
                p._bump_version()
        return loss


def _adadelta_kernel(xp, s0, s1, p, g, square_avg, acc_delta, *, lr, rho, eps, wd, maximize):
    g = effective_grad(xp, p, g, wd, maximize, s0)
    # square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
    xp.multiply(g, 1 - rho, out=s1)
    xp.multiply(s1, g, out=s1)
    xp.multiply(square_avg, rho, out=square_avg)
    xp.add(square_avg, s1, out=square_avg)
    # std = square_avg.add(eps).sqrt_(); delta = acc_delta.add(eps).sqrt_().div_(std).mul_(g)
    xp.add(square_avg, eps, out=s1)
    xp.sqrt(s1, out=s1)
    # a third array for delta: s0 may still hold the gradient
    delta = xp.add(acc_delta, eps, out=xp.empty_like(acc_delta))
    xp.sqrt(delta, out=delta)
    xp.divide(delta, s1, out=delta)
    xp.multiply(delta, g, out=delta)
    # acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    xp.multiply(delta, 1 - rho, out=s1)
    xp.multiply(s1, delta, out=s1)
    xp.multiply(acc_delta, rho, out=acc_delta)
    xp.add(acc_delta, s1, out=acc_delta)
    # param.add_(delta, alpha=-lr)
    xp.multiply(delta, -lr, out=delta)
    xp.add(p, delta, out=p)
