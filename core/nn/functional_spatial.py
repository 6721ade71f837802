"""The 1-D pools, adaptive max pooling, power-average pooling, and the functions that move
elements between channels and space (pixel and channel shuffles, unfold and fold).

Each 1-D pool is its 2-D counterpart over a height of 1, so the two share one op and one set
of semantics. Adaptive max pooling gathers each output cell's window (windows differ in size
by at most one element, so the shorter ones repeat their last element) and takes `max` over
it: the gradient goes to the first maximum, as in torch. `nn.functional` exports these under
torch's names.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..backend import xp_of
from ..ops import nn_ops as _nn
from ..ops.products import einsum
from ..tensor import Tensor
from . import functional as F


# ================================================================ 1-D pools
def _batched_1d(input: Tensor, name: str) -> tuple[Tensor, bool]:
    """(N, C, 1, L) from an (N, C, L) or (C, L) input, and whether it was unbatched."""
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"Expected 2 to 3 dimensions, but got {input.ndim}-dimensional tensor for argument "
            f"#1 'self' (while checking arguments for {name})"
        )
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    return x.unsqueeze(2), unbatched


def _unbatch_1d(out: Tensor, unbatched: bool) -> Tensor:
    out = out.squeeze(2)
    return out.squeeze(0) if unbatched else out


def _single(value, name: str) -> int:
    if isinstance(value, Iterable):
        values = tuple(value)
        if len(values) != 1:
            raise ValueError(f"expected 1 value for {name}, got {list(values)}")
        return int(values[0])
    return int(value)


def max_pool1d(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    if input.ndim not in (2, 3):
        raise RuntimeError(
            "max_pool1d: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch size "
            f"for input, but got:{list(input.shape)}"
        )
    x, unbatched = _batched_1d(input, "max_pool1d")
    k = _single(kernel_size, "kernel_size")
    s = k if stride is None or stride == [] or stride == () else _single(stride, "stride")
    out = F.max_pool2d(
        x, (1, k), (1, s), (0, _single(padding, "padding")), (1, _single(dilation, "dilation")),
        ceil_mode=ceil_mode, return_indices=return_indices,
    )  # fmt: skip
    if return_indices:
        values, indices = out
        return _unbatch_1d(values, unbatched), _unbatch_1d(indices, unbatched)
    return _unbatch_1d(out, unbatched)


def avg_pool1d(
    input: Tensor,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    x, unbatched = _batched_1d(input, "avg_pool1d")
    k = _single(kernel_size, "kernel_size")
    s = k if stride is None or stride == [] or stride == () else _single(stride, "stride")
    out = F.avg_pool2d(
        x, (1, k), (1, s), (0, _single(padding, "padding")), ceil_mode, count_include_pad
    )
    return _unbatch_1d(out, unbatched)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    x, unbatched = _batched_1d(input, "adaptive_avg_pool1d")
    out = F.adaptive_avg_pool2d(x, (1, _single(output_size, "output_size")))
    return _unbatch_1d(out, unbatched)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    x, unbatched = _batched_1d(input, "adaptive_max_pool1d")
    out = adaptive_max_pool2d(x, (1, _single(output_size, "output_size")), return_indices)
    if return_indices:
        return _unbatch_1d(out[0], unbatched), _unbatch_1d(out[1], unbatched)
    return _unbatch_1d(out, unbatched)


# ================================================================ adaptive max pooling
def _windows(in_size: int, out_size: int) -> np.ndarray:
    """(out, longest window) input positions of torch's adaptive windows
    [floor(i*L/O), ceil((i+1)*L/O)); a shorter window repeats its last position, which
    changes neither its maximum nor which position holds it first."""
    starts = [(i * in_size) // out_size for i in range(out_size)]
    ends = [-((-(i + 1) * in_size) // out_size) for i in range(out_size)]
    longest = max((e - s for s, e in zip(starts, ends)), default=0)
    index = np.empty((out_size, longest), dtype=np.int64)
    for i, (s, e) in enumerate(zip(starts, ends)):
        index[i] = np.minimum(np.arange(s, s + longest), e - 1)
    return index


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    if input.ndim not in (3, 4):
        raise RuntimeError(
            f"adaptive_max_pool2d(): Expected 3D or 4D tensor, but got: {list(input.shape)}"
        )
    h, w = input.shape[-2:]
    oh, ow = tuple(output_size) if isinstance(output_size, Iterable) else (output_size,) * 2
    oh = h if oh is None else int(oh)
    ow = w if ow is None else int(ow)
    if oh < 0 or ow < 0 or (h == 0 or w == 0) and oh * ow > 0:
        raise RuntimeError(
            f"adaptive_max_pool2d(): output size {[oh, ow]} is not possible for an input of "
            f"size {[h, w]}"
        )
    lead = tuple(input.shape[:-2])
    if oh == 0 or ow == 0:
        empty = Tensor._make(xp_of(input._data).zeros(lead + (oh, ow), input._data.dtype))
        out = empty + input.sum() * 0 if input.requires_grad else empty
        if return_indices:
            return out, Tensor._make(xp_of(input._data).zeros(lead + (oh, ow), np.int64))
        return out
    rows, cols = _windows(h, oh), _windows(w, ow)
    xp = xp_of(input._data)
    r = Tensor._make(xp.asarray(rows[:, :, None, None]))
    c = Tensor._make(xp.asarray(cols[None, None, :, :]))
    patches = input[..., r, c]  # (*, OH, KH, OW, KW)
    kh, kw = rows.shape[1], cols.shape[1]
    patches = patches.movedim(-3, -2).reshape(*lead, oh, ow, kh * kw)
    values, where = patches.max(-1)
    if not return_indices:
        return values
    # the winner's position in the input plane, h * W + w
    where_np = where._data
    flat = rows[:, :, None, None] * w + cols[None, None, :, :]  # (OH, KH, OW, KW)
    flat = xp.asarray(np.moveaxis(flat, 2, 1).reshape(oh, ow, kh * kw))
    picked = xp.take_along_axis(
        xp.broadcast_to(flat, where_np.shape + (kh * kw,)), where_np[..., None], axis=-1
    )[..., 0]
    return values, Tensor._make(picked)


# ================================================================ power-average pooling
def lp_pool2d(
    input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False
) -> Tensor:
    """(sum over the window of x^p)^(1/p), as torch computes it: an average times the
    window's size, negative averages clamped to zero."""
    kh, kw = F._pair(kernel_size, "kernel_size")
    out = F.avg_pool2d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return (out.sign() * F.relu(out.abs())).mul(kw * kh).pow(1.0 / norm_type)


