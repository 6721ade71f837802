"""`shardgrad.nn.utils`: gradient clipping and flat-vector conversions of parameters; `rnn`
holds the padded and packed sequence batches."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ... import factory
from ...autograd import grad_mode
from ...backend import xp_of
from ...ops.nn_ops import FlatCat
from ...tensor import Tensor
from . import fusion as fusion  # nn.utils.fusion
from . import parametrizations as parametrizations  # nn.utils.parametrizations
from . import parametrize as parametrize  # nn.utils.parametrize
from . import prune as prune  # nn.utils.prune
from . import rnn as rnn  # nn.utils.rnn, as in torch
from . import stateless as stateless  # nn.utils.stateless.functional_call
from .fusion import (
    fuse_conv_bn_eval,
    fuse_conv_bn_weights,
    fuse_linear_bn_eval,
    fuse_linear_bn_weights,
)
from .spectral_norm import remove_spectral_norm, spectral_norm
from .weight_norm import remove_weight_norm, weight_norm

__all__ = [
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
    "remove_spectral_norm",
    "spectral_norm",
    "remove_weight_norm",
    "weight_norm",
    "clip_grad_norm_",
    "clip_grad_norm",
    "clip_grad_value_",
    "get_total_norm",
    "clip_grads_with_norm_",
    "parameters_to_vector",
    "vector_to_parameters",
]


def _as_list(tensors) -> list:
    if isinstance(tensors, Tensor):
        return [tensors]
    return list(tensors)


def _norm(arr, norm_type: float):
    xp = xp_of(arr)
    flat = arr.reshape(-1)
    if norm_type == math.inf:
        return xp.abs(flat).max() if flat.size else xp.zeros((), dtype=arr.dtype)
    if norm_type == -math.inf:
        return xp.abs(flat).min()
    if norm_type == 0:
        return (flat != 0).sum().astype(arr.dtype)
    if norm_type == 2:
        return xp.sqrt(xp.dot(flat, flat))
    if norm_type == 1:
        return xp.abs(flat).sum()
    return (xp.abs(flat) ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(
    tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None
) -> Tensor:
    """The norm of the norms of `tensors` (as if they were one concatenated vector)."""
    tensors = [t for t in _as_list(tensors) if t is not None]
    norm_type = float(norm_type)
    if len(tensors) == 0:
        return factory.tensor(0.0)
    xp = xp_of(tensors[0]._data)
    norms = xp.stack([_norm(t._data, norm_type).astype(tensors[0]._data.dtype) for t in tensors])
    total = _norm(norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
            "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
            "norm anyway, set `error_if_nonfinite=False`"
        )
    return Tensor._make(xp.asarray(total))


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor, foreach=None) -> None:
    """Scale gradients in place by min(1, max_norm / (total_norm + 1e-6))."""
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return
    total = total_norm._data
    if type(total) is not np.ndarray and not isinstance(total, np.generic):
        # on a GPU: the coefficient stays there (no host round trip); like torch, the
        # gradients are always multiplied, by at most 1
        xp = xp_of(total)
        coef = xp.minimum(float(max_norm) / (total + 1e-6), 1.0)
        with grad_mode.no_grad():
            for g in grads:
                g._data *= coef.astype(g._data.dtype)
                g._bump_version()
        return
    coef = float(max_norm) / (float(total_norm.item()) + 1e-6)
    coef = min(coef, 1.0)
    with grad_mode.no_grad():
        for g in grads:
            g._data *= g._data.dtype.type(coef)
            g._bump_version()


def clip_grad_norm_(
    parameters,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach=None,
) -> Tensor:
    """Clip the gradients' total norm to `max_norm` in place; returns the total norm before."""
    params = _as_list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(params, max_norm, total, foreach)
    return total


def clip_grad_norm(
    parameters,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach=None,
) -> Tensor:
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        if p.grad is None:
            continue
        d = p.grad._data
        xp_of(d).clip(d, -clip_value, clip_value, out=d)
        p.grad._bump_version()


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """One flat vector of all parameters (differentiable, like torch's `cat` of views)."""
    params = list(parameters)
    if not params:
        raise RuntimeError("parameters_to_vector expects a non-empty iterable of tensors")
    device = params[0].device
    for p in params:
        if p.device != device:
            raise TypeError(
                "Found two parameters on different devices, this is currently not supported."
            )
    return FlatCat.apply(*params)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Make each parameter a view into `vec`, in order (torch's `param.data = vec[...]`)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    pointer = 0
    data = vec._data
    for param in parameters:
        if param.device != vec.device:
            raise TypeError(
                "Found two parameters on different devices, this is currently not supported."
            )
        n = param.numel()
        param._data = data[pointer : pointer + n].reshape(param.shape)
        param._bump_version()
        pointer += n
