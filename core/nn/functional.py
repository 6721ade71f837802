"""`shardgrad.nn.functional`: torch's functional API over shardgrad's fused ops.

Argument checking, legacy arguments (`size_average`, `reduce`) and error messages follow
torch; the arithmetic lives in `shardgrad.ops.nn_ops` (one fused op per layer kind) or is
composed from Tensor ops where composition costs nothing extra.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import numpy as np

from .. import _dtype
from .. import random as _random
from ..autograd import grad_mode
from ..backend import on_device, xp_of
from ..ops import composite as _composite
from ..ops import elementwise as _ew
from ..ops import nn_ops as _nn
from ..ops._util import check_same_device
from ..ops.products import linear as _linear
from ..tensor import Tensor, _wrap_dim
from ._reduction import apply as _reduce
from ._reduction import resolve as _reduction
from .ctc import ctc_loss
from .functional_3d import (
    adaptive_avg_pool3d,
    adaptive_max_pool3d,
    avg_pool3d,
    conv3d,
    conv_transpose3d,
    lp_pool3d,
    max_pool3d,
    max_unpool3d,
)
from .functional_aliases import (
    adaptive_max_pool1d_with_indices,
    adaptive_max_pool2d_with_indices,
    adaptive_max_pool3d_with_indices,
    celu_,
    elu_,
    gumbel_softmax,
    hardtanh_,
    leaky_relu_,
    max_pool1d_with_indices,
    max_pool2d_with_indices,
    max_pool3d_with_indices,
    pdist,
    rrelu_,
    selu_,
    threshold_,
    upsample_bilinear,
    upsample_nearest,
)
from .functional_fractional import (
    fractional_max_pool2d,
    fractional_max_pool2d_with_indices,
    fractional_max_pool3d,
    fractional_max_pool3d_with_indices,
)
from .functional_grid import affine_grid, grid_sample
from .functional_more_layers import (
    alpha_dropout,
    conv_transpose1d,
    dropout3d,
    embedding_bag,
    feature_alpha_dropout,
    local_response_norm,
    max_unpool1d,
    max_unpool2d,
    rrelu,
)
from .functional_spatial import (
    adaptive_avg_pool1d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    bilinear,
    channel_shuffle,
    fold,
    lp_pool1d,
    lp_pool2d,
    max_pool1d,
    pixel_shuffle,
    pixel_unshuffle,
    unfold,
)
from .pair_losses import (
    cosine_embedding_loss,
    gaussian_nll_loss,
    hinge_embedding_loss,
    margin_ranking_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
    poisson_nll_loss,
    soft_margin_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)

__all__ = [
    "linear",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "relu",
    "relu_",
    "relu6",
    "leaky_relu",
    "gelu",
    "silu",
    "mish",
    "elu",
    "softplus",
    "hardtanh",
    "tanh",
    "sigmoid",
    "logsigmoid",
    "selu",
    "celu",
    "softsign",
    "hardsigmoid",
    "hardswish",
    "prelu",
    "tanhshrink",
    "threshold",
    "glu",
    "hardshrink",
    "softshrink",
    "softmax",
    "softmin",
    "log_softmax",
    "dropout",
    "dropout1d",
    "dropout2d",
    "normalize",
    "cosine_similarity",
    "pairwise_distance",
    "layer_norm",
    "rms_norm",
    "group_norm",
    "batch_norm",
    "instance_norm",
    "embedding",
    "scaled_dot_product_attention",
    "pad",
    "interpolate",
    "upsample",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
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
    "adaptive_avg_pool3d",
    "adaptive_max_pool3d",
    "avg_pool3d",
    "conv3d",
    "max_pool3d",
    "alpha_dropout",
    "conv_transpose1d",
    "dropout3d",
    "embedding_bag",
    "feature_alpha_dropout",
    "local_response_norm",
    "max_unpool1d",
    "max_unpool2d",
    "rrelu",
    "adaptive_avg_pool1d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "avg_pool1d",
    "bilinear",
    "channel_shuffle",
    "fold",
    "lp_pool1d",
    "lp_pool2d",
    "max_pool1d",
    "pixel_shuffle",
    "pixel_unshuffle",
    "unfold",
    "adaptive_max_pool1d_with_indices",
    "adaptive_max_pool2d_with_indices",
    "celu_",
    "elu_",
    "gumbel_softmax",
    "hardtanh_",
    "leaky_relu_",
    "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "pdist",
    "rrelu_",
    "selu_",
    "threshold_",
    "upsample_bilinear",
    "upsample_nearest",
    "affine_grid",
    "grid_sample",
    "ctc_loss",
    "fractional_max_pool2d",
    "fractional_max_pool2d_with_indices",
    "fractional_max_pool3d",
    "fractional_max_pool3d_with_indices",
    "conv_transpose3d",
    "lp_pool3d",
    "max_unpool3d",
    "max_pool3d_with_indices",
    "adaptive_max_pool3d_with_indices",
]


def __getattr__(name: str):
    # F.one_hot is shardgrad.one_hot where the op family provides it.
    if name == "one_hot":
        from .. import ops  # noqa: PLC0415

        if hasattr(ops, "one_hot"):
            return ops.one_hot
    raise AttributeError(f"module 'shardgrad.nn.functional' has no attribute '{name}'")


# ================================================================ argument helpers
def _ntuple(x, n: int, name: str = "argument") -> tuple:
    if isinstance(x, Iterable) and not isinstance(x, str):
        t = tuple(int(v) for v in x)
        if len(t) == 1:
            t = t * n
        if len(t) != n:
            raise ValueError(f"expected {n} values for {name}, got {list(t)}")
        return t
    return (int(x),) * n


def _pair(x, name: str = "argument") -> tuple:
    return _ntuple(x, 2, name)


def _data(t):
    return t._data if isinstance(t, Tensor) else t


def _check_float(t: Tensor, what: str) -> None:
    if t._data.dtype.kind != "f":
        raise RuntimeError(f"{what}: expected a floating point tensor, got {t.dtype.name}")


def _same_dtype(input: Tensor, weight: Tensor, bias: Tensor | None, what: str) -> None:
    names = {"float32": "float", "float64": "double", "float16": "c10::Half"}
    if weight._data.dtype != input._data.dtype:
        raise RuntimeError(
            f"Input type ({names.get(input.dtype.name, input.dtype.name)}) and weight type "
            f"({names.get(weight.dtype.name, weight.dtype.name)}) should be the same"
        )
    if bias is not None and bias._data.dtype != input._data.dtype:
        raise RuntimeError(
            f"Input type ({names.get(input.dtype.name, input.dtype.name)}) and bias type "
            f"({names.get(bias.dtype.name, bias.dtype.name)}) should be the same"
        )


# ================================================================ linear and convolution
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    return _linear(input, weight, bias)


def _conv_padding(padding, kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * (2 * len(kernel))
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            out = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                out += [total // 2, total - total // 2]
            return tuple(out)
        raise ValueError(
            f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}"
        )
    p = _ntuple(padding, len(kernel), "padding")
    if any(v < 0 for v in p):
        raise RuntimeError("negative padding is not supported")
    return tuple(v for pv in p for v in (pv, pv))


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    input, unbatched = _as_image_batch(input, "conv2d")
    if weight.ndim != 4:
        raise RuntimeError(
            f"weight should have at least three dimensions, got weight of size {list(weight.shape)}"
        )
    stride, dilation = _stride_and_dilation(stride, dilation)
    kernel = tuple(weight.shape[2:])
    pads = _conv_padding(padding, kernel, stride, dilation)
    n, c, h, w = input.shape
    if weight.shape[0] % groups:
        raise RuntimeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, "
            f"but got weight of size {list(weight.shape)} instead"
        )
    if c != weight.shape[1] * groups:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
            f"{list(input.shape)} to have {weight.shape[1] * groups} channels, but got {c} "
            "channels instead"
        )
    ph, pw = h + pads[0] + pads[1], w + pads[2] + pads[3]
    eh, ew = dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1
    if ph < eh or pw < ew:
        raise RuntimeError(
            f"Calculated padded input size per channel: ({ph} x {pw}). Kernel size: ({eh} x {ew}). "
            "Kernel size can't be greater than actual input size"
        )
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != weight.shape[0]):
        raise RuntimeError(
            f"Given weight of size {list(weight.shape)}, expected bias to be 1-dimensional with "
            f"{weight.shape[0]} elements, but got bias of size {list(bias.shape)} instead"
        )
    _same_dtype(input, weight, bias, "conv2d")
    out = _nn.Conv2d.apply(
        input, weight, bias, stride=stride, pads=pads, dilation=dilation, groups=groups
    )
    return out.squeeze(0) if unbatched else out


def _as_image_batch(input: Tensor, name: str) -> tuple[Tensor, bool]:
    """(a 4-D batch, whether the input was one unbatched 3-D image), with torch's message."""
    if input.ndim not in (3, 4):
        raise RuntimeError(
            f"Expected 3D (unbatched) or 4D (batched) input to {name}, but got input of size: "
            f"{list(input.shape)}"
        )
    unbatched = input.ndim == 3
    return (input.unsqueeze(0) if unbatched else input), unbatched


