"""shardgrad.autograd: the engine's public face (grad, backward, Function, gradcheck)."""

from __future__ import annotations

from collections.abc import Sequence

from . import engine, grad_mode, graph
from .anomaly_mode import (
    detect_anomaly,
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    set_detect_anomaly,
)
from .function import Function, FunctionCtx, once_differentiable
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled

__all__ = [
    "Function",
    "FunctionCtx",
    "once_differentiable",
    "grad",
    "backward",
    "Variable",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "inference_mode",
    "is_grad_enabled",
    "gradcheck",
    "gradgradcheck",
    "engine",
    "grad_mode",
    "detect_anomaly",
    "set_detect_anomaly",
    "is_anomaly_enabled",
    "is_anomaly_check_nan_enabled",
    "graph",
]


def _as_seq(x) -> list:
    from ..tensor import Tensor  # noqa: PLC0415

    if x is None:
        return []
    if isinstance(x, Tensor):
        return [x]
    return list(x)


def _default_grads(outputs, grad_outputs):
    from ..tensor import Tensor  # noqa: PLC0415

    grads = _as_seq(grad_outputs) if grad_outputs is not None else [None] * len(outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(
            f"grad requires one grad_output per output: got {len(grads)} for {len(outputs)} outputs"
        )
    result = []
    for out, g in zip(outputs, grads):
        if g is None:
            if out.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = Tensor._make(engine_ones_like(out))
        elif not isinstance(g, Tensor):
            from ..factory import tensor  # noqa: PLC0415

            g = tensor(g, dtype=out.dtype, device=out.device)
        elif g.shape != out.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[0] has a shape of {g.shape} and output[0] has a "
                f"shape of {out.shape}."
            )
        result.append(g)
    return result


def engine_ones_like(t):
    from ..backend import xp_of  # noqa: PLC0415

    return xp_of(t._data).ones_like(t._data)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    only_inputs: bool = True,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
) -> tuple:
    """Gradients of `outputs` with respect to `inputs`, without touching `.grad`."""
    outputs = _as_seq(outputs)
    inputs_seq = _as_seq(inputs)
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    grads = _default_grads(outputs, grad_outputs)
    result = engine.run_backward(
        outputs, grads, retain_graph, create_graph, inputs=inputs_seq, allow_unused=allow_unused
    )
    if materialize_grads:
        from ..factory import zeros_like  # noqa: PLC0415

        result = tuple(zeros_like(i) if r is None else r for i, r in zip(inputs_seq, result))
    return result


def backward(
    tensors,
    grad_tensors=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Sequence | None = None,
) -> None:
    tensors = _as_seq(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    grads = _default_grads(tensors, grad_tensors)
    engine.run_backward(tensors, grads, retain_graph, create_graph)


def Variable(data, requires_grad: bool = False, volatile: bool = False):  # noqa: N802
    """The pre-0.4 torch spelling; returns a plain Tensor, as torch does now."""
    from ..factory import as_tensor  # noqa: PLC0415
    from ..tensor import Tensor  # noqa: PLC0415

    t = data if isinstance(data, Tensor) else as_tensor(data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def gradcheck(*args, **kwargs) -> bool:
    from ._gradcheck import gradcheck as _gc  # noqa: PLC0415

    return _gc(*args, **kwargs)


def gradgradcheck(*args, **kwargs) -> bool:
    from ._gradcheck import gradgradcheck as _ggc  # noqa: PLC0415

    return _ggc(*args, **kwargs)


_ = grad_mode

from . import functional as functional  # noqa: E402 - it builds on grad, defined above
