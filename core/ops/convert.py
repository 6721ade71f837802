"""Moves between dtypes and devices (`to`, `float`, `cuda`, ...), differentiable like torch's:
the gradient goes back to the source dtype and device."""

from __future__ import annotations

from .. import _dtype, backend
from ..autograd.node import Op
from ..tensor import Tensor


class ToCopy(Op):
    def forward(self, a, np_dtype=None, dev=None):
        self.src_dtype = a.dtype
        self.src_device = backend.device_of(a)
        if np_dtype is not None and a.dtype != np_dtype:
            a = a.astype(np_dtype)
        if dev is not None and dev != self.src_device:
            a = backend.to_device(a, dev)
        return a

    def backward(self, g):
        return to(g, device=self.src_device, dtype=_dtype.from_numpy_dtype(self.src_dtype))


def _parse_to_args(args, kwargs):
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    copy = kwargs.pop("copy", False)
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, _dtype.dtype):
            dtype = a
        elif isinstance(a, (str, backend.device, int)) and not isinstance(a, bool):
            device = a
        elif a is None:
            continue
        else:
            try:
                dtype = _dtype.as_dtype(a)
            except TypeError:
                raise TypeError(
                    f"to() received an invalid combination of arguments: {a!r}"
                ) from None
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    return dtype, device, copy


def to(input: Tensor, *args, **kwargs) -> Tensor:
    dtype, device, copy = _parse_to_args(args, dict(kwargs))
    np_dtype = _dtype.as_dtype(dtype).np if dtype is not None else None
    dev = backend.as_device(device) if device is not None else None
    if dev is not None and dev.type == "cuda":
        dev = backend.resolve(dev)  # checks for a GPU; "cuda" means the current one
    same_dtype = np_dtype is None or np_dtype == input._data.dtype
    same_dev = dev is None or dev == input.device
    if same_dtype and same_dev:
        return clone(input) if copy else input
    if np_dtype is not None and np_dtype.kind != "f" and input._requires_grad:
        with_grad = False
    else:
        with_grad = True
    if not with_grad:
        return Tensor._make(ToCopy().forward(input._data, np_dtype, dev))
    return ToCopy.apply(input, np_dtype=np_dtype, dev=dev)


def _cast(dt):
    def method(self, memory_format=None):
        return to(self, dt)

    return method


def cpu(input: Tensor) -> Tensor:
    return to(input, "cpu")


def cuda(input: Tensor, device=None, non_blocking: bool = False) -> Tensor:
    if device is None:
        device = "cuda"
    elif isinstance(device, int):
        device = f"cuda:{device}"
    return to(input, device)


def type_as(input: Tensor, other: Tensor) -> Tensor:
    return to(input, other.dtype)


_TYPE_NAMES = {
    "float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "bool": "Bool",
    "float16": "Half", "uint8": "Byte", "int8": "Char", "int16": "Short",
}  # fmt: skip
_BY_TYPE_NAME = {v: k for k, v in _TYPE_NAMES.items()}


def _type(self, dtype=None, non_blocking: bool = False):
    """x.type() names the legacy tensor type; x.type(t) casts to a dtype or a type name such
    as 'torch.DoubleTensor'."""
    if dtype is None:
        prefix = "torch." if self.device.type == "cpu" else "torch.cuda."
        return f"{prefix}{_TYPE_NAMES[self.dtype.name]}Tensor"
    if isinstance(dtype, str) and dtype.endswith("Tensor"):
        *scope, name = dtype.split(".")
        base = name[: -len("Tensor")]
        if base not in _BY_TYPE_NAME:
            raise ValueError(f"invalid type: '{dtype}'")
        device = "cuda" if "cuda" in scope else "cpu"
        return to(self, device=device, dtype=_BY_TYPE_NAME[base])
    return to(self, dtype)


class Clone(Op):
    def forward(self, a):
        return a.copy()

    def backward(self, g):
        return g


def clone(input: Tensor, *, memory_format=None) -> Tensor:
    return Clone.apply(input)


TENSOR_METHODS = {
    "to": to,
    "cpu": cpu,
    "cuda": cuda,
    "float": _cast(_dtype.float32),
    "double": _cast(_dtype.float64),
    "half": _cast(_dtype.float16),
    "long": _cast(_dtype.int64),
    "int": _cast(_dtype.int32),
    "short": _cast(_dtype.int16),
    "char": _cast(_dtype.int8),
    "byte": _cast(_dtype.uint8),
    "bool": _cast(_dtype.bool_),
    "type_as": type_as,
    "type": _type,
    "clone": clone,
}

__all__ = ["clone"]