def _stride_and_dilation(stride, dilation) -> tuple[tuple, tuple]:
    """(stride, dilation) as pairs, both positive, with torch's messages."""
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if any(s <= 0 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if any(d <= 0 for d in dilation):
        raise RuntimeError("dilation should be greater than zero")
    return stride, dilation


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """The transposed convolution: Conv2d's input gradient for an input of the output's size
    (weight (in, out / groups, kh, kw), as torch lays it out)."""
    input, unbatched = _as_image_batch(input, "conv_transpose2d")
    if weight.ndim != 4:
        raise RuntimeError(f"weight should have four dimensions, got {list(weight.shape)}")
    stride, dilation = _stride_and_dilation(stride, dilation)
    padding, output_padding = _pair(padding, "padding"), _pair(output_padding, "output_padding")
    if any(p < 0 for p in padding):
        raise RuntimeError("negative padding is not supported")
    for op, s, d in zip(output_padding, stride, dilation):
        if op < 0 or (op >= s and op >= d):
            raise RuntimeError(
                "output padding must be smaller than either stride or dilation, but got "
                f"output_padding_height: {output_padding[0]} output_padding_width: "
                f"{output_padding[1]} stride_height: {stride[0]} stride_width: {stride[1]} "
                f"dilation_height: {dilation[0]} dilation_width: {dilation[1]}"
            )
    n, c, h, w = input.shape
    if c != weight.shape[0]:
        raise RuntimeError(
            f"Given transposed=1, weight of size {list(weight.shape)}, expected input "
            f"{list(input.shape)} to have {weight.shape[0]} channels, but got {c} channels "
            "instead"
        )
    if weight.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups}")
    out_channels = weight.shape[1] * groups
    size = [
        (length - 1) * s - 2 * p + d * (k - 1) + op + 1
        for length, s, p, d, k, op in zip(
            (h, w), stride, padding, dilation, weight.shape[2:], output_padding
        )
    ]
    if any(x <= 0 for x in size):
        raise RuntimeError(f"Given input size per channel: ({h} x {w}), the output is too small")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != out_channels):
        raise RuntimeError(
            f"Given transposed=1, weight of size {list(weight.shape)}, expected bias to be "
            f"1-dimensional with {out_channels} elements, but got bias of size "
            f"{list(bias.shape)} instead"
        )
    _same_dtype(input, weight, bias, "conv_transpose2d")
    pads = (padding[0], padding[0], padding[1], padding[1])
    out = _nn.Conv2dInputGrad.apply(
        input, weight, in_shape=(n, out_channels, *size), stride=stride, pads=pads,
        dilation=dilation, groups=groups,
    )  # fmt: skip
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else out


