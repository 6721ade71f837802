"""Functional forms of the less common layers: 3-D and alpha dropouts, randomized leaky ReLU,
local response normalisation, bags of embeddings, 1-D transposed convolution and max
unpooling. Each is a composition of the ops and functions that the common layers use, with
torch's formulas, so gradients come from those. `nn.functional` exports them.
"""

from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..backend import xp_of
from ..ops.indexing import index_add
from ..ops.join import stack
from ..tensor import Tensor
from . import functional as F

_SELU_ALPHA = 1.7580993408473766  # torch's alpha' = -lambda * alpha of SELU


# ================================================================ dropouts
def dropout3d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of a (N, C, D, H, W) or (C, D, H, W) input."""
    return F._feature_dropout(input, p, training, inplace, 5, "dropout3d")


def _alpha_dropout(input: Tensor, p: float, training: bool, feature: bool) -> Tensor:
    """Dropout for self-normalising networks: dropped units take SELU's negative saturation,
    then an affine map keeps the mean and variance (torch's _dropout_impl with alpha)."""
    F._check_p(p)
    if p == 0 or not training or input.numel() == 0:
        return input
    if p == 1:
        return input * 0
    shape = tuple(input.shape)
    if feature:
        shape = shape[:2] + (1,) * (input.ndim - 2)
    dt = input._data.dtype
    u = _random.generator(input.device).random(
        shape, dtype=np.float64 if dt == np.float64 else np.float32
    )
    keep = (u >= p).astype(dt)
    a = 1.0 / math.sqrt((_SELU_ALPHA * _SELU_ALPHA * p + 1) * (1 - p))
    shift = (keep - 1) * (_SELU_ALPHA * a) + _SELU_ALPHA * a * p
    return input * Tensor._make((keep * a).astype(dt)) + Tensor._make(shift.astype(dt))


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False):
    return F._maybe_inplace(input, inplace, lambda x: _alpha_dropout(x, p, training, feature=False))


def feature_alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    return F._maybe_inplace(input, inplace, lambda x: _alpha_dropout(x, p, training, feature=True))


def rrelu(
    input: Tensor,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
) -> Tensor:
    """Leaky ReLU whose negative slope is drawn uniformly from [lower, upper] for each element
    in training, and is their mean in evaluation."""
    if not training:
        return F.leaky_relu(input, (lower + upper) / 2, inplace)
    data = input._data
    xp = xp_of(data)
    u = _random.generator(input.device).random(tuple(input.shape), dtype=data.dtype)
    slope = Tensor._make(xp.where(data >= 0, 1.0, lower + (upper - lower) * u).astype(data.dtype))
    return F._maybe_inplace(input, inplace, lambda x: x * slope)


