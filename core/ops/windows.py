"""Window functions for spectral analysis and filter design: hann, hamming, blackman,
bartlett and kaiser, torch's definitions (periodic by default: the window of length N is the
symmetric one of length N + 1 without its last sample)."""

from __future__ import annotations

import math

import numpy as np

from ..factory import tensor
from ..tensor import Tensor

__all__ = ["bartlett_window", "blackman_window", "hamming_window", "hann_window", "kaiser_window"]


def _window(values: np.ndarray, dtype, device, requires_grad: bool) -> Tensor:
    from .. import _dtype  # noqa: PLC0415

    d = _dtype.get_default_dtype() if dtype is None else _dtype.as_dtype(dtype)
    if d.np.kind != "f":
        raise RuntimeError(f"window functions expect a floating point dtype, got {d!r}")
    out = tensor(values.astype(d.np), dtype=d, device=device)
    return out.requires_grad_(True) if requires_grad else out


def _positions(n: int, periodic: bool) -> tuple[np.ndarray, int]:
    """Sample positions 0..n-1 and the symmetric window length they belong to."""
    length = n + 1 if periodic else n
    return np.arange(n, dtype=np.float64), length


def _cosine_sum(window_length: int, periodic: bool, coefficients, **kwargs) -> Tensor:
    if window_length < 0:
        raise RuntimeError(f"window_length must be non-negative, got {window_length}")
    if window_length <= 1:
        return _window(np.ones(window_length), **kwargs)
    k, length = _positions(window_length, periodic)
    phase = 2 * math.pi * k / (length - 1)
    values = sum(((-1) ** i) * c * np.cos(i * phase) for i, c in enumerate(coefficients))
    return _window(values, **kwargs)


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None,
                device=None, requires_grad: bool = False) -> Tensor:  # fmt: skip
    return _cosine_sum(window_length, periodic, (0.5, 0.5), dtype=dtype, device=device,
                       requires_grad=requires_grad)  # fmt: skip


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54,
                   beta: float = 0.46, *, dtype=None, layout=None, device=None,
                   requires_grad: bool = False) -> Tensor:  # fmt: skip
    return _cosine_sum(window_length, periodic, (alpha, beta), dtype=dtype, device=device,
                       requires_grad=requires_grad)  # fmt: skip


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None,
                    device=None, requires_grad: bool = False) -> Tensor:  # fmt: skip
    return _cosine_sum(window_length, periodic, (0.42, 0.5, 0.08), dtype=dtype, device=device,
                       requires_grad=requires_grad)  # fmt: skip


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None,
                    device=None, requires_grad: bool = False) -> Tensor:  # fmt: skip
    kw = dict(dtype=dtype, device=device, requires_grad=requires_grad)
    if window_length <= 1:
        return _window(np.ones(max(window_length, 0)), **kw)
    k, length = _positions(window_length, periodic)
    half = (length - 1) / 2
    return _window(1 - np.abs(k - half) / half, **kw)


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *,
                  dtype=None, layout=None, device=None, requires_grad: bool = False) -> Tensor:  # fmt: skip
    kw = dict(dtype=dtype, device=device, requires_grad=requires_grad)
    if window_length <= 1:
        return _window(np.ones(max(window_length, 0)), **kw)
    k, length = _positions(window_length, periodic)
    ratio = 2 * k / (length - 1) - 1
    return _window(np.i0(beta * np.sqrt(np.clip(1 - ratio**2, 0, None))) / np.i0(beta), **kw)


TENSOR_METHODS: dict = {}