def _transpose_output_padding(input, output_size, stride, padding, kernel, dilation) -> tuple:
    """torch's choice of output_padding for a requested output size (2 or 3 spatial dims,
    as many as `stride` has)."""
    n = len(stride)
    spatial = tuple(output_size)[-n:]
    lengths = tuple(input.shape[-n:])
    padding = _ntuple(padding, n, "padding")
    result = []
    for length, want, s, p, k, d in zip(lengths, spatial, stride, padding, kernel, dilation):
        smallest = (length - 1) * s - 2 * p + d * (k - 1) + 1
        if not smallest <= want < smallest + s:
            raise ValueError(
                f"requested an output size of {list(spatial)}, but valid sizes range from "
                f"{smallest} to {smallest + s - 1} (for an input of "
                f"{'x'.join(map(str, lengths))})"
            )
        result.append(want - smallest)
    return tuple(result)


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """A 1-D convolution as a 2-D one over a height of 1."""
    if input.ndim not in (2, 3):
        raise RuntimeError(
            "Expected 2D (unbatched) or 3D (batched) input to conv1d, but got input of size: "
            f"{list(input.shape)}"
        )
    if isinstance(padding, str):
        pad2 = padding
    else:
        pad2 = (0, _ntuple(padding, 1, "padding")[0])
    out = conv2d(
        input.unsqueeze(-2),
        weight.unsqueeze(-2),
        bias,
        stride=(1, _ntuple(stride, 1)[0]),
        padding=pad2,
        dilation=(1, _ntuple(dilation, 1)[0]),
        groups=groups,
    )
    return out.squeeze(-2)


# ================================================================ pooling
def _pool_args(kernel_size, stride, padding):
    k = _pair(kernel_size, "kernel_size")
    s = (
        k
        if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)
        else _pair(stride, "stride")
    )
    p = _pair(padding, "padding")
    if k[0] // 2 < p[0] or k[1] // 2 < p[1]:
        raise RuntimeError(
            f"pad should be smaller than or equal to half of kernel size, but got padW = {p[1]}, "
            f"padH = {p[0]}, kW = {k[1]}, kH = {k[0]}"
        )
    if any(v <= 0 for v in k) or any(v <= 0 for v in s):
        raise RuntimeError("kernel size and stride should be greater than zero")
    return k, s, p


def _as_batched(input: Tensor, name: str) -> tuple[Tensor, bool]:
    if input.ndim not in (3, 4):
        raise RuntimeError(
            f"{name}: Expected 3D or 4D (batch mode) tensor for input, but got: {list(input.shape)}"
        )
    return (input.unsqueeze(0), True) if input.ndim == 3 else (input, False)


def max_pool2d(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    k, s, p = _pool_args(kernel_size, stride, padding)
    d = _pair(dilation, "dilation")
    x, unbatched = _as_batched(input, "max_pool2d")
    holder: dict | None = {} if return_indices else None
    track = grad_mode.state.enabled and x._requires_grad
    out = _nn.MaxPool2d.apply(
        x,
        kernel=k,
        stride=s,
        padding=p,
        dilation=d,
        ceil_mode=ceil_mode,
        track=track,
        indices_out=holder,
    )
    if unbatched:
        out = out.squeeze(0)
    if return_indices:
        idx = Tensor._make(holder["indices"])
        return out, idx.squeeze(0) if unbatched else idx
    return out


def avg_pool2d(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override=None,
) -> Tensor:
    k, s, p = _pool_args(kernel_size, stride, padding)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    x, unbatched = _as_batched(input, "avg_pool2d")
    out = _nn.AvgPool2d.apply(
        x,
        kernel=k,
        stride=s,
        padding=p,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
        divisor_override=divisor_override,
    )
    return out.squeeze(0) if unbatched else out


def _adaptive_matrix(in_size: int, out_size: int, dtype) -> np.ndarray:
    """(out, in) averaging weights over torch's windows [floor(i*L/O), ceil((i+1)*L/O))."""
    m = np.zeros((out_size, in_size), dtype=dtype)
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = -((-(i + 1) * in_size) // out_size)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    if input.ndim not in (3, 4):
        raise RuntimeError(
            f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got {list(input.shape)}"
        )
    h, w = input.shape[-2:]
    if isinstance(output_size, Iterable):
        oh, ow = tuple(output_size)
    else:
        oh = ow = output_size
    oh = h if oh is None else int(oh)
    ow = w if ow is None else int(ow)
    if (oh, ow) == (1, 1):
        return input.mean((-2, -1), keepdim=True)
    if (oh, ow) == (h, w):
        return input * 1.0
    if h % oh == 0 and w % ow == 0:
        return avg_pool2d(input, (h // oh, w // ow))
    xp = xp_of(input._data)
    dt = input._data.dtype
    rows = Tensor._make(xp.asarray(_adaptive_matrix(h, oh, dt)))
    cols = Tensor._make(xp.asarray(_adaptive_matrix(w, ow, dt).T.copy()))
    return rows @ (input @ cols)


# ================================================================ activations
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.relu_() if inplace else input.relu()


def relu_(input: Tensor) -> Tensor:
    return input.relu_()


def _maybe_inplace(input: Tensor, inplace: bool, fn) -> Tensor:
    """fn(input); with inplace=True, fn's result written into input's memory the way torch's
    in-place activations do it: recorded as an in-place op on input (a leaf that requires
    grad refuses, a view updates its base), fn reading a copy of the old value wherever the
    graph may save it."""
    if not inplace:
        return fn(input)
    from ..ops.inplace import run_inplace  # noqa: PLC0415

    return run_inplace(input, fn)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return _maybe_inplace(
        input, inplace, lambda x: _nn.LeakyRelu.apply(x, negative_slope=negative_slope)
    )


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate}")
    _check_float(input, "gelu")
    return _nn.Gelu.apply(input, approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, _nn.Silu.apply)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, lambda x: x * softplus(x).tanh())


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace, lambda x: _nn.Elu.apply(x, alpha=alpha))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return _nn.Softplus.apply(input, beta=beta, threshold=threshold)


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _maybe_inplace(
        input, inplace, lambda x: _nn.Hardtanh.apply(x, min_val=min_val, max_val=max_val)
    )


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def tanh(input: Tensor) -> Tensor:
    return _ew.tanh(input)


def sigmoid(input: Tensor) -> Tensor:
    return _ew.sigmoid(input)


# The activations below are compositions of Tensor ops: create_graph differentiates them as
# they stand. Branches that could overflow (an exp of a large input) see the clamped input.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with torch's self-normalising constants."""
    return _maybe_inplace(
        input, inplace, lambda x: _nn.Elu.apply(x, alpha=_SELU_ALPHA) * _SELU_SCALE
    )


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1))."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError")

    def celu_of(x: Tensor) -> Tensor:
        return _ew.where(x > 0, x, (x.clamp(max=0) / alpha).expm1() * alpha)

    return _maybe_inplace(input, inplace, celu_of)