def lp_pool1d(
    input: Tensor, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False
) -> Tensor:
    out = avg_pool1d(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    k = _single(kernel_size, "kernel_size")
    return (out.sign() * F.relu(out.abs())).mul(k).pow(1.0 / norm_type)


# ================================================================ channels and space
def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r): each group of r^2 channels becomes an r x r
    block of pixels."""
    r = int(upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(
            "pixel_shuffle expects input to have at least 3 dimensions, but got input with "
            f"{input.ndim} dimension(s)"
        )
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise RuntimeError(
            "pixel_shuffle expects its input's 'channel' dimension to be divisible by the "
            f"square of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}"
        )
    n = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """The inverse of pixel_shuffle: (*, C, H r, W r) -> (*, C r^2, H, W)."""
    r = int(downscale_factor)
    if input.ndim < 3:
        raise RuntimeError(
            "pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
            f"{input.ndim} dimension(s)"
        )
    *lead, c, h, w = input.shape
    for size, axis, name in ((h, -2, "height"), (w, -1, "width")):
        if size % r:
            raise RuntimeError(
                f"pixel_unshuffle expects {name} to be divisible by downscale_factor, but "
                f"input.size({axis})={size} is not divisible by {r}"
            )
    n = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Interleave the channels of `groups` groups: (N, g, C/g, *) -> (N, C/g, g, *)."""
    c = input.shape[1]
    if groups <= 0 or c % groups:
        raise RuntimeError(
            f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups."
        )
    n, rest = input.shape[0], tuple(input.shape[2:])
    x = input.reshape(n, groups, c // groups, *rest).transpose(1, 2)
    return x.reshape(n, c, *rest)


def _fold_args(kernel_size, dilation, padding, stride) -> tuple:
    k = F._pair(kernel_size, "kernel_size")
    d = F._pair(dilation, "dilation")
    p = F._pair(padding, "padding")
    s = F._pair(stride, "stride")
    return k, d, (p[0], p[0], p[1], p[1]), s


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col: the sliding blocks of (N, C, H, W) as columns, (N, C kh kw, L)."""
    if input.ndim not in (3, 4):
        raise RuntimeError(
            "Expected 3D or 4D (batch mode) tensor for input with possible 0 batch size and "
            f"non-zero dimensions, but got: {list(input.shape)}"
        )
    k, d, pads, s = _fold_args(kernel_size, dilation, padding, stride)
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    out = _nn.Unfold.apply(x, kernel=k, stride=s, pads=pads, dilation=d)
    return out.squeeze(0) if unbatched else out


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """col2im: columns (N, C kh kw, L) summed back onto (N, C, *output_size)."""
    if input.ndim not in (2, 3):
        raise RuntimeError(
            "Expected 2D or 3D (batch mode) tensor for input with possible 0 batch size and "
            f"non-zero dimensions, but got: {list(input.shape)}"
        )
    k, d, pads, s = _fold_args(kernel_size, dilation, padding, stride)
    out_hw = F._pair(output_size, "output_size")
    unbatched = input.ndim == 2
    cols = input.unsqueeze(0) if unbatched else input
    n, ckk, length = cols.shape
    if ckk % (k[0] * k[1]):
        raise RuntimeError(
            "Expected size of input's dimension 1 to be divisible by the product of "
            f"kernel_size, but got input.size(1)={ckk} and kernel_size={k}."
        )
    geom = _nn._ConvGeom(
        (n, ckk // (k[0] * k[1]), *out_hw), (1, ckk // (k[0] * k[1]), *k), s, pads, d, 1
    )
    blocks = geom.out_hw
    if blocks[0] * blocks[1] != length:
        raise RuntimeError(
            f"Given output_size={out_hw}, kernel_size={k}, dilation={d}, padding="
            f"{(pads[0], pads[2])}, stride={s}, expected size of input's dimension 2 to match "
            f"the calculated number of sliding blocks {blocks[0]} * {blocks[1]} = "
            f"{blocks[0] * blocks[1]}, but got input.size(2)={length}."
        )
    out = _nn.Fold.apply(cols, geom=geom)
    return out.squeeze(0) if unbatched else out


# ================================================================ bilinear
def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y_k = x1^T W_k x2 + b_k over the last dims, batches broadcast."""
    if input1.shape[-1] != weight.shape[1]:
        raise RuntimeError(
            f"bilinear(): input1 size does not match weight size: got {input1.shape[-1]} but "
            f"expected {weight.shape[1]}"
        )
    if input2.shape[-1] != weight.shape[2]:
        raise RuntimeError(
            f"bilinear(): input2 size does not match weight size: got {input2.shape[-1]} but "
            f"expected {weight.shape[2]}"
        )
    out = einsum("...i,oij,...j->...o", input1, weight, input2)
    return out + bias if bias is not None else out


__all__ = [
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
]
