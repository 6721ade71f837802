"""Adagrad, with torch's lr decay, weight decay and initial accumulator value."""

from __future__ import annotations

from ..tensor import Tensor
from . import _cuda
from ._arrays import effective_grad, launch, state_like
from .optimizer import Optimizer, ParamsT, bump_step, reject_unsupported, scalar_tensor, to_scalar

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """`torch.optim.Adagrad`; state per parameter: `step` and `sum`, created (as in torch) when
    the optimizer is built so that `initial_accumulator_value` shows in the state at once."""

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(
                f"Invalid initial_accumulator_value value: {initial_accumulator_value}"
            )
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        reject_unsupported(differentiable=differentiable)
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p)

    def _init_state(self, p: Tensor) -> None:
        # torch fills every accumulator from the constructor's value, even where a group
        # names its own initial_accumulator_value; shardgrad keeps that behaviour.
        state = self.state[p]
        state["step"] = scalar_tensor(0.0)
        init = self.defaults["initial_accumulator_value"]
        state["sum"] = Tensor._make(state_like(p._data, init))

    def step(self, closure=None):
        loss = self._run_closure(closure)
        ws = self._ws
        for group in self.param_groups:
            lr = to_scalar(group["lr"])
            lr_decay = group["lr_decay"]
            eps = group["eps"]
            wd = group["weight_decay"]
            maximize = group["maximize"]
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    self._init_state(p)
                step = bump_step(state)
                launch(
                    _adagrad_kernel,
                    ws,
                    (p._data, grad._data, state["sum"]._data),
                    fused=_cuda.adagrad,
                    clr=lr / (1 + (step - 1) * lr_decay),
                    eps=eps,
                    wd=wd,
                    maximize=maximize,
                )
                p._bump_version()
        return loss


def _adagrad_kernel(xp, s0, s1, p, g, state_sum, *, clr, eps, wd, maximize):
    g = effective_grad(xp, p, g, wd, maximize, s0)
    # state_sum.addcmul_(grad, grad, value=1)
    xp.multiply(g, g, out=s1)
    xp.add(state_sum, s1, out=state_sum)
    # std = state_sum.sqrt().add_(eps)
    xp.sqrt(state_sum, out=s1)
    xp.add(s1, eps, out=s1)
    # param.addcdiv_(grad, std, value=-clr)
    xp.multiply(g, -clr, out=s0)
    xp.divide(s0, s1, out=s0)
    xp.add(p, s0, out=p)