def softsign(input: Tensor) -> Tensor:
    return input / (input.abs() + 1)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6: 0 below -3, 1 above 3, linear between."""
    return _maybe_inplace(input, inplace, lambda x: hardtanh(x + 3.0, 0.0, 6.0) / 6.0)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6."""
    return _maybe_inplace(input, inplace, lambda x: x * (hardtanh(x + 3.0, 0.0, 6.0) / 6.0))


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """max(0, x) + weight * min(0, x), one weight for every channel (dim 1) or one for all."""
    if weight.numel() != 1:
        channels = input.shape[1] if input.ndim > 1 else 1
        if weight.numel() != channels:
            raise RuntimeError(
                "Mismatch of parameter numbers and input channel size. Found parameter numbers "
                f"= {weight.numel()} and channel size = {channels}."
            )
        if input.ndim > 1:
            weight = weight.reshape(channels, *([1] * (input.ndim - 2)))
    return _ew.where(input > 0, input, weight * input)


def tanhshrink(input: Tensor) -> Tensor:
    return input - input.tanh()


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    return _maybe_inplace(input, inplace, lambda x: _ew.where(x > threshold, x, value))


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b), a and b the two halves of input along dim."""
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    size = input.shape[dim]
    if size % 2:
        raise RuntimeError(
            f"Halving dimension must be even, but dimension {_wrap_dim(dim, input.ndim)} is "
            f"size {size}"
        )
    a, b = input.chunk(2, dim)
    return a * b.sigmoid()


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    return _ew.where(input.abs() > lambd, input, 0.0)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return _ew.where(input > lambd, input - lambd, _ew.where(input < -lambd, input + lambd, 0.0))


def logsigmoid(input: Tensor) -> Tensor:
    return _nn.LogSigmoid.apply(input)


def _softmax_dim(name: str, ndim: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include "
        "dim=X as an argument.",
        stacklevel=4,
    )
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_like(op, name: str, input: Tensor, dim, dtype) -> Tensor:
    if dim is None:
        dim = _softmax_dim(name, input.ndim)
    if dtype is not None:
        input = input.to(dtype)
    _check_float(input, name)
    if input.ndim == 0:
        return op.apply(input.reshape((1,)), dim=0).reshape(())
    return op.apply(input, dim=_wrap_dim(dim, input.ndim))


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return _softmax_like(_nn.Softmax, "softmax", input, dim, dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return _softmax_like(_nn.Softmax, "softmin", -input, dim, dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return _softmax_like(_nn.LogSoftmax, "log_softmax", input, dim, dtype)


# ================================================================ dropout
def _dropout_mask(input: Tensor, p: float, shape: tuple):
    xp = xp_of(input._data)
    dt = input._data.dtype
    if p == 1.0:
        return xp.zeros(shape, dtype=dt)
    gen = _random.generator(input.device)
    u = gen.random(shape, dtype=np.float64 if dt == np.float64 else np.float32)
    mask = (u >= p).astype(dt)
    mask *= dt.type(1.0 / (1.0 - p))
    return mask


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _apply_mask(input: Tensor, mask, inplace: bool) -> Tensor:
    return _maybe_inplace(input, inplace, lambda x: _nn.MaskMul.apply(x, mask=mask))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    _check_p(p)
    if not training or p == 0.0 or input.numel() == 0:
        return input
    return _apply_mask(input, _dropout_mask(input, p, input.shape), inplace)


def _feature_dropout(
    input: Tensor, p: float, training: bool, inplace: bool, batched_ndim: int, name: str
) -> Tensor:
    _check_p(p)
    if input.ndim not in (batched_ndim - 1, batched_ndim):
        raise RuntimeError(
            f"{name}: Expected {batched_ndim - 1}D or {batched_ndim}D input, but received a "
            f"{input.ndim}D input."
        )
    if not training or p == 0.0:
        return input
    lead = 2 if input.ndim == batched_ndim else 1
    shape = tuple(input.shape[:lead]) + (1,) * (input.ndim - lead)
    return _apply_mask(input, _dropout_mask(input, p, shape), inplace)


def dropout1d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    return _feature_dropout(input, p, training, inplace, 3, "dropout1d")


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    return _feature_dropout(input, p, training, inplace, 4, "dropout2d")


# ================================================================ attention
def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """softmax(q k^T * scale + mask) v over the last two dims, torch's math backend.

    A boolean mask says which positions take part (True); a float mask is added to the
    scores. A query row left with no position at all gives zeros, not nan, as torch's safe
    softmax does. The scale (1/sqrt(E) by default) goes half on q and half on k, as in torch,
    which keeps q k^T from overflowing early. `enable_gqa` lets key and value have fewer
    heads (dim -3) than query, each shared by a group of query heads."""
    if is_causal and attn_mask is not None:
        raise RuntimeError(
            "_scaled_dot_product_attention: Explicit attn_mask should not be set when "
            "is_causal=True"
        )
    _check_p(dropout_p)
    if enable_gqa:
        key, value = (_share_heads(t, query.shape[-3]) for t in (key, value))
    length, source = query.shape[-2], key.shape[-2]
    root_scale = math.sqrt(1.0 / math.sqrt(query.shape[-1]) if scale is None else scale)
    scores = (query * root_scale) @ (key.transpose(-2, -1) * root_scale)
    keep = None
    if is_causal:
        keep = Tensor._make(xp_of(scores._data).tri(length, source, dtype=bool))
    elif attn_mask is not None:
        if attn_mask.dtype == _dtype.bool_:
            keep = attn_mask
        else:
            scores = scores + attn_mask
    if keep is not None:
        scores = scores.masked_fill(keep.logical_not(), float("-inf"))
    empty = Tensor._make((scores._data == -np.inf).all(axis=-1, keepdims=True))
    if bool(empty._data.any()):  # rows with nothing to attend to: zeros, and no nan gradient
        weights = softmax(scores.masked_fill(empty, 0.0), -1).masked_fill(empty, 0.0)
    else:
        weights = softmax(scores, -1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return weights @ value


def _share_heads(t: Tensor, query_heads: int) -> Tensor:
    """(..., H, S, E) -> (..., query_heads, S, E), each head repeated for its group of query
    heads (torch's repeat_interleave over dim -3)."""
    heads = t.shape[-3]
    if query_heads % heads:
        raise RuntimeError(
            f"enable_gqa: the query's {query_heads} heads are not a multiple of the "
            f"{heads} key/value heads"
        )
    groups = query_heads // heads
    lead, (s, e) = tuple(t.shape[:-3]), tuple(t.shape[-2:])
    return t.unsqueeze(-3).expand(*lead, heads, groups, s, e).reshape(*lead, query_heads, s, e)


# ================================================================ resampling
def interpolate(
    input: Tensor,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize the spatial dims (all after the first two) by `size` or `scale_factor`:
    "nearest" (torch's legacy nearest: source index floor(dst * in / out)), "nearest-exact"
    (the pixel centre's), "linear" / "bilinear" / "trilinear", "bicubic" (torch's cubic
    convolution, A = -0.75), all with align_corners as torch, or "area" (adaptive average
    pooling). Each dim is resampled on its own with index_select and a weighted sum, so the
    gradient comes from those ops."""
    spatial = input.ndim - 2
    if spatial < 1:
        raise ValueError(f"interpolate expects a batch and a channel dim, got {input.ndim}D input")
    interpolating = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}
    if mode not in ("nearest", "nearest-exact", "area", *interpolating) or (
        mode in interpolating and interpolating[mode] != spatial
    ):
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for "
            "the modes: nearest | linear | bilinear | bicubic | trilinear | area | "
            f"nearest-exact (got {mode})"
        )
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ValueError(
            "align_corners option can only be set with the interpolating modes: linear | "
            "bilinear | bicubic | trilinear"
        )
    if antialias:
        raise NotImplementedError("antialias is not provided")
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    in_sizes = tuple(input.shape[2:])
    if size is not None:
        out_sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * spatial
        scales = [None] * spatial
    else:
        factors = (
            tuple(scale_factor)
            if isinstance(scale_factor, (tuple, list))
            else (scale_factor,) * spatial
        )
        out_sizes = tuple(int(math.floor(n * f)) for n, f in zip(in_sizes, factors))
        scales = [None if recompute_scale_factor else float(f) for f in factors]
    if len(out_sizes) != spatial:
        raise ValueError(f"size has {len(out_sizes)} dims, the input {spatial} spatial dims")
    if mode == "area":
        pool = {1: adaptive_avg_pool1d, 2: adaptive_avg_pool2d, 3: adaptive_avg_pool3d}
        return pool[spatial](input, out_sizes if spatial > 1 else out_sizes[0])
    out = input
    for axis, (n_in, n_out, given) in enumerate(zip(in_sizes, out_sizes, scales)):
        dim = axis + 2
        if mode in ("nearest", "nearest-exact"):
            source = _nearest_source(n_in, n_out, given, exact=mode == "nearest-exact")
            out = _index_along(out, dim, source, input)
        elif mode == "bicubic":
            out = _cubic_resample(out, dim, n_in, n_out, given, bool(align_corners), input)
        else:
            out = _linear_resample(out, dim, n_in, n_out, given, bool(align_corners), input)
    return out


def _nearest_source(n_in: int, n_out: int, scale_factor, exact: bool = False) -> np.ndarray:
    scale = np.float32(1.0 / scale_factor if scale_factor else n_in / n_out)
    dst = np.arange(n_out, dtype=np.float32) + (np.float32(0.5) if exact else np.float32(0))
    src = np.floor(dst * scale).astype(np.int64)
    return np.minimum(src, n_in - 1)


_CUBIC_A = -0.75  # torch's (and OpenCV's) cubic convolution coefficient


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """The four taps' weights at fractional offset t (Keys's cubic convolution)."""
    a = _CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _cubic_resample(x, dim: int, n_in: int, n_out: int, scale_factor, align_corners: bool, like):
    """torch's bicubic along one dim: four neighbours (clamped at the edges), weighted."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        scale = 1.0 / scale_factor if scale_factor else n_in / n_out
        src = (dst + 0.5) * scale - 0.5  # not clamped at 0 for cubic, as in torch
    base = np.floor(src).astype(np.int64)
    weights = _cubic_weights(src - base)
    shape = [1] * x.ndim
    shape[dim] = n_out
    out = None
    for k, w in enumerate(weights):
        index = np.clip(base - 1 + k, 0, n_in - 1)
        term = _index_along(x, dim, index, like) * _as_device_tensor(
            w.astype(like._data.dtype).reshape(shape), like
        )
        out = term if out is None else out + term
    return out


def _linear_resample(x, dim: int, n_in: int, n_out: int, scale_factor, align_corners: bool, like):
    """torch's area_pixel_compute_source_index, then a blend of the two neighbours."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    else:
        scale = 1.0 / scale_factor if scale_factor else n_in / n_out
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    weight = (src - lo).astype(like._data.dtype)
    shape = [1] * x.ndim
    shape[dim] = n_out
    w = _as_device_tensor(weight.reshape(shape), like)
    near, far = _index_along(x, dim, lo, like), _index_along(x, dim, hi, like)
    return near + (far - near) * w


def _index_along(x: Tensor, dim: int, index: np.ndarray, like: Tensor) -> Tensor:
    return x.index_select(dim, _as_device_tensor(index, like))


def _as_device_tensor(array: np.ndarray, like: Tensor) -> Tensor:
    return Tensor._make(on_device(array, like._data))


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    return interpolate(input, size, scale_factor, mode, align_corners)


# ================================================================ distances
def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    return _composite.cosine_similarity(x1, x2, dim, eps)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    return _composite.pairwise_distance(x1, x2, p, eps, keepdim)


# ================================================================ normalisation
def normalize(
    input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Tensor | None = None
) -> Tensor:
    """input / max(||input||_p over dim, eps), torch's formula: the norm is clamped, so a
    zero vector stays zero instead of dividing by zero."""
    if out is not None:
        raise TypeError("normalize: out= is not supported; use the returned tensor")
    denom = input.norm(p, dim, keepdim=True).clamp_min(eps)
    return input / denom


def layer_norm(
    input: Tensor,
    normalized_shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    ns = _normalized_shape(input, normalized_shape, weight=weight, bias=bias)
    axes = tuple(range(input.ndim - len(ns), input.ndim))
    return _nn.NormAffine.apply(input, weight, bias, axes=axes, eps=eps, param_shape=ns)


def rms_norm(
    input: Tensor, normalized_shape, weight: Tensor | None = None, eps: float | None = None
) -> Tensor:
    """x / sqrt(mean(x^2 over the normalized dims) + eps), times weight: torch's RMSNorm.
    eps defaults to the machine epsilon of the input's dtype, as in torch."""
    ns = _normalized_shape(input, normalized_shape, weight=weight)
    if eps is None:
        eps = float(np.finfo(input._data.dtype).eps)
    dims = tuple(range(input.ndim - len(ns), input.ndim))
    out = input * (input * input).mean(dims, keepdim=True).add(eps).rsqrt()
    return out if weight is None else out * weight


def _normalized_shape(input: Tensor, normalized_shape, **affine: Tensor | None) -> tuple:
    """normalized_shape as a tuple, checked against the input's trailing dims and the
    affine tensors' shapes, with torch's messages."""
    ns = (
        (int(normalized_shape),)
        if isinstance(normalized_shape, (int, np.integer))
        else tuple(int(s) for s in normalized_shape)
    )
    k = len(ns)
    if k == 0 or tuple(input.shape[input.ndim - k :]) != ns or input.ndim < k:
        raise RuntimeError(
            f"Given normalized_shape={list(ns)}, expected input with shape [*, "
            f"{', '.join(str(s) for s in ns)}], but got input of size{list(input.shape)}"
        )
    for name, t in affine.items():
        if t is not None and tuple(t.shape) != ns:
            raise RuntimeError(
                f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape {list(t.shape)} and normalized_shape = {list(ns)}"
            )
    return ns


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    if input.ndim < 2:
        raise RuntimeError(
            f"Expected at least 2 dimensions for input tensor but received {input.ndim}"
        )
    n, c = input.shape[:2]
    if c % num_groups:
        raise RuntimeError(
            "Expected number of channels in input to be divisible by num_groups, but got input of "
            f"shape {list(input.shape)} and num_groups={num_groups}"
        )
    grouped = input.reshape(n, num_groups, -1)
    out = _nn.NormAffine.apply(grouped, None, None, axes=(2,), eps=eps, param_shape=(1, 1, 1))
    out = out.reshape(input.shape)
    param_shape = (1, c) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(param_shape)
    if bias is not None:
        out = out + bias.reshape(param_shape)
    return out


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    if input.ndim < 2:
        raise ValueError(f"expected at least 2D input (got {input.ndim}D input)")
    c = input.shape[1]
    param_shape = (1, c) + (1,) * (input.ndim - 2)
    axes = (0,) + tuple(range(2, input.ndim))
    for name, t in (
        ("weight", weight),
        ("bias", bias),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ):
        if t is not None and t.numel() != c:
            raise RuntimeError(
                f"running_mean should contain {c} elements not {t.numel()}"
                if name.startswith("running")
                else f"{name} should contain {c} elements not {t.numel()}"
            )
    if training:
        count = input.numel() // c
        if count <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {input.shape}"
            )
        stats: dict = {}
        out = _nn.NormAffine.apply(
            input, weight, bias, axes=axes, eps=eps, param_shape=param_shape, stats=stats
        )
        with grad_mode.no_grad():
            if running_mean is not None:
                _blend(running_mean, stats["mean"].reshape(c), momentum)
            if running_var is not None:
                _blend(running_var, stats["var"].reshape(c) * (count / (count - 1)), momentum)
        return out
    if running_mean is None or running_var is None:
        raise RuntimeError("running_mean and running_var must be defined in evaluation mode")
    xp = xp_of(input._data)
    dt = input._data.dtype
    invstd = 1.0 / xp.sqrt(running_var._data.astype(dt) + eps)
    mean = running_mean._data.astype(dt)
    if weight is None and bias is None:
        scale = Tensor._make(invstd.reshape(param_shape))
        return input * scale + Tensor._make((-mean * invstd).reshape(param_shape))
    scale = Tensor._make(invstd)
    if weight is not None:
        scale = weight * scale
    shift = scale * Tensor._make(-mean)
    if bias is not None:
        shift = shift + bias
    return input * scale.reshape(param_shape) + shift.reshape(param_shape)


def instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each sample's channels over their own spatial positions. As torch does it: a
    batch norm of a (1, N*C, ...) view, with per-channel tensors repeated for each sample and
    running statistics averaged back over the samples."""
    if input.ndim < 3:
        raise ValueError(
            f"instance_norm expects a batch, channels and positions, got {input.ndim}D"
        )
    n, c = input.shape[:2]
    repeated = [
        None if t is None else t.repeat(n) for t in (running_mean, running_var, weight, bias)
    ]
    out = batch_norm(
        input.reshape(1, n * c, *input.shape[2:]), *repeated[:2], *repeated[2:],
        use_input_stats, momentum, eps,
    )  # fmt: skip
    if use_input_stats:
        with grad_mode.no_grad():
            for running, updated in zip((running_mean, running_var), repeated[:2]):
                if running is not None:
                    running._data[...] = updated._data.reshape(n, c).mean(axis=0)
                    running._bump_version()
    return out.reshape(input.shape)


def _blend(buf: Tensor, value, momentum: float) -> None:
    """running = (1 - momentum) * running + momentum * value, in place."""
    d = buf._data
    d *= 1.0 - momentum
    d += (momentum * value).astype(d.dtype, copy=False)
    buf._bump_version()


# ================================================================ embedding and padding
def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    if sparse:
        raise NotImplementedError(
            "shardgrad computes dense embedding gradients only (sparse=False)"
        )
    num = weight.shape[0]
    if padding_idx is not None:
        if padding_idx > 0 and padding_idx >= num:
            raise AssertionError("Padding_idx must be within num_embeddings")
        if padding_idx < 0:
            if padding_idx < -num:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = num + padding_idx
    idx = _data(input)
    if not hasattr(idx, "dtype"):
        idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar types: "
            f"Long, Int; but got {_dtype.from_numpy_dtype(idx.dtype).name} instead (while checking "
            "arguments for embedding)"
        )
    # (host indices only: on a GPU the check would be a host round trip per step)
    if type(idx) is np.ndarray and idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num):
        raise IndexError("index out of range in self")
    if max_norm is not None:
        _embedding_renorm(weight, idx, max_norm, norm_type)
    token_scale = None
    if padding_idx is not None or scale_grad_by_freq:
        xp = xp_of(weight._data)
        token_scale = xp.ones(idx.shape, dtype=weight._data.dtype)
        if scale_grad_by_freq:
            counts = xp.bincount(idx.reshape(-1), minlength=num)
            token_scale = token_scale / counts[idx]
        if padding_idx is not None:
            token_scale[idx == padding_idx] = 0
    return _nn.Embedding.apply(weight, idx=idx, token_scale=token_scale)


def _embedding_renorm(weight: Tensor, idx, max_norm: float, norm_type: float) -> None:
    xp = xp_of(weight._data)
    rows = xp.unique(idx.reshape(-1))
    w = weight._data
    sel = w[rows]
    if norm_type == math.inf:
        norms = xp.abs(sel).max(axis=1)
    else:
        norms = (xp.abs(sel) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    over = norms > max_norm
    if over.any():
        scale = (max_norm / (norms[over] + 1e-7)).astype(w.dtype)
        w[rows[over]] = sel[over] * scale[:, None]
        weight._bump_version()


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    pad = [int(p) for p in pad]
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError(
            "Padding length should be less than or equal to two times the input dimension but "
            f"got padding length {len(pad)} and input of dimension {input.ndim}"
        )
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        return _nn.ConstantPad.apply(
            input, pads=tuple(widths), value=0.0 if value is None else value
        )
    if value is not None and value != 0:
        raise ValueError(f'Padding mode "{mode}" doesn\'t take in value argument.')
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    n_pad = len(pad) // 2
    index = [slice(None)] * (input.ndim - n_pad)
    first = input.ndim - n_pad
    for d in range(first, input.ndim):
        size = input.shape[d]
        lo, hi = widths[d]
        if mode == "reflect" and (lo >= size or hi >= size):
            raise RuntimeError(
                f"Argument #4: Padding size should be less than the corresponding input dimension, "
                f"but got: padding ({lo}, {hi}) at dimension {d} of input {list(input.shape)}"
            )
        if mode == "circular" and (lo > size or hi > size):
            raise RuntimeError("Padding value causes wrapping around more than once.")
        pos = np.arange(-lo, size + hi)
        if mode == "reflect":
            pos = np.abs(pos)
            pos = np.where(pos >= size, 2 * (size - 1) - pos, pos)
        elif mode == "replicate":
            pos = np.clip(pos, 0, size - 1)
        else:
            pos = pos % size
        shape = [1] * n_pad
        shape[d - first] = pos.size
        index.append(xp_of(input._data).asarray(pos.reshape(shape)))
    return input[tuple(index)]


# ================================================================ losses
def _warn_if_broadcast_target(input: Tensor, target: Tensor) -> None:
    """torch's warning for elementwise losses whose target would silently broadcast."""
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=3,
        )


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    _warn_if_broadcast_target(input, target)
    reduction = _reduction(size_average, reduce, reduction)
    if weight is not None:
        if tuple(weight.shape) != tuple(input.shape):
            raise ValueError("Weights and input must have the same size.")
        d = input - target
        sq = d * d * weight
        if reduction == "mean":
            return sq.sum() / weight.sum()
        return _reduce(sq, reduction)
    return _nn.MseLoss.apply(input, target, reduction=reduction)


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    _warn_if_broadcast_target(input, target)
    reduction = _reduction(size_average, reduce, reduction)
    loss = (input - target).abs()
    if weight is not None:
        if tuple(weight.shape) != tuple(input.shape):
            raise ValueError("Weights and input must have the same size.")
        loss = loss * weight
        if reduction == "mean":
            return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    d = input - target
    if beta == 0.0:
        return _reduce(d.abs(), reduction)
    return _reduce(_nn.SmoothL1.apply(d, beta=beta), reduction)


