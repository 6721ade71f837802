"""Random draws shaped by tensors: multinomial, bernoulli and normal.

They draw from shardgrad's generators (the one `manual_seed` seeds, or a device's own), on the
tensor's device, so the same seed gives the same draws; the streams are not torch's. The draws
carry no gradient (torch's gradients through them are zeros).
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from .. import random as _random
from ..backend import device_of, xp_of
from ..tensor import Tensor


def _uniform(like, shape: tuple) -> object:
    """Uniform [0, 1) draws of `shape` on `like`'s device, in its float dtype (float64 for
    other dtypes)."""
    dtype = like.dtype if like.dtype in (np.float32, np.float64) else np.float64
    return _random.generator(device_of(like)).random(shape, dtype=dtype)


def multinomial(
    input: Tensor, num_samples: int, replacement: bool = False, *, generator=None
) -> Tensor:
    """Indices drawn from each row of non-negative weights (rows need not sum to 1).

    Without replacement: the Gumbel-top-k trick (the k largest of log w - log(-log u) are a
    draw of k distinct indices with torch's probabilities). With it: each draw inverts the
    row's cumulative distribution."""
    p = input._data
    if p.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if p.dtype.kind != "f":
        raise RuntimeError(
            f"multinomial only supports floating-point dtypes for input, got: {input.dtype}"
        )
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    xp = xp_of(p)
    rows = p.reshape(1, -1) if p.ndim == 1 else p
    categories = rows.shape[1]
    if not replacement and num_samples > categories:
        raise RuntimeError(
            "cannot sample n_sample > prob_dist.size(-1) samples without replacement"
        )
    if bool((rows < 0).any()) or not bool(xp.isfinite(rows).all()):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    totals = rows.sum(axis=1, keepdims=True)
    if bool((totals <= 0).any()):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    if replacement:
        cdf = xp.cumsum(rows / totals, axis=1)
        u = _uniform(p, (rows.shape[0], num_samples))
        out = (u[:, :, None] >= cdf[:, None, :]).sum(axis=2)
        out = xp.minimum(out, categories - 1)  # u just below 1 against a cdf ending below 1
    else:
        if bool(((rows > 0).sum(axis=1) < num_samples).any()):
            raise RuntimeError(
                "invalid multinomial distribution (with replacement=False, not enough non-negative category to sample)"
            )
        u = _uniform(p, rows.shape)
        with np.errstate(divide="ignore"):
            keys = xp.log(rows) - xp.log(-xp.log(u))
        out = xp.argsort(-keys, axis=1)[:, :num_samples]
    out = out.astype(np.int64)
    return Tensor._make(out.reshape(-1) if p.ndim == 1 else out)


def bernoulli(input: Tensor, p: float | None = None, *, generator=None) -> Tensor:
    """1 with probability `input` (or `p`), else 0, in input's dtype."""
    probs = input._data if p is None else None
    if probs is not None and (bool((probs < 0).any()) or bool((probs > 1).any())):
        raise RuntimeError("Expected p_in >= 0 && p_in <= 1 to be true, but got false.")
    u = _uniform(input._data, input._data.shape)
    threshold = probs if probs is not None else p
    return Tensor._make((u < threshold).astype(input._data.dtype))


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None) -> Tensor:
    """Normal draws with the given mean and standard deviation: tensors (broadcast against
    each other) or numbers with a `size`."""
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        if size is None:
            raise TypeError("normal() with number mean and std needs a size")
        from ..factory import randn  # noqa: PLC0415

        return randn(*size, dtype=dtype, device=device) * float(std) + float(mean)
    like = mean if isinstance(mean, Tensor) else std
    m = mean._data if isinstance(mean, Tensor) else mean
    s = std._data if isinstance(std, Tensor) else std
    xp = xp_of(like._data)
    if bool((xp.asarray(s) < 0).any()):
        raise RuntimeError("normal expects all elements of std >= 0.0")
    shape = np.broadcast_shapes(xp.shape(m), xp.shape(s))
    dt = like._data.dtype if like._data.dtype.kind == "f" else _dtype.get_default_dtype().np
    z = _random.generator(device_of(like._data)).standard_normal(shape, dtype=dt)
    return Tensor._make((z * s + m).astype(dt, copy=False))


TENSOR_METHODS = {"multinomial": multinomial, "bernoulli": bernoulli}

__all__ = ["multinomial", "bernoulli", "normal"]
