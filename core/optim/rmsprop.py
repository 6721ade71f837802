"""RMSprop, with torch's centered variant, momentum and weight decay."""

from __future__ import annotations

from ..tensor import Tensor
from . import _cuda
from ._arrays import effective_grad, launch, lerp_, state_like
from .optimizer import Optimizer, ParamsT, bump_step, reject_unsupported, scalar_tensor, to_scalar

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """`torch.optim.RMSprop`; state per parameter: `step`, `square_avg`, and
    `momentum_buffer` (momentum > 0) and `grad_avg` (centered)."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        reject_unsupported(capturable=capturable, differentiable=differentiable)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._run_closure(closure)
        ws = self._ws
        for group in self.param_groups:
            lr = to_scalar(group["lr"])
            alpha = group["alpha"]
            eps = group["eps"]
            wd = group["weight_decay"]
            momentum = group["momentum"]
            centered = group["centered"]
            maximize = group["maximize"]
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                data = p._data
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = scalar_tensor(0.0)
                    state["square_avg"] = Tensor._make(state_like(data))
                    if momentum > 0:
                        state["momentum_buffer"] = Tensor._make(state_like(data))
                    if centered:
                        state["grad_avg"] = Tensor._make(state_like(data))
                bump_step(state)
                buf = state["momentum_buffer"]._data if momentum > 0 else None
                grad_avg = state["grad_avg"]._data if centered else None
                launch(
                    _rmsprop_kernel,
                    ws,
                    (data, grad._data, state["square_avg"]._data, buf, grad_avg),
                    fused=_cuda.rmsprop,
                    lr=lr,
                    alpha=alpha,
                    eps=eps,
                    wd=wd,
                    momentum=momentum,
                    maximize=maximize,
                )
                p._bump_version()
        return loss


def _rmsprop_kernel(
    xp, s0, s1, p, g, square_avg, buf, grad_avg, *, lr, alpha, eps, wd, momentum, maximize
):
    g = effective_grad(xp, p, g, wd, maximize, s0)
    # square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    xp.multiply(g, 1 - alpha, out=s1)
    xp.multiply(s1, g, out=s1)
    xp.multiply(square_avg, alpha, out=square_avg)
    xp.add(square_avg, s1, out=square_avg)
    if grad_avg is not None:
        lerp_(xp, grad_avg, g, 1 - alpha, s1)
        # avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        xp.multiply(grad_avg, grad_avg, out=s1)
        xp.subtract(square_avg, s1, out=s1)
        xp.sqrt(s1, out=s1)
    else:
        xp.sqrt(square_avg, out=s1)
    xp.add(s1, eps, out=s1)  # s1 is now avg
    if buf is not None:
        # buf.mul_(momentum).addcdiv_(grad, avg); param.add_(buf, alpha=-lr)
        xp.divide(g, s1, out=s1)
        xp.multiply(buf, momentum, out=buf)
        xp.add(buf, s1, out=buf)
        xp.multiply(buf, -lr, out=s1)
        xp.add(p, s1, out=p)
    else:
        # param.addcdiv_(grad, avg, value=-lr); g may live in s0, which is free after this
        xp.multiply(g, -lr, out=s0)
        xp.divide(s0, s1, out=s0)
        xp.add(p, s0, out=p)
