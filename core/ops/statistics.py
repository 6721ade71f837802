"""Statistics of samples: cov, corrcoef, quantile, nanquantile, nanmedian, mode and histc.

quantile sorts and interpolates between the two order statistics around each q, with torch's
five interpolation rules; its gradient flows through the sort to the chosen elements.
nanmedian and mode pick elements by index (gathered, so gradients reach them); histc counts.
"""

from __future__ import annotations

import numpy as np

from ..backend import xp_of
from ..tensor import Tensor, _wrap_dim
from ._select import return_type
from .elementwise import where
from .indexing import gather
from .join import stack

_nanmedian_t = return_type("nanmedian")
_mode_t = return_type("mode")
_histogram_t = return_type("histogram", ("hist", "bin_edges"))
_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


# ================================================================ covariance
def cov(input: Tensor, *, correction: int = 1, fweights=None, aweights=None) -> Tensor:
    """The covariance of the variables in input's rows, observations in its columns."""
    if input.ndim > 2:
        raise RuntimeError(
            "cov(): expected input to have two or fewer dimensions but got an input with "
            f"{input.ndim} dimensions"
        )
    x = input.reshape(1, -1) if input.ndim < 2 else input
    if x._data.dtype.kind in "biu":
        x = x.float()
    n = x.shape[1]
    weights = None
    if fweights is not None:
        weights = fweights
    if aweights is not None:
        weights = aweights if weights is None else weights * aweights
    if weights is None:
        total = float(n)
        mean = x.mean(1, keepdim=True)
        norm = total - correction
    else:
        w = weights.to(x.dtype)
        total = w.sum()
        mean = (x * w).sum(1, keepdim=True) / total
        if aweights is None:
            norm = total - correction
        else:
            norm = total - correction * (w * aweights.to(x.dtype)).sum() / total
    centred = x - mean
    weighted = centred if weights is None else centred * weights.to(x.dtype)
    norm = norm.clamp_min(0) if isinstance(norm, Tensor) else max(norm, 0)
    return ((weighted @ centred.mT) / norm).squeeze()


