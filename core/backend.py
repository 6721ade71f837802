"""The one place that knows which array library backs a device.

"cpu" tensors hold numpy arrays and "cuda"/"cuda:N" tensors hold cupy arrays. Everything else
in shardgrad asks this module for the array module (`xp`) of an array and never branches on
the device itself. cupy is imported lazily, the first time a CUDA tensor is made, so
`import shardgrad` works on machines without CUDA (or without cupy).
"""

from __future__ import annotations

import numpy as np

_cupy = None
_cuda_ok = False  # a GPU was found (only a yes is cached: a no is asked again)


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
    """True when cupy imports and sees at least one GPU."""
    global _cuda_ok
    if not _cuda_ok:
        try:
            _cuda_ok = cupy().cuda.runtime.getDeviceCount() > 0
        except Exception:  # noqa: BLE001 - any failure (no cupy, no driver) means "no GPU"
            return False
    return True


def _require_cuda() -> None:
    if not cuda_is_available():
        raise RuntimeError(
            "CUDA is not available: shardgrad found no cupy or no NVIDIA GPU and driver on "
            "this machine"
        )


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
        if index is not None and index < 0:
            raise RuntimeError(f"Device index must not be negative, got {index}")
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

    def __reduce__(self):
        return (device, (str(self),))


CPU = device("cpu")
_CUDA_DEVICES: dict[int, device] = {}


def cuda_device(index: int) -> device:
    """The (shared) `device('cuda', index)` object: tensors ask for it on every op."""
    dev = _CUDA_DEVICES.get(index)
    if dev is None:
        dev = _CUDA_DEVICES[index] = device("cuda", index)
    return dev


def as_device(d) -> device:
    if d is None:
        return CPU
    if isinstance(d, device):
        return d
    if isinstance(d, int) and not isinstance(d, bool):
        return device("cuda", d)
    return device(d)


def resolve(dev: device) -> device:
    """`cuda` without an index means the current GPU, as in torch."""
    if dev.type == "cuda":
        _require_cuda()
        if dev.index is None:
            return cuda_device(cupy().cuda.runtime.getDevice())
    return dev


def xp_of(array):
    """numpy or cupy, whichever owns `array`."""
    if type(array) is np.ndarray:
        return np
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy
    return np


def xp_for(dev: device):
    """The array module of a device (importing cupy, and checking for a GPU, on first use)."""
    if dev.type == "cpu":
        return np
    _require_cuda()
    return cupy()


def is_cuda_array(array) -> bool:
    return _cupy is not None and type(array) is not np.ndarray and isinstance(array, _cupy.ndarray)


def device_of(array) -> device:
    if type(array) is np.ndarray or _cupy is None or not isinstance(array, _cupy.ndarray):
        return CPU
    return cuda_device(array.device.id)


def same_device(a, b) -> bool:
    """Whether two arrays live on one device (a cheap type test first: numpy vs cupy)."""
    if type(a) is not type(b):
        return False
    return type(a) is np.ndarray or device_of(a) == device_of(b)


def device_mismatch(*arrays) -> RuntimeError | None:
    """torch's error for arrays on different devices, or None where they agree. Python
    scalars and numpy scalars are device-less and never clash."""
    seen: device | None = None
    for a in arrays:
        if not is_array(a):
            continue
        d = device_of(a)
        if seen is None:
            seen = d
        elif d != seen:
            first, second = (seen, d) if seen.type == "cuda" else (d, seen)
            return RuntimeError(
                "Expected all tensors to be on the same device, but found at least two "
                f"devices, {first} and {second}!"
            )
    return None


def to_device(array, dev: device):
    """Copy `array` to `dev` (no copy where it already lives there)."""
    here = device_of(array)
    if here == dev:
        return array
    if dev.type == "cpu":
        return array.get()
    cp = xp_for(dev)
    idx = dev.index if dev.index is not None else cp.cuda.runtime.getDevice()
    if here.index == idx:
        return array
    with cp.cuda.Device(idx):
        return cp.asarray(array)


def on_device(array, like):
    """`array` (numpy or cupy) moved onto the device of `like`, for constants that ops
    build on the host."""
    if type(like) is np.ndarray or not is_array(like):
        return array if type(array) is np.ndarray else to_device(array, CPU)
    return to_device(array, device_of(like))


def synchronize(dev: device | None = None) -> None:
    """Wait for the GPU's queued work (timings, tests); nothing to do on the CPU."""
    if _cupy is None or (dev is not None and dev.type == "cpu"):
        return
    _cupy.cuda.Device(None if dev is None else dev.index).synchronize()


def is_array(obj) -> bool:
    return type(obj) is np.ndarray or (_cupy is not None and isinstance(obj, _cupy.ndarray))


class _NoDevice:
    __slots__ = ()

    def __enter__(self):
        return None

    def __exit__(self, *exc) -> None:
        return None


_NO_DEVICE = _NoDevice()


def using(dev: device):
    """A context in which new arrays land on `dev` (the current GPU where no index is
    given); nothing for the CPU."""
    if dev.type == "cpu" or dev.index is None:
        return _NO_DEVICE
    return cupy().cuda.Device(dev.index)


def linalg_errors_raised(xp):
    """A context in which a failed factorization (a singular or not positive-definite
    matrix) raises numpy's LinAlgError, as numpy always does. cupy returns garbage instead
    unless asked, since checking costs a device sync; torch's CUDA routines pay that sync
    too, so shardgrad asks."""
    if xp is np:
        return _NO_DEVICE
    try:
        import cupyx  # noqa: PLC0415 - lazy, as cupy is
    except ImportError:  # the tests' CPU stand-in for cupy raises as numpy does
        return _NO_DEVICE
    return cupyx.errstate(linalg="raise")
