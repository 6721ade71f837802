"""The one place that knows which array library backs a device.

"cpu" tensors hold numpy arrays and "cuda"/"cuda:N" tensors hold cupy arrays. Everything else
in shardgrad asks this module for the array module (`xp`) of an array and never branches on
the device itself. cupy is imported lazily, the first time a CUDA tensor is made, so
`import shardgrad` works on machines without CUDA.
"""

from __future__ import annotations

import numpy as np

_cupy = None


def cupy():
    """Import cupy on first use; raise a clear error where it is missing."""
    global _cupy
    if _cupy is None:
        try:
            import cupy as cp  # noqa: PLC0415 - lazy by design
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise RuntimeError(
                "CUDA tensors need cupy: install shardgrad[cuda] (cupy-cuda12x or cupy-cuda13x)"
            ) from exc
        _cupy = cp
    return _cupy


def cuda_is_available() -> bool:
    try:
        return cupy().cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any failure means "no usable GPU"
        return False


class device:  # noqa: N801 - torch spells it lower-case
    """A torch-style device: `device("cuda:1")`, `device("cpu")`, `device("cuda", 0)`."""

    __slots__ = ("type", "index")

    def __init__(self, spec: str | device, index: int | None = None) -> None:
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device() expects a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, idx = spec.partition(":")
        if kind not in ("cpu", "cuda"):
            raise RuntimeError(
                f"Expected one of cpu, cuda device type at start of device string: {spec}"
            )
        if idx:
            if index is not None or not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{spec}'")
            index = int(idx)
        if kind == "cpu":
            index = None
        self.type, self.index = kind, index

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"


CPU = device("cpu")


def as_device(d) -> device:
    if d is None:
        return CPU
    if isinstance(d, device):
        return d
    if isinstance(d, int):
        return device("cuda", d)
    return device(d)


def xp_of(array):
    """numpy or cupy, whichever owns `array`."""
    if type(array) is np.ndarray:
        return np
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy
    return np


def xp_for(dev: device):
    return np if dev.type == "cpu" else cupy()


def device_of(array) -> device:
    if type(array) is np.ndarray or _cupy is None or not isinstance(array, _cupy.ndarray):
        return CPU
    return device("cuda", array.device.id)


def to_device(array, dev: device):
    """Copy `array` to `dev` (no copy where it already lives there)."""
    here = device_of(array)
    if here == dev:
        return array
    if dev.type == "cpu":
        return array.get()
    cp = cupy()
    idx = dev.index if dev.index is not None else cp.cuda.runtime.getDevice()
    with cp.cuda.Device(idx):
        return cp.asarray(array)


def is_array(obj) -> bool:
    return type(obj) is np.ndarray or (_cupy is not None and isinstance(obj, _cupy.ndarray))
