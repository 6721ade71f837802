"""ASGD: SGD with a decaying step size that also keeps a running average of the parameters
(`ax`), following torch's single-tensor update operation by operation.

torch keeps eta and mu as 0-d tensors of its scalar dtype and reads them back with .item(),
so they are rounded to float32 (unless float64 is the default dtype); so are they here."""

from __future__ import annotations

import numpy as np

from .. import _dtype
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

__all__ = ["ASGD"]


def _rounded(value: float) -> float:
    """value as torch's scalar dtype holds it."""
    dt = np.float64 if _dtype.get_default_dtype() is _dtype.float64 else np.float32
    return float(dt(value))


class ASGD(Optimizer):
    """`torch.optim.ASGD`; state per parameter: `step`, `eta`, `mu`, `ax`."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        check_lr(lr)
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = {
            "lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay,
            "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
            "capturable": capturable,
        }  # fmt: skip
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr, lambd = to_scalar(group["lr"]), group["lambd"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = scalar_tensor(0.0)
                    state["eta"] = scalar_tensor(lr)
                    state["mu"] = scalar_tensor(1.0)
                    state["ax"] = Tensor._make(state_like(p._data))
                step = bump_step(state)
                eta, mu = float(state["eta"]._data), float(state["mu"]._data)
                launch(
                    _asgd_kernel,
                    self._ws,
                    (p._data, p.grad._data, state["ax"]._data),
                    eta=eta,
                    mu=mu,
                    lambd=lambd,
                    wd=group["weight_decay"],
                    maximize=group["maximize"],
                )
                state["eta"]._data[...] = _rounded(lr / ((1 + lambd * lr * step) ** group["alpha"]))
                state["mu"]._data[...] = _rounded(1 / max(1, step - group["t0"]))
                p._bump_version()
        return loss


def _asgd_kernel(xp, s0, s1, p, g, ax, *, eta, mu, lambd, wd, maximize):
    g = effective_grad(xp, p, g, wd, maximize, s0)
    xp.multiply(p, 1 - lambd * eta, out=p)  # the decay term
    xp.multiply(g, -eta, out=s1)
    xp.add(p, s1, out=p)  # param.add_(grad, alpha=-eta)
    if mu != 1:
        xp.subtract(p, ax, out=s1)  # ax.add_(param.sub(ax).mul_(mu))
        xp.multiply(s1, mu, out=s1)
        xp.add(ax, s1, out=ax)
    else:
        xp.copyto(ax, p)
