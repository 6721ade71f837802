"""Muon (Jordan et al., 2024): SGD with (Nesterov) momentum whose update is orthogonalised
by a few Newton-Schulz iterations, for the 2-D weights of hidden layers;
`torch.optim.Muon`'s update.

torch runs the Newton-Schulz iterations in bfloat16; shardgrad has no bfloat16 and runs them
in the parameter's dtype (float32 at the least), so its updates agree with torch's to
bfloat16's precision (a few parts in a thousand), not to the last bit."""

from __future__ import annotations

import math

import numpy as np

from ..backend import xp_of
from ..tensor import Tensor
from ._arrays import lerp_
from .optimizer import Optimizer, ParamsT, to_scalar

__all__ = ["Muon"]

_EPS = 1e-7
_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def zeropower_via_newtonschulz(grad, coefficients, steps: int, eps: float):
    """A matrix with grad's singular vectors and singular values near 1: the quintic
    Newton-Schulz iteration X <- a X + (b G + c G^2) X with G = X X^T, from X = grad / |grad|
    (on the wide orientation, so G is the smaller Gram matrix)."""
    if steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if grad.ndim != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    xp = xp_of(grad)
    a, b, c = coefficients
    x = grad.astype(np.promote_types(grad.dtype, np.float32))
    tall = grad.shape[0] > grad.shape[1]
    if tall:
        x = x.T
    x = x / max(float(xp.sqrt((x * x).sum())), eps)
    for _ in range(steps):
        gram = x @ x.T
        update = b * gram + c * (gram @ gram)
        x = a * x + update @ x
    return x.T if tall else x


def _adjusted_lr(lr: float, adjust_lr_fn: str | None, shape) -> float:
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


class Muon(Optimizer):
    """State per parameter: `momentum_buffer`. Every parameter must be 2-D (give biases
    and embeddings to another optimizer, as torch asks)."""

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = _COEFFICIENTS,
        eps: float = _EPS,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
    ) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ("original", "match_rms_adamw"):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {
            "lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov,
            "ns_coefficients": ns_coefficients, "eps": eps, "ns_steps": ns_steps,
            "adjust_lr_fn": adjust_lr_fn,
        }  # fmt: skip
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(
                        "Muon only supports 2D parameters whereas we found a parameter with "
                        f"size: {p.shape}"
                    )

    def step(self, closure=None):
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr = to_scalar(group["lr"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = Tensor._make(xp_of(p._data).zeros_like(p.grad._data))
                self._update(p, state["momentum_buffer"]._data, group, lr)
                p._bump_version()
        return loss

    @staticmethod
    def _update(p: Tensor, buf, group: dict, lr: float) -> None:
        param, grad = p._data, p.grad._data
        xp = xp_of(param)
        mu = group["momentum"]
        tmp = xp.empty_like(buf)
        lerp_(xp, buf, grad, 1 - mu, tmp)  # an average of the gradients, as torch keeps it
        if group["nesterov"]:
            update = grad.copy()
            lerp_(xp, update, buf, mu, tmp)  # grad.lerp(buf, momentum)
        else:
            update = buf
        ortho = zeropower_via_newtonschulz(
            update, group["ns_coefficients"], group["ns_steps"], group["eps"]
        )
        param *= 1 - lr * group["weight_decay"]
        step = _adjusted_lr(lr, group["adjust_lr_fn"], param.shape)
        param -= (step * ortho).astype(param.dtype, copy=False)
