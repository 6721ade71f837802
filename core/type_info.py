"""torch.finfo and torch.iinfo: the numeric limits of a dtype, with torch's attribute names
(eps, tiny / smallest_normal, resolution, bits, min, max) and repr."""

from __future__ import annotations

import numpy as np

from . import _dtype

__all__ = ["finfo", "iinfo"]


def _short(value: float) -> str:
    return f"{value:g}"


class finfo:  # noqa: N801 - torch's name
    """Limits of a floating-point dtype (the default dtype when none is given)."""

    def __init__(self, type=None) -> None:  # noqa: A002 - torch's argument name
        d = _dtype.get_default_dtype() if type is None else _dtype.as_dtype(type)
        if d.np.kind != "f":
            raise TypeError(
                f"torch.finfo() requires a floating point input type. Use torch.iinfo to handle '{d!r}'"
            )
        info = np.finfo(d.np)
        self.dtype = d.name
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)  # a Python float, as torch gives

    def __repr__(self) -> str:
        return (
            f"finfo(resolution={_short(self.resolution)}, min={_short(self.min)}, "
            f"max={_short(self.max)}, eps={_short(self.eps)}, "
            f"smallest_normal={_short(self.smallest_normal)}, tiny={_short(self.tiny)}, "
            f"dtype={self.dtype})"
        )


class iinfo:  # noqa: N801 - torch's name
    """Limits of an integer (or bool) dtype."""

    def __init__(self, type) -> None:  # noqa: A002 - torch's argument name
        d = _dtype.as_dtype(type)
        if d.np.kind not in "iub":
            raise TypeError(
                f"torch.iinfo() requires an integer input type. Use torch.finfo to handle '{d!r}'"
            )
        info = np.iinfo(d.np) if d.np.kind != "b" else None
        self.dtype = d.name
        self.bits = int(d.np.itemsize * 8)
        self.max = int(info.max) if info is not None else 1
        self.min = int(info.min) if info is not None else 0

    def __repr__(self) -> str:
        return f"iinfo(min={_short(float(self.min))}, max={_short(float(self.max))}, dtype={self.dtype})"
