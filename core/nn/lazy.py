"""Lazy modules: LazyLinear, LazyConv1d/2d/3d, LazyConvTranspose1d/2d, LazyBatchNorm1d/2d/3d
and LazyInstanceNorm1d/2d/3d, whose input size is read from the first input.

Until then the weights are UninitializedParameters (and the running statistics
UninitializedBuffers). The first call builds the concrete module with the size it found,
moves each new tensor into the placeholder object that stood for it (so an optimizer made
beforehand holds the real parameters) and becomes that module's class, as torch's lazy
modules do.
"""

from __future__ import annotations

import inspect

from ..tensor import Tensor
from . import functional as F
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import Linear
from .module import Module
from .normalization import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
)
from .parameter import Parameter

__all__ = [
    "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyConv1d", "LazyConv2d",
    "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d", "LazyInstanceNorm1d",
    "LazyInstanceNorm2d", "LazyInstanceNorm3d", "LazyLinear", "UninitializedBuffer",
    "UninitializedParameter",
]  # fmt: skip


class UninitializedParameter(Parameter):
    """A parameter whose shape is not known yet: it has no elements until `materialize`."""

    def materialize(self, data: Tensor) -> None:
        """Take `data`'s values (in this placeholder's dtype) and become a Parameter."""
        self._data = data._data.astype(self._data.dtype, copy=False)
        self._bump_version()
        self.__class__ = Parameter

    def __repr__(self) -> str:
        return "<UninitializedParameter>"


class UninitializedBuffer(Tensor):
    """A buffer whose shape is not known yet."""

    __slots__ = ()  # Tensor's layout, so that materialize can make it a Tensor

    def __init__(self, dtype=None) -> None:
        from .. import factory  # noqa: PLC0415 - factory imports the package

        self._init(factory.empty(0, dtype=dtype)._data, None, 0)

    def materialize(self, data: Tensor) -> None:
        self._data = data._data.astype(self._data.dtype, copy=False)
        self._bump_version()
        self.__class__ = Tensor

    def __repr__(self) -> str:
        return "<UninitializedBuffer>"


class LazyModuleMixin:
    """What a lazy module adds: placeholders now, the concrete module at the first call."""

    cls_to_become: type | None = None
    _not_in_specs = True  # a spec states its sizes; a lazy module's come from its input
    _feature_dim: int = 1  # where the size to infer is, in a batched input
    _batched_ndim: int = 2

    def _begin_lazy(self, make_args, parameters: tuple, buffers: tuple = (), dtype=None) -> None:
        Module.__init__(self)
        self._lazy_make_args = make_args
        for name in parameters:
            self.register_parameter(name, _placeholder(dtype))
        for name in buffers:
            self.register_buffer(name, UninitializedBuffer(dtype))
        self._lazy_hook = self.register_forward_pre_hook(_infer_parameters)

    def has_uninitialized_params(self) -> bool:
        return any(
            isinstance(t, (UninitializedParameter, UninitializedBuffer))
            for t in (*self._parameters.values(), *self._buffers.values())
        )

    def initialize_parameters(self, input: Tensor) -> None:
        """Build the concrete module for `input`'s size, keeping the placeholder objects."""
        feature_dim = self._feature_dim if input.ndim >= self._batched_ndim else 0
        size = input.shape[feature_dim]
        placeholders = {**self._parameters, **self._buffers}
        training = self.training
        make_args, concrete = self._lazy_make_args, self.cls_to_become
        self.__class__ = concrete
        args, kwargs = make_args(size)
        concrete.__init__(self, *args, **kwargs)
        self.train(training)
        for name, placeholder in placeholders.items():
            if isinstance(placeholder, (UninitializedParameter, UninitializedBuffer)):
                table = self._parameters if name in self._parameters else self._buffers
                placeholder.materialize(table[name])
                table[name] = placeholder


def _placeholder(dtype) -> UninitializedParameter:
    from .. import factory  # noqa: PLC0415

    p = UninitializedParameter(factory.empty(0, dtype=dtype))
    return p


def _infer_parameters(module, args) -> None:
    module.initialize_parameters(args[0])


