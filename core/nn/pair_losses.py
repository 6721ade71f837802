"""Losses over pairs and triplets (ranking, embeddings, margins) and the likelihood losses
for Gaussian and Poisson targets: torch's formulas, written with Tensor ops so their
gradients come from the ops. `nn.functional` exports them under torch's names.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import grad_mode
from ..backend import xp_of
from ..ops.composite import pairwise_distance
from ..ops.elementwise import where
from ..tensor import Tensor
from ._reduction import apply as _reduce
from ._reduction import resolve as _resolve

_EPSILON = 1e-12  # torch's guard on the squared norms of cosine_embedding_loss


def _host(t: Tensor) -> np.ndarray:
    """An integer target's values on the host: they choose masks, never carry gradients."""
    data = t._data
    return data.get() if hasattr(data, "get") else np.asarray(data)


def _on_device(like: Tensor, array: np.ndarray) -> Tensor:
    return Tensor._make(xp_of(like._data).asarray(array))


# ================================================================ pairs of inputs
def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0.0,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """1 - cos(x1, x2) where target is 1, max(0, cos - margin) where it is -1."""
    reduction = _resolve(size_average, reduce, reduction)
    if input1.ndim != input2.ndim or tuple(input1.shape) != tuple(input2.shape):
        raise RuntimeError(
            "cosine_embedding_loss: Input1 and Input2 must have the same shape, but got "
            f"{tuple(input1.shape)} and {tuple(input2.shape)}"
        )
    if target.ndim > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if target.ndim != input1.ndim - 1:
        raise RuntimeError(
            f"{target.ndim}D target tensor expects {target.ndim + 1}D input tensors, but found "
            f"inputs with sizes {list(input1.shape)} and {list(input2.shape)}."
        )
    dim = input1.ndim - 1
    prod = (input1 * input2).sum(dim)
    mag1 = (input1 * input1).sum(dim) + _EPSILON
    mag2 = (input2 * input2).sum(dim) + _EPSILON
    cos = prod / (mag1 * mag2).sqrt()
    t = target._data
    loss = where(t == 1, 1 - cos, 0.0) + where(t == -1, (cos - margin).clamp_min(0), 0.0)
    return _reduce(loss, reduction)


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0.0,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, -target * (x1 - x2) + margin): x1 should rank above x2 where target is 1."""
    reduction = _resolve(size_average, reduce, reduction)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise RuntimeError(
            "margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: {input1.shape}, input2: {input2.shape}, target: {target.shape} "
        )
    return _reduce((-target * (input1 - input2) + margin).clamp_min(0), reduction)


def hinge_embedding_loss(
    input: Tensor,
    target: Tensor,
    margin: float = 1.0,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """x where target is 1, max(0, margin - x) where it is -1 (x is a distance)."""
    reduction = _resolve(size_average, reduce, reduction)
    t = target._data
    loss = where(t != 1, (margin - input).clamp_min(0), 0.0) + where(t != -1, input, 0.0)
    return _reduce(loss, reduction)


def soft_margin_loss(
    input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean"
) -> Tensor:
    """log(1 + exp(-target * x)): a two-class logistic loss with targets in {-1, 1}."""
    reduction = _resolve(size_average, reduce, reduction)
    return _reduce((-input * target).exp().log1p(), reduction)


# ================================================================ multi-class margins
def multilabel_soft_margin_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross-entropy of each class's logit, averaged over the classes of a sample."""
    from .functional import logsigmoid  # noqa: PLC0415 - functional imports this module

    reduction = _resolve(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    class_dim = input.ndim - 1
    loss = loss.sum(class_dim) / input.shape[class_dim]
    return _reduce(loss, reduction)


def _class_targets(fn: str, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """(N, C) input and (N,) target from torch's accepted shapes: (C,) with a 0-d target
    too."""
    if input.ndim not in (1, 2) or input.ndim == 2 and input.shape[0] == 0:
        raise RuntimeError(
            f"{fn}: Expected non-empty vector or matrix with optional 0-dim batch size, but "
            f"got: {list(input.shape)}"
        )
    batch = input.unsqueeze(0) if input.ndim == 1 else input
    targets = target.reshape(-1)
    if targets.shape[0] != batch.shape[0]:
        raise RuntimeError(
            f"{fn}: inconsistent target size, expected {batch.shape[0]} but got "
            f"{list(target.shape)}"
        )
    return batch, targets


def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """sum over j != y of max(0, margin - x_y + x_j)^p (times weight[y]), over C: the
    multi-class hinge loss."""
    reduction = _resolve(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.ndim != 1:
        raise ValueError("weight must be one-dimensional")
    batch, targets = _class_targets("multi_margin_loss", input, target)
    n, classes = batch.shape
    ys = _host(targets)
    if ys.size and (ys.min() < 0 or ys.max() >= classes):
        raise IndexError(f"target out of range: classes are 0..{classes - 1}")
    others = np.ones((n, classes), dtype=bool)
    others[np.arange(n), ys] = False
    picked = batch.gather(1, targets.reshape(-1, 1))
    z = (margin - picked + batch).clamp_min(0)
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * weight[targets].reshape(-1, 1)
    loss = where(_on_device(batch, others)._data, z, 0.0).sum(1) / classes
    if input.ndim == 1:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


def multilabel_margin_loss(
    input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean"
) -> Tensor:
    """For each sample, sum over its target classes j (target's leading entries up to the
    first -1) and the other classes k of max(0, 1 - (x_j - x_k)), over C."""
    reduction = _resolve(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise RuntimeError(
            "multilabel_margin_loss: inconsistent target size: "
            f"{list(target.shape)} for input of size: {list(input.shape)}"
        )
    batch = input.unsqueeze(0) if input.ndim == 1 else input
    labels = _host(target).reshape(batch.shape)
    n, classes = batch.shape
    counts = np.zeros((n, classes))  # how often each class is listed as a target
    for i, row in enumerate(labels):
        for label in row:
            if label < 0:
                break
            if label >= classes:
                raise IndexError(f"target out of range: classes are 0..{classes - 1}")
            counts[i, label] += 1
    is_target = counts > 0
    pairs = counts[:, :, None] * ~is_target[:, None, :]  # (n, j, k)
    hinge = (1 - batch.unsqueeze(2) + batch.unsqueeze(1)).clamp_min(0)
    loss = (hinge * _on_device(batch, pairs.astype(batch._data.dtype))).sum((1, 2)) / classes
    if input.ndim == 1:
        loss = loss.reshape(())
    return _reduce(loss, reduction)


# ================================================================ triplets
def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, margin + d(a, p) - d(a, n)) with the pairwise p-norm distance; swap takes the
    negative's distance to the positive when that is smaller."""
    reduction = _resolve(size_average, reduce, reduction)
    _check_triplet(anchor, positive, negative)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = d_neg.minimum(pairwise_distance(positive, negative, p, eps))
    return _reduce((margin + d_pos - d_neg).clamp_min(0), reduction)


def check_triplet_margin(name: str, margin: float) -> None:
    if margin <= 0:
        raise ValueError(f"{name}: expected margin to be greater than 0, got {margin} instead")


def _check_triplet(anchor: Tensor, positive: Tensor, negative: Tensor) -> None:
    dims = (anchor.ndim, positive.ndim, negative.ndim)
    if len(set(dims)) != 1:
        raise RuntimeError(
            "The anchor, positive, and negative tensors are expected to have the same number "
            f"of dimensions, but got: anchor {dims[0]}D, positive {dims[1]}D, and negative "
            f"{dims[2]}D inputs"
        )


def triplet_margin_with_distance_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    distance_function=None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """triplet_margin_loss with a distance of the caller's (pairwise L2 by default)."""
    check_triplet_margin("TripletMarginWithDistanceLoss", margin)
    reduction = _resolve(None, None, reduction)
    _check_triplet(anchor, positive, negative)
    distance = distance_function if distance_function is not None else pairwise_distance
    d_pos = distance(anchor, positive)
    d_neg = distance(anchor, negative)
    if swap:
        d_neg = d_neg.minimum(distance(positive, negative))
    return _reduce((margin + d_pos - d_neg).clamp_min(0), reduction)


# ================================================================ likelihoods
def gaussian_nll_loss(
    input: Tensor,
    target: Tensor,
    var,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """0.5 (log var + (x - target)^2 / var): the negative log-likelihood of the target under
    a Gaussian of the predicted mean and variance. var may have one dimension fewer than
    input, or size 1 in one of them (one variance shared across it), or be a float."""
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = Tensor._make(xp_of(input._data).full(input._data.shape, var, input._data.dtype))
    elif bool((var._data < 0).any()):
        raise ValueError("var has negative entry/entries")
    in_shape, var_shape = tuple(input.shape), tuple(var.shape)
    if var_shape != in_shape:
        if in_shape[:-1] == var_shape:
            var = var.unsqueeze(-1)
        elif not (
            len(in_shape) == len(var_shape)
            and sum(v for i, v in zip(in_shape, var_shape) if i != v) == 1
        ):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    var = var.clone()
    with grad_mode.no_grad():  # the clamp keeps log(var) finite; it passes gradients as is
        var.clamp_(min=eps)
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def poisson_nll_loss(
    input: Tensor,
    target: Tensor,
    log_input: bool = True,
    full: bool = False,
    size_average=None,
    eps: float = 1e-8,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """The Poisson negative log-likelihood: exp(x) - target * x for a log-rate x, or
    x - target * log(x + eps) for a rate; full adds Stirling's term where target > 1."""
    reduction = _resolve(size_average, reduce, reduction)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        stirling = target * target.log() - target + 0.5 * (2 * math.pi * target).log()
        loss = loss + stirling.masked_fill(target <= 1, 0)
    return _reduce(loss, reduction)


__all__ = [
    "cosine_embedding_loss",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "margin_ranking_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "poisson_nll_loss",
    "soft_margin_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]
