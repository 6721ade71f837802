"""The smaller corners of torch.nn.functional: in-place spellings of the activations,
`*_with_indices` pooling, the deprecated upsample_* helpers, gumbel_softmax and pdist.

Each is a thin layer over an op defined elsewhere; they exist so that code written against
torch runs unchanged.
"""

from __future__ import annotations

import warnings

from ..ops.arrangements import triu_indices
from ..tensor import Tensor
from . import functional as F
from . import functional_3d as F3
from . import functional_more_layers as FM
from . import functional_spatial as FS

__all__ = [
    "adaptive_max_pool1d_with_indices",
    "adaptive_max_pool2d_with_indices",
    "adaptive_max_pool3d_with_indices",
    "max_pool3d_with_indices",
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
]


# ================================================================ in-place activations
def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return F.elu(input, alpha, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return F.celu(input, alpha, inplace=True)


def selu_(input: Tensor) -> Tensor:
    return F.selu(input, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return F.leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return F.hardtanh(input, min_val, max_val, inplace=True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    return F.threshold(input, threshold, value, inplace=True)


def rrelu_(
    input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False
) -> Tensor:
    return FM.rrelu(input, lower, upper, training, inplace=True)


# ================================================================ pooling with indices
def max_pool1d_with_indices(
    input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, **_
):
    return FS.max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(
    input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, **_
):
    return F.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(
    input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, **_
):
    return F3.max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool3d_with_indices(input: Tensor, output_size, **_):
    return F3.adaptive_max_pool3d(input, output_size, True)


def adaptive_max_pool1d_with_indices(input: Tensor, output_size, **_):
    return FS.adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input: Tensor, output_size, **_):
    return FS.adaptive_max_pool2d(input, output_size, True)


# ================================================================ deprecated upsampling
def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    warnings.warn(
        "`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.",
        stacklevel=2,
    )
    return F.interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Bilinear with align_corners=True, as the old torch function did."""
    warnings.warn(
        "`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.",
        stacklevel=2,
    )
    return F.interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ================================================================ sampling and distances
def gumbel_softmax(
    logits: Tensor, tau: float = 1.0, hard: bool = False, eps: float = 1e-10, dim: int = -1
) -> Tensor:
    """A sample from the Gumbel-softmax (concrete) distribution over `dim`.

    With `hard=True` the result is one-hot in the forward pass while its gradient is the
    soft sample's (the straight-through estimator). `eps` is unused, as in torch.
    """
    gumbels = -logits.detach().new_empty(logits.shape).exponential_().log()
    y_soft = ((logits + gumbels) / tau).softmax(dim)
    if not hard:
        return y_soft
    index = y_soft.max(dim, keepdim=True)[1]
    y_hard = logits.detach().new_zeros(logits.shape).scatter_(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distance between every pair of rows i < j of an (N, M) input, in the
    order of the upper triangle read row by row: N (N - 1) / 2 values."""
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    n = input.shape[0]
    i, j = triu_indices(n, n, 1, device=input.device)
    return (input[i] - input[j]).norm(p, dim=1)