def corrcoef(input: Tensor) -> Tensor:
    """Pearson correlation coefficients of the rows, clipped to [-1, 1] as torch does."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = c.diagonal()
    stddev = d.sqrt()
    c = c / stddev.unsqueeze(1) / stddev.unsqueeze(0)
    return c.clamp(-1, 1)


# ================================================================ order statistics
def _check_q(q, like: Tensor):
    """q as a float array on the host, checked, and whether it was a scalar."""
    if isinstance(q, Tensor):
        if q.dtype != like.dtype:
            raise RuntimeError("quantile() q tensor must be same dtype as the input tensor")
        if q.ndim > 1:
            raise RuntimeError("quantile() q must be a scalar or 1D tensor")
        qs = q._data
        qs = np.asarray(qs.get() if hasattr(qs, "get") else qs, dtype=np.float64)
        scalar = q.ndim == 0
    else:
        qs = np.asarray(q, dtype=np.float64)
        scalar = qs.ndim == 0
    for value in np.atleast_1d(qs):
        if not 0 <= value <= 1:
            raise RuntimeError(f"quantile() q must be in the range [0, 1] but got {float(value)}")
    return np.atleast_1d(qs), scalar


def _quantile(input: Tensor, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool):
    name = "nanquantile" if ignore_nan else "quantile"
    if input._data.dtype.kind != "f":
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(
            f"{name}() interpolation must be one of linear, lower, higher, midpoint or "
            f"nearest. Got {interpolation}"
        )
    qs, scalar = _check_q(q, input)
    if input.numel() == 0:
        raise RuntimeError(f"{name}() input tensor must be non-empty")
    if dim is None:
        x, axis = input.reshape(-1), 0
    else:
        axis = _wrap_dim(dim, max(input.ndim, 1))
        x = input.reshape(1) if input.ndim == 0 else input
    xp = xp_of(x._data)
    ordered, _ = x.sort(axis)  # nan sorts last
    n = x.shape[axis]
    nan_count = xp.isnan(x._data).sum(axis=axis, keepdims=True)
    valid = (n - nan_count) if ignore_nan else xp.full_like(nan_count, n)
    outs = []
    for value in qs:
        rank = value * (valid - 1).astype(np.float64)
        below = xp.floor(rank).astype(np.int64)
        above = xp.ceil(rank).astype(np.int64)
        if interpolation == "lower":
            above = below
        elif interpolation == "higher":
            below = above
        elif interpolation == "nearest":
            nearest = xp.round(rank).astype(np.int64)  # round half to even, as torch
            below = above = nearest
        below, above = xp.clip(below, 0, n - 1), xp.clip(above, 0, n - 1)
        lo = gather(ordered, axis, Tensor._make(below))
        hi = gather(ordered, axis, Tensor._make(above))
        if interpolation == "midpoint":
            out = lo + (hi - lo) * 0.5
        elif interpolation == "linear":
            weight = (rank - below).astype(x._data.dtype)
            out = lo + (hi - lo) * Tensor._make(weight)
        else:
            out = lo
        # a slice with a nan is nan (quantile), or all nan (nanquantile)
        poisoned = (valid == 0) if ignore_nan else (nan_count > 0)
        out = where(poisoned, float("nan"), out)
        outs.append(out if keepdim and dim is not None else out.squeeze(axis))
    if dim is None and keepdim:
        outs = [o.reshape(*([1] * input.ndim)) for o in outs]
    return outs[0] if scalar else stack(outs, 0)


def quantile(
    input: Tensor, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"
) -> Tensor:
    return _quantile(input, q, dim, keepdim, interpolation, ignore_nan=False)


def nanquantile(
    input: Tensor, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"
) -> Tensor:
    """quantile over the values that are not nan."""
    return _quantile(input, q, dim, keepdim, interpolation, ignore_nan=True)


def nanmedian(input: Tensor, dim=None, keepdim: bool = False):
    """The lower median of the values that are not nan (nan where all are); with dim, the
    values and their indices."""
    if dim is None:  # torch shares the gradient among every element equal to the median
        flat = input.reshape(-1)
        value = _nanmedian_along(flat, 0, False)[0].detach()
        ties = flat == value
        return where(ties._data, flat, 0.0).sum() / ties.sum()  # nan when all are nan
    return _nanmedian_t(*_nanmedian_along(input, _wrap_dim(dim, max(input.ndim, 1)), keepdim))


def _nanmedian_along(input: Tensor, dim: int, keepdim: bool):
    x = input.reshape(1) if input.ndim == 0 else input
    xp = xp_of(x._data)
    ordered, order = x.sort(dim, stable=True)
    valid = x.shape[dim] - xp.isnan(x._data).sum(axis=dim, keepdims=True)
    pick = xp.maximum((valid - 1) // 2, 0).astype(np.int64)
    index = Tensor._make(pick)
    values = gather(ordered, dim, index)
    indices = gather(order, dim, index)
    if not keepdim or input.ndim == 0:
        values, indices = values.squeeze(dim), indices.squeeze(dim)
    return values, indices


def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """The most frequent value along dim (the smallest of those tied) and an index of it."""
    x = input.reshape(1) if input.ndim == 0 else input
    dim = _wrap_dim(dim, x.ndim)
    data = x._data
    host = np.moveaxis(np.asarray(data.get() if hasattr(data, "get") else data), dim, -1)
    rows = host.reshape(-1, host.shape[-1])
    best_index = np.empty(rows.shape[0], dtype=np.int64)
    for r, row in enumerate(rows):
        values, counts = np.unique(row, return_counts=True)
        winner = values[np.argmax(counts)]  # unique sorts, so ties go to the smallest
        best_index[r] = np.flatnonzero(row == winner)[-1]
    index = np.expand_dims(best_index.reshape(host.shape[:-1]), dim)
    index_t = Tensor._make(xp_of(data).asarray(index))
    values = gather(x, dim, index_t)
    if not keepdim or input.ndim == 0:
        values, index_t = values.squeeze(dim), index_t.squeeze(dim)
    return _mode_t(values, index_t)


def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:  # noqa: A002
    """Counts in `bins` equal bins over [min, max] (the data's range when both are 0);
    values outside are ignored."""
    if input._data.dtype.kind != "f":
        raise RuntimeError(f"\"histogram_cpu\" not implemented for '{input.dtype}'")
    if bins <= 0:
        raise RuntimeError(f"torch.histc: bins must be > 0, but got {bins} for dimension 0")
    data = input._data
    xp = xp_of(data)
    lo, hi = float(min), float(max)
    if lo == hi and data.size:
        lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError("torch.histc: max must be larger than min")
    flat = data.reshape(-1)
    inside = flat[(flat >= lo) & (flat <= hi)]
    index = ((inside - lo) * (bins / (hi - lo))).astype(np.int64)
    index = xp.minimum(index, bins - 1)
    counts = xp.bincount(index, minlength=bins).astype(data.dtype)
    return Tensor._make(counts)


def histogram(input: Tensor, bins=100, *, range=None, weight=None, density: bool = False):  # noqa: A002
    """(hist, bin_edges): counts (or weighted sums, or a density) in `bins` equal bins over
    `range` (the data's range by default), or in the bins a 1-D tensor of edges gives."""
    from ..factory import tensor  # noqa: PLC0415

    if input._data.dtype.kind != "f":
        raise RuntimeError(
            f"torch.histogram: input tensor and bins tensors should have the same dtype, but got input {input.dtype.name}"
        )
    data = np.asarray(input.detach().cpu().numpy()).reshape(-1)
    edges = bins.detach().cpu().numpy() if isinstance(bins, Tensor) else int(bins)
    weights = None if weight is None else np.asarray(weight.detach().cpu().numpy()).reshape(-1)
    hist, bin_edges = np.histogram(data, bins=edges, range=range, weights=weights, density=density)
    dtype = input.dtype
    return _histogram_t(
        tensor(hist.astype(input._data.dtype), dtype=dtype, device=input.device),
        tensor(bin_edges.astype(input._data.dtype), dtype=dtype, device=input.device),
    )


TENSOR_METHODS = {
    "histogram": histogram,
    "cov": cov,
    "corrcoef": corrcoef,
    "quantile": quantile,
    "nanquantile": nanquantile,
    "nanmedian": nanmedian,
    "mode": mode,
    "histc": histc,
}

__all__ = ["cov", "corrcoef", "quantile", "nanquantile", "nanmedian", "mode", "histc", "histogram"]
