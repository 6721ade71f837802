"""Stochastic gradient descent, with torch's momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from ..tensor import Tensor
from . import _cuda
from ._arrays import effective_grad, launch, state_like
from .optimizer import Optimizer, ParamsT, reject_unsupported, to_scalar

__all__ = ["SGD"]


class SGD(Optimizer):
    """`torch.optim.SGD`; state per parameter: `momentum_buffer` (only when momentum != 0)."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float | Tensor = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        reject_unsupported(differentiable=differentiable)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")

    def step(self, closure=None):
        loss = self._run_closure(closure)
        ws = self._ws
        for group in self.param_groups:
            lr = to_scalar(group["lr"])
            wd = to_scalar(group["weight_decay"])
            momentum = group["momentum"]
            dampening = group["dampening"]
            nesterov = group["nesterov"]
            maximize = group["maximize"]
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                data = p._data
                buf, first = None, False
                if momentum != 0:
                    state = self.state[p]
                    buf_t = state.get("momentum_buffer")
                    if buf_t is None:
                        buf_t = state["momentum_buffer"] = Tensor._make(state_like(data, None))
                        first = True
                    buf = buf_t._data
                launch(
                    _sgd_kernel,
                    ws,
                    (data, grad._data, buf),
                    fused=_cuda.sgd,
                    lr=lr,
                    wd=wd,
                    momentum=momentum,
                    dampening=dampening,
                    nesterov=nesterov,
                    maximize=maximize,
                    first=first,
                )
                p._bump_version()
        return loss


def _sgd_kernel(xp, s0, s1, p, g, buf, *, lr, wd, momentum, dampening, nesterov, maximize, first):
    d_p = effective_grad(xp, p, g, wd, maximize, s0)
    scratch = d_p is s0  # slot 0 holds d_p and may be overwritten once it is used
    if buf is not None:
        if first:
            xp.copyto(buf, d_p)  # buf = grad.detach().clone()
        else:
            # buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            xp.multiply(buf, momentum, out=buf)
            if dampening == 0:
                xp.add(buf, d_p, out=buf)
            else:
                xp.multiply(d_p, 1 - dampening, out=s1)
                xp.add(buf, s1, out=buf)
        if nesterov:
            # grad = grad.add(buf, alpha=momentum)
            xp.multiply(buf, momentum, out=s1)
            xp.add(s1, d_p, out=s1)
            d_p, scratch = s1, True
        else:
            d_p, scratch = buf, False
    # param.add_(grad, alpha=-lr)
    out = d_p if scratch else s0
    xp.multiply(d_p, -lr, out=out)
    xp.add(p, out, out=p)
