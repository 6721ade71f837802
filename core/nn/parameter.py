"""`Parameter`: a leaf Tensor that a Module registers as one of its trainable weights;
`Buffer`: one it registers as state that is not trained (running statistics and the like)."""

from __future__ import annotations

import copy

from .. import _dtype, backend
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that requires grad by default and that Modules pick up as a parameter.

    Wrapping a Tensor shares its memory and version counter, as in torch, so a parameter can
    be a view into a larger buffer (the flat parameter layout relies on this).
    """

    def __init__(self, data=None, requires_grad: bool = True) -> None:
        if data is None:
            arr = backend.xp_for(backend.CPU).empty((0,), dtype=_dtype.get_default_dtype().np)
            self._init(arr, None, 0)
        elif isinstance(data, Tensor):
            self._init(data._data, None, 0)
            self._vbox = data._vbox
        else:
            from ..factory import _to_array  # noqa: PLC0415

            self._init(_to_array(data), None, 0)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (
            _rebuild_parameter,
            (self.detach().cpu()._data, self._requires_grad, str(self.device)),
        )

    def __deepcopy__(self, memo) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        result = Parameter(Tensor._make(self._data.copy()), self._requires_grad)
        if self.grad is not None:
            result.grad = Tensor._make(self.grad._data.copy())
        memo[id(self)] = result
        for k, v in getattr(self, "__dict__", {}).items():
            setattr(result, k, copy.deepcopy(v, memo))
        return result


def _rebuild_parameter(arr, requires_grad: bool, device: str) -> Parameter:
    p = Parameter(Tensor._make(arr), requires_grad)
    if device != "cpu":
        p._data = backend.to_device(p._data, backend.device(device))
    return p


def is_parameter(obj) -> bool:
    return isinstance(obj, Parameter)


class Buffer(Tensor):
    """A Tensor that a Module registers as a buffer when assigned as an attribute:
    `self.running = nn.Buffer(zeros(3), persistent=False)` is `register_buffer("running",
    ..., persistent=False)`. It shares the data's memory and version counter."""

    def __init__(self, data=None, *, persistent: bool = True) -> None:
        if data is None:
            arr = backend.xp_for(backend.CPU).empty((0,), dtype=_dtype.get_default_dtype().np)
            self._init(arr, None, 0)
        elif isinstance(data, Tensor):
            self._init(data._data, None, 0)
            self._vbox = data._vbox
            if data.requires_grad:
                self.requires_grad_(True)
        else:
            raise TypeError(f"Buffer(): data must be a Tensor, not {type(data).__name__}")
        self.persistent = persistent