# ================================================================ normalisation
def local_response_norm(
    input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Tensor:
    """x / (k + alpha * mean of x^2 over `size` neighbouring channels)^beta."""
    dim = input.ndim
    if dim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {dim} dimensions)")
    if input.numel() == 0:
        return input
    sizes = tuple(input.shape)
    div = (input * input).reshape(sizes[0], 1, sizes[1], -1)
    div = F.pad(div, (0, 0, size // 2, (size - 1) // 2))
    div = F.avg_pool2d(div, (size, 1), stride=1).reshape(*sizes)
    return input / (div * alpha + k).pow(beta)


# ================================================================ bags of embeddings
def embedding_bag(
    input: Tensor,
    weight: Tensor,
    offsets: Tensor | None = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """The sum, mean or max of each bag's embeddings: bags are the rows of a 2-D input, or
    the runs of a 1-D input that `offsets` starts. Entries equal to padding_idx take no
    part (nor count in a mean); an empty bag gives zeros."""
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, but got {mode}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(
            "embedding_bag: per_sample_weights was not None. per_sample_weights is only "
            f"supported for mode='sum' (got mode='{mode}'). Please open a feature request on "
            "GitHub."
        )
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None")
        bags, length = input.shape
        flat = input.reshape(-1)
        bag_of = np.repeat(np.arange(bags), length)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
    elif input.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if offsets.ndim != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        starts = _host(offsets)
        if include_last_offset:
            starts = starts[:-1]
        bags = len(starts)
        flat = input
        bag_of = np.searchsorted(starts, np.arange(input.shape[0]), side="right") - 1
    else:
        raise ValueError(
            f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.ndim}"
        )
    indices = _host(flat)
    keep = indices != padding_idx if padding_idx is not None else np.ones(len(indices), bool)
    if padding_idx is not None and padding_idx < 0:
        keep = indices != padding_idx + weight.shape[0]
    rows = F.embedding(flat, weight, None, max_norm, norm_type, scale_grad_by_freq)
    dim = weight.shape[1]
    xp = xp_of(weight._data)
    if mode == "max":
        outs = []
        for b in range(bags):
            members = np.flatnonzero((bag_of == b) & keep)
            if members.size:
                chosen = rows.index_select(0, Tensor._make(xp.asarray(members)))
                outs.append(chosen.max(0).values)
            else:
                outs.append(Tensor._make(xp.zeros((dim,), dtype=weight._data.dtype)))
        return stack(outs, 0) if outs else Tensor._make(xp.zeros((0, dim), weight._data.dtype))
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.unsqueeze(1)
    rows = rows * Tensor._make(xp.asarray(keep[:, None].astype(weight._data.dtype)))
    zeros = Tensor._make(xp.zeros((bags, dim), dtype=weight._data.dtype))
    total = index_add(zeros, 0, Tensor._make(xp.asarray(bag_of)), rows)
    if mode == "sum":
        return total
    counts = np.bincount(bag_of[keep], minlength=bags).astype(weight._data.dtype)
    return total / Tensor._make(xp.asarray(np.maximum(counts, 1)[:, None]))


def _host(t: Tensor) -> np.ndarray:
    data = t._data
    return np.asarray(data.get() if hasattr(data, "get") else data, dtype=np.int64)


# ================================================================ 1-D transposed convolution
def conv_transpose1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """conv_transpose2d over a height of 1 (weight (in, out / groups, k))."""
    if input.ndim not in (2, 3):
        raise RuntimeError(
            "Expected 2D (unbatched) or 3D (batched) input to conv_transpose1d, but got input "
            f"of size: {list(input.shape)}"
        )

    def one(v, name):
        return F._ntuple(v, 1, name)[0]

    out = F.conv_transpose2d(
        input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, one(stride, "stride")),
        (0, one(padding, "padding")), (0, one(output_padding, "output_padding")), groups,
        (1, one(dilation, "dilation")),
    )  # fmt: skip
    return out.squeeze(-2)


# ================================================================ max unpooling
def _unpool_size(in_size: int, k: int, s: int, p: int) -> int:
    return (in_size - 1) * s - 2 * p + k


def max_unpool2d(
    input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None
) -> Tensor:
    """The inverse of max_pool2d with return_indices: each value goes back to the position
    its index names in its plane, the rest are zeros."""
    k = F._pair(kernel_size, "kernel_size")
    s = k if stride is None else F._pair(stride, "stride")
    p = F._pair(padding, "padding")
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    idx = indices.unsqueeze(0) if unbatched else indices
    n, c, h, w = x.shape
    if output_size is None:
        out_hw = (_unpool_size(h, k[0], s[0], p[0]), _unpool_size(w, k[1], s[1], p[1]))
    else:
        out_hw = tuple(output_size)[-2:]
    plane = out_hw[0] * out_hw[1]
    flat_idx = idx.reshape(n, c, -1)
    if flat_idx.numel() and (int(flat_idx.max()) >= plane or int(flat_idx.min()) < 0):
        raise RuntimeError(
            f"Found an invalid max index: {int(flat_idx.max())} (output volumes are of size "
            f"{out_hw[0]}x{out_hw[1]})"
        )
    zeros = Tensor._make(xp_of(x._data).zeros((n, c, plane), dtype=x._data.dtype))
    out = zeros.scatter(2, flat_idx, x.reshape(n, c, -1)).reshape(n, c, *out_hw)
    return out.squeeze(0) if unbatched else out


def max_unpool1d(
    input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None
) -> Tensor:
    k = F._ntuple(kernel_size, 1, "kernel_size")[0]
    s = k if stride is None else F._ntuple(stride, 1, "stride")[0]
    p = F._ntuple(padding, 1, "padding")[0]
    size = None if output_size is None else (1, tuple(output_size)[-1])
    out = max_unpool2d(input.unsqueeze(-2), indices.unsqueeze(-2), (1, k), (1, s), (0, p), size)
    return out.squeeze(-2)


__all__ = [
    "alpha_dropout",
    "conv_transpose1d",
    "dropout3d",
    "embedding_bag",
    "feature_alpha_dropout",
    "local_response_norm",
    "max_unpool1d",
    "max_unpool2d",
    "rrelu",
]