def huber_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    reduction = _reduction(None, None, reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    loss = _nn.SmoothL1.apply(input - target, beta=delta, huber=True)
    if weight is not None:
        loss = loss * weight
        if reduction == "mean":
            return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    if reduction == "batchmean":
        red = "sum"
    else:
        red = _reduction(size_average, reduce, reduction)
        if red == "mean":
            warnings.warn(
                "reduction: 'mean' divides the total loss by both the batch size and the support "
                "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
                "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
                "major release.",
                stacklevel=2,
            )
    if log_target:
        loss = target.exp() * (target - input)
    else:
        pos = target._data > 0
        safe = _ew.where(pos, target, 1.0)
        loss = target * safe.log() - target * input
    out = _reduce(loss, red)
    if reduction == "batchmean" and input.ndim != 0:
        out = out / input.shape[0]
    return out


def _class_weight(weight: Tensor | None, n_classes: int):
    if weight is None:
        return None
    if weight.ndim != 1 or weight.shape[0] != n_classes:
        raise RuntimeError(
            f"weight tensor should be defined either for all {n_classes} classes or no classes but "
            f"got weight tensor of shape: {list(weight.shape)}"
        )
    return weight._data


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    t = _data(target)
    if t.dtype.kind not in "iu":
        raise RuntimeError(
            f"expected scalar type Long but found {_dtype.from_numpy_dtype(t.dtype).name.capitalize()}"
        )
    unbatched = input.ndim == 1
    if unbatched:
        if t.ndim != 0:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        input, t = input.unsqueeze(0), t.reshape(1)
    elif t.ndim == 0 or input.shape[0] != t.shape[0]:
        raise ValueError(
            f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
            f"({t.shape[0] if t.ndim else 0})."
        )
    if not unbatched and tuple(t.shape[1:]) != tuple(input.shape[2:]):
        raise RuntimeError(
            f"Expected target size {[input.shape[0], *input.shape[2:]]}, got {list(t.shape)}"
        )
    w = _class_weight(weight, input.shape[1])
    out = _nn.NllLoss.apply(input, t, weight=w, reduction=reduction, ignore_index=ignore_index)
    return out.squeeze(0) if unbatched and reduction == "none" else out


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    class_dim = 0 if input.ndim == 1 else 1
    n_classes = input.shape[class_dim]
    t = _data(target)
    if (
        input.ndim == 2
        and weight is None
        and label_smoothing == 0.0
        and t.dtype.kind in "iu"
        and t.ndim == 1
        and t.shape[0] == input.shape[0]
        and input._data.dtype.kind == "f"
    ):  # the common case: one fused op (one kernel each way on a GPU)
        check_same_device(input._data, t)
        return _nn.SoftmaxCrossEntropy.apply(
            input, t, reduction=reduction, ignore_index=ignore_index
        )
    logp = log_softmax(input, class_dim)
    w_shape = [1] * input.ndim
    w_shape[class_dim] = n_classes
    if _data(target).dtype.kind == "f":
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(
                f"Expected input batch_size ({input.shape[0]}) to match target batch_size "
                f"({target.shape[0] if target.ndim else 0})."
                if target.ndim and input.ndim and target.shape[0] != input.shape[0]
                else f"Expected target size {list(input.shape)}, got {list(target.shape)}"
            )
        t = target
        if label_smoothing > 0:
            t = t * (1 - label_smoothing) + label_smoothing / n_classes
        prod = logp * t
        w = _class_weight(weight, n_classes)
        if w is not None:
            prod = prod * weight.reshape(tuple(w_shape))
        if reduction == "none":
            return -prod.sum(class_dim)
        if reduction == "sum":
            return -prod.sum()
        return -prod.sum() / (input.numel() / n_classes)
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0.0:
        return nll
    t = _data(target)
    ignore = t == ignore_index
    if weight is not None:
        smooth = -(logp * weight.reshape(tuple(w_shape))).sum(class_dim)
    else:
        smooth = -logp.sum(class_dim)
    keep = Tensor._make(xp_of(input._data).asarray(~ignore, dtype=input._data.dtype))
    smooth = smooth * keep
    if reduction == "mean":
        xp = xp_of(t)
        if weight is not None:
            safe = xp.where(ignore, 0, t)
            denom = (weight._data[safe] * (~ignore)).sum()
        else:
            denom = (~ignore).sum()
        # all targets ignored: the nll term is already nan; this one must not make the
        # gradient nan too (torch's is zero)
        denom = xp.asarray(denom).astype(input._data.dtype)
        ret = smooth.sum() / Tensor._make(xp.where(denom != 0, denom, 1))
    elif reduction == "sum":
        ret = smooth.sum()
    else:
        ret = smooth
    return nll * (1 - label_smoothing) + ret * (label_smoothing / n_classes)


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}) is deprecated. Please ensure they have the same size."
        )
    x = input._data
    # (host inputs only: on a GPU the check would be a host round trip per step)
    if type(x) is np.ndarray and x.size and (bool((x < 0).any()) or bool((x > 1).any())):
        raise RuntimeError("all elements of input should be between 0 and 1")
    if weight is not None and tuple(weight.shape) != tuple(input.shape):
        weight = weight.expand(input.shape)
    return _nn.BinaryCrossEntropy.apply(input, target, weight, reduction=reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Target size ({target.shape}) must be the same as input size ({input.shape})"
        )
    return _nn.BceWithLogits.apply(input, target, weight, pos_weight, reduction=reduction)
