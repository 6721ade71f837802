"""torch-style dtype objects over numpy dtypes.

shardgrad keeps arrays as plain numpy/cupy arrays; these objects only give users the
names they know (`sg.float32`, `x.dtype == sg.float64`) and a single place that maps
between the two spellings.
"""

from __future__ import annotations

import builtins

import numpy as np

# The module below rebinds `float` and `int` to dtypes, as torch does.
_py_float, _py_int, _py_bool = builtins.float, builtins.int, builtins.bool


class dtype:  # noqa: N801 - torch spells it lower-case
    __slots__ = ("name", "np", "is_floating_point", "itemsize")

    def __init__(self, name: str, np_dtype: type) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = self.np.kind == "f"
        self.itemsize = self.np.itemsize

    def __repr__(self) -> str:
        return f"shardgrad.{self.name}"

    def __reduce__(self):
        return (as_dtype, (self.name,))


float16 = half = dtype("float16", np.float16)
float32 = float = dtype("float32", np.float32)
float64 = double = dtype("float64", np.float64)
int8 = dtype("int8", np.int8)
uint8 = dtype("uint8", np.uint8)
int16 = short = dtype("int16", np.int16)
int32 = int = dtype("int32", np.int32)
int64 = long = dtype("int64", np.int64)
bool_ = dtype("bool", np.bool_)

_ALL = (float16, float32, float64, int8, uint8, int16, int32, int64, bool_)
_BY_NP = {d.np: d for d in _ALL}
_BY_NAME = {d.name: d for d in _ALL}
_BY_NAME.update({"float": float32, "double": float64, "long": int64, "int": int32, "half": float16})

_default_float = float32


def get_default_dtype() -> dtype:
    return _default_float


def set_default_dtype(d: dtype) -> None:
    global _default_float
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError("only floating-point types are supported as the default type")
    _default_float = d


def from_numpy_dtype(np_dtype) -> dtype:
    """The shardgrad dtype of a numpy (or cupy) array's dtype."""
    try:
        return _BY_NP[np_dtype]
    except KeyError:
        try:
            return _BY_NP[np.dtype(np_dtype)]
        except (KeyError, TypeError):
            raise TypeError(f"unsupported array dtype {np_dtype}") from None


def as_dtype(d) -> dtype:
    """Accept a shardgrad dtype, a numpy dtype, a Python type or a name."""
    if isinstance(d, dtype):
        return d
    if d is None:
        return _default_float
    if isinstance(d, str):
        try:
            return _BY_NAME[d.removeprefix("torch.").removeprefix("shardgrad.")]
        except KeyError:
            raise TypeError(f"unknown dtype {d!r}") from None
    if d is _py_float:
        return _default_float
    if d is _py_int:
        return int64
    if d is _py_bool:
        return bool_
    return from_numpy_dtype(d)


def to_np(d) -> np.dtype:
    return as_dtype(d).np
