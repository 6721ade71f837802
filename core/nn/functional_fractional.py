"""Fractional max pooling (Graham 2014): max pooling whose window starts are spread
pseudo-randomly so that the output can shrink the input by any ratio, not just an integer.

For each (sample, channel) plane a number u in [0, 1) per spatial dimension fixes the starts:
start[i] = floor((i + u) alpha) - floor(u alpha) with alpha = (in - k) / (out - 1), and the
last window ends at the input's edge; this is torch's interval rule, and passing torch's
`_random_samples` gives torch's windows. Each output is the maximum of a k-sized window at
those starts (its first maximum wins), gathered from the flattened plane, so the gradient
reaches the winners through ordinary gather and max.
"""

from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..backend import xp_of
from ..tensor import Tensor

__all__ = [
    "fractional_max_pool2d", "fractional_max_pool2d_with_indices", "fractional_max_pool3d",
    "fractional_max_pool3d_with_indices",
]  # fmt: skip


def _starts(samples, in_size: int, out_size: int, k: int, xp):
    """(planes, out_size) window starts for each plane's sample u."""
    if out_size == 1:
        return xp.full((samples.shape[0], 1), in_size - k, dtype=np.int64)
    alpha = (in_size - k) / (out_size - 1)
    i = xp.arange(out_size - 1, dtype=samples.dtype)[None, :]
    u = samples[:, None]
    starts = xp.floor((i + u) * alpha).astype(np.int64) - xp.floor(u * alpha).astype(np.int64)
    last = xp.full((samples.shape[0], 1), in_size - k, dtype=np.int64)
    return xp.concatenate([starts, last], axis=1)


def _fractional(input: Tensor, kernel, output_size, output_ratio, samples, dims: int, name: str):
    batched = input.ndim == dims + 2
    if input.ndim not in (dims + 1, dims + 2):
        raise RuntimeError(
            f"{name}: expected {dims + 1}D or {dims + 2}D tensor, but got {list(input.shape)}"
        )
    x = input if batched else input.unsqueeze(0)
    n, c = x.shape[:2]
    spatial = tuple(x.shape[2:])
    kernel = (kernel,) * dims if isinstance(kernel, int) else tuple(kernel)
    if output_size is None and output_ratio is None:
        raise ValueError(f"{name} requires specifying either an output_size or an output_ratio")
    if output_size is None:
        ratio = (
            (output_ratio,) * dims
            if isinstance(output_ratio, (int, float))
            else tuple(output_ratio)
        )
        output_size = tuple(int(s * r) for s, r in zip(spatial, ratio))
    out = (output_size,) * dims if isinstance(output_size, int) else tuple(output_size)
    for s, o, k in zip(spatial, out, kernel):
        if o + k - 1 > s:
            raise RuntimeError(
                f"{name}(): pool size {k} too large relative to input size {s} for output size {o}"
            )
    xp = xp_of(x._data)
    if samples is None:
        u = _random.generator(x.device).random((n, c, dims))
        u = xp.asarray(u, dtype=x._data.dtype)
    else:
        u = samples._data if isinstance(samples, Tensor) else xp.asarray(samples)
        if tuple(u.shape) != (n, c, dims):
            raise RuntimeError(
                f"{name}: expected _random_samples of shape {(n, c, dims)}, got {tuple(u.shape)}"
            )
    planes = u.reshape(n * c, dims)
    # which sample drives which dimension, as torch's kernels read them: (width, height) for
    # images, (depth, height, width) for volumes
    order = [1, 0] if dims == 2 else [0, 1, 2]
    starts = [_starts(planes[:, order[d]], spatial[d], out[d], kernel[d], xp) for d in range(dims)]
    # flat index of every (output position, window offset) in each plane
    strides = [math.prod(spatial[d + 1 :]) for d in range(dims)]
    index = xp.zeros((n * c,) + out + kernel, dtype=np.int64)
    for d in range(dims):
        shape = [n * c] + [1] * (2 * dims)
        shape[1 + d] = out[d]
        pos = starts[d].reshape(shape)
        off_shape = [1] * (1 + 2 * dims)
        off_shape[1 + dims + d] = kernel[d]
        offsets = xp.arange(kernel[d]).reshape(off_shape)
        index = index + (pos + offsets) * strides[d]
    flat = x.reshape(n, c, -1)
    window = math.prod(kernel)
    gathered = flat.gather(2, Tensor._make(index.reshape(n, c, -1)))
    gathered = gathered.reshape(n, c, *out, window)
    values, which = gathered.max(-1)
    positions = xp.take_along_axis(index.reshape(n, c, *out, window), which._data[..., None], -1)
    indices = Tensor._make(positions[..., 0])
    if not batched:
        values, indices = values.squeeze(0), indices.squeeze(0)
    return values, indices


def fractional_max_pool2d_with_indices(
    input: Tensor, kernel_size, output_size=None, output_ratio=None, return_indices=False,
    _random_samples=None,
):  # fmt: skip
    return _fractional(input, kernel_size, output_size, output_ratio, _random_samples, 2,
                       "fractional_max_pool2d")  # fmt: skip


def fractional_max_pool2d(
    input: Tensor, kernel_size, output_size=None, output_ratio=None, return_indices=False,
    _random_samples=None,
):  # fmt: skip
    values, indices = fractional_max_pool2d_with_indices(
        input, kernel_size, output_size, output_ratio, return_indices, _random_samples
    )
    return (values, indices) if return_indices else values


def fractional_max_pool3d_with_indices(
    input: Tensor, kernel_size, output_size=None, output_ratio=None, return_indices=False,
    _random_samples=None,
):  # fmt: skip
    return _fractional(input, kernel_size, output_size, output_ratio, _random_samples, 3,
                       "fractional_max_pool3d")  # fmt: skip


def fractional_max_pool3d(
    input: Tensor, kernel_size, output_size=None, output_ratio=None, return_indices=False,
    _random_samples=None,
):  # fmt: skip
    values, indices = fractional_max_pool3d_with_indices(
        input, kernel_size, output_size, output_ratio, return_indices, _random_samples
    )
    return (values, indices) if return_indices else values
