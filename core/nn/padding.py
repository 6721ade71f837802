"""Padding layers: nn.functional.pad with a fixed padding, value and mode, as torch names them."""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .module import Module


class _PadNd(Module):
    _dims: int = 2
    _mode: str = "constant"

    def __init__(self, padding, value: float = 0.0) -> None:
        super().__init__()
        n = 2 * self._dims
        if isinstance(padding, int) and not isinstance(padding, bool):
            padding = (padding,) * n
        padding = tuple(padding)
        if len(padding) != n or not all(isinstance(p, int) for p in padding):
            raise ValueError(f"{type(self).__name__} takes an int or {n} ints, got {padding!r}")
        self.padding = padding
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        if self._mode == "constant" and not isinstance(self, (ZeroPad1d, ZeroPad2d, ZeroPad3d)):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


class ConstantPad1d(_PadNd):
    _dims = 1

    def __init__(self, padding, value: float) -> None:
        super().__init__(padding, value)


class ConstantPad2d(_PadNd):
    def __init__(self, padding, value: float) -> None:
        super().__init__(padding, value)


class ZeroPad1d(_PadNd):
    _dims = 1

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)


class ZeroPad2d(_PadNd):
    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)


class ReflectionPad1d(_PadNd):
    _dims, _mode = 1, "reflect"

    def __init__(self, padding) -> None:
        super().__init__(padding)


class ReflectionPad2d(_PadNd):
    _mode = "reflect"

    def __init__(self, padding) -> None:
        super().__init__(padding)


class ReplicationPad1d(_PadNd):
    _dims, _mode = 1, "replicate"

    def __init__(self, padding) -> None:
        super().__init__(padding)


class ReplicationPad2d(_PadNd):
    _mode = "replicate"

    def __init__(self, padding) -> None:
        super().__init__(padding)


class CircularPad1d(_PadNd):
    _dims = 1
    _mode = "circular"

    def __init__(self, padding) -> None:
        super().__init__(padding)


class CircularPad2d(_PadNd):
    _mode = "circular"

    def __init__(self, padding) -> None:
        super().__init__(padding)


class ConstantPad3d(_PadNd):
    _dims = 3

    def __init__(self, padding, value: float) -> None:
        super().__init__(padding, value)


class ZeroPad3d(_PadNd):
    _dims = 3

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)


class ReflectionPad3d(_PadNd):
    _dims = 3
    _mode = "reflect"

    def __init__(self, padding) -> None:
        super().__init__(padding)


class ReplicationPad3d(_PadNd):
    _dims = 3
    _mode = "replicate"

    def __init__(self, padding) -> None:
        super().__init__(padding)


class CircularPad3d(_PadNd):
    _dims = 3
    _mode = "circular"

    def __init__(self, padding) -> None:
        super().__init__(padding)