# ================================================================ the lazy layers
class LazyLinear(LazyModuleMixin, Linear):
    cls_to_become = Linear
    _feature_dim = -1
    _batched_ndim = 1

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        self._begin_lazy(
            lambda n: ((n, out_features, bias), {"device": device, "dtype": dtype}),
            ("weight", "bias") if bias else ("weight",),
            dtype=dtype,
        )
        if not bias:
            self.register_parameter("bias", None)
        self.in_features, self.out_features = 0, out_features

    def initialize_parameters(self, input: Tensor) -> None:
        self._feature_dim = input.ndim - 1
        super().initialize_parameters(input)


def _lazy_conv(concrete: type, n: int):
    class LazyConv(LazyModuleMixin, concrete):
        cls_to_become = concrete
        _batched_ndim = n + 2

        def __init__(self, out_channels: int, kernel_size, *args, bias: bool = True,
                     device=None, dtype=None, **kwargs) -> None:  # fmt: skip
            self._begin_lazy(
                lambda c: (
                    (c, out_channels, kernel_size, *args),
                    {"bias": bias, "device": device, "dtype": dtype, **kwargs},
                ),
                ("weight", "bias") if bias else ("weight",),
                dtype=dtype,
            )
            if not bias:
                self.register_parameter("bias", None)
            # the attributes the concrete layer's repr reads, as its constructor sets them
            bound = inspect.signature(concrete.__init__).bind(
                self, 0, out_channels, kernel_size, *args, bias=bias, **kwargs
            )
            bound.apply_defaults()
            a = bound.arguments
            self.in_channels, self.out_channels = 0, out_channels
            self.kernel_size = F._ntuple(kernel_size, n, "kernel_size")
            self.stride = F._ntuple(a["stride"], n, "stride")
            self.dilation = F._ntuple(a["dilation"], n, "dilation")
            padding = a["padding"]
            self.padding = padding if isinstance(padding, str) else F._ntuple(padding, n, "padding")
            self.output_padding = F._ntuple(a.get("output_padding", 0), n, "output_padding")
            self.groups, self.padding_mode = a["groups"], a["padding_mode"]

    LazyConv.__name__ = LazyConv.__qualname__ = "Lazy" + concrete.__name__
    return LazyConv


LazyConv1d = _lazy_conv(Conv1d, 1)
LazyConv2d = _lazy_conv(Conv2d, 2)
LazyConv3d = _lazy_conv(Conv3d, 3)
LazyConvTranspose1d = _lazy_conv(ConvTranspose1d, 1)
LazyConvTranspose2d = _lazy_conv(ConvTranspose2d, 2)
LazyConvTranspose3d = _lazy_conv(ConvTranspose3d, 3)


def _lazy_norm(concrete: type, spatial: int, batch_norm: bool):
    """The lazy form of a norm layer; affine and track_running_stats default to True for
    both kinds, as in torch (the eager InstanceNorm's default to False)."""

    class LazyNorm(LazyModuleMixin, concrete):
        cls_to_become = concrete
        # batch norm's input is always batched (C at dim 1); instance norm's may not be
        _batched_ndim = 2 if batch_norm else spatial + 2

        def __init__(self, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                     track_running_stats: bool = True, device=None, dtype=None) -> None:  # fmt: skip
            parameters = ("weight", "bias") if affine else ()
            buffers = ("running_mean", "running_var") if track_running_stats else ()
            self._begin_lazy(
                lambda c: (
                    (c, eps, momentum, affine, track_running_stats),
                    {"device": device, "dtype": dtype},
                ),
                parameters,
                buffers,
                dtype=dtype,
            )
            if not affine:
                self.register_parameter("weight", None)
                self.register_parameter("bias", None)
            self.num_features, self.eps, self.momentum = 0, eps, momentum
            self.affine, self.track_running_stats = affine, track_running_stats

    LazyNorm.__name__ = LazyNorm.__qualname__ = "Lazy" + concrete.__name__
    return LazyNorm


LazyBatchNorm1d = _lazy_norm(BatchNorm1d, 1, True)
LazyBatchNorm2d = _lazy_norm(BatchNorm2d, 2, True)
LazyBatchNorm3d = _lazy_norm(BatchNorm3d, 3, True)
LazyInstanceNorm1d = _lazy_norm(InstanceNorm1d, 1, False)
LazyInstanceNorm2d = _lazy_norm(InstanceNorm2d, 2, False)
LazyInstanceNorm3d = _lazy_norm(InstanceNorm3d, 3, False)
