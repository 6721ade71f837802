"""torch's top-level spellings that are other ops under another name, so code written
against torch finds them: the in-place function forms (`torch.relu_(x)` is `x.relu_()`), the
`*_copy` forms of the view ops (a new tensor instead of a view), and small conveniences
(rsub, scalar_tensor, randint_like, asarray, empty_strided, range, trapz, unravel_index,
detach, fill, adjoint, igamma, norms by name)."""

from __future__ import annotations

import warnings

import numpy as np

from .. import factory
from ..backend import xp_of
from ..tensor import Tensor

# torch.<name>_(tensor, ...) -> tensor.<name>_(...)
_INPLACE = (
    "abs", "acos", "acosh", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh",
    "asin", "asinh", "atan", "atanh", "ceil", "clamp", "clamp_max", "clamp_min", "clip", "cos",
    "cosh", "deg2rad", "erf", "erfc", "exp", "exp2", "expm1", "fix", "floor", "frac", "gcd",
    "i0", "lcm", "ldexp", "log", "log10", "log1p", "log2", "logit", "nan_to_num", "neg",
    "negative", "rad2deg", "reciprocal", "relu", "round", "rsqrt", "sigmoid", "sin", "sinc",
    "sinh", "sqrt", "square", "tan", "tanh", "trunc", "xlogy", "zero", "fill", "addmv",
    "index_put", "detach",
)  # fmt: skip

# torch.<name>_copy(tensor, ...) -> tensor.<name>(...), copied
_COPIES = (
    "diagonal", "expand", "permute", "squeeze", "t", "transpose", "unsqueeze", "view",
    "unfold", "alias",
)  # fmt: skip
_SPLIT_COPIES = ("split", "split_with_sizes", "unbind")


def _inplace_form(name: str):
    def run(input: Tensor, *args, **kwargs):
        return getattr(input, name + "_")(*args, **kwargs)

    run.__name__ = name + "_"
    run.__doc__ = f"torch.{name}_: input.{name}_(...)."
    return run


def _copy_form(name: str):
    def run(input: Tensor, *args, **kwargs):
        if name == "alias":
            return input.clone()
        return getattr(input, name)(*args, **kwargs).clone()

    run.__name__ = name + "_copy"
    run.__doc__ = f"torch.{name}_copy: input.{name}(...) as a new tensor, not a view."
    return run


def _split_copy_form(name: str):
    def run(input: Tensor, *args, **kwargs):
        return tuple(part.clone() for part in getattr(input, name)(*args, **kwargs))

    run.__name__ = name + "_copy"
    return run


def rsub(input: Tensor, other, *, alpha=1) -> Tensor:
    """other - alpha * input."""
    return other - input * alpha if alpha != 1 else other - input


def scalar_tensor(s, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    from .. import _dtype  # noqa: PLC0415

    d = _dtype.get_default_dtype() if dtype is None else dtype
    return factory.tensor(s, dtype=d, device=device, requires_grad=requires_grad)


def randint_like(input: Tensor, low: int = 0, high: int | None = None, *, dtype=None,
                 device=None, requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Random integers in [low, high) shaped like input (torch.randint_like(x, high) too)."""
    if high is None:
        low, high = 0, low
    out = factory.randint(
        low, high, tuple(input.shape), dtype=dtype or input.dtype, device=device or input.device
    )
    return out.requires_grad_(True) if requires_grad else out


def asarray(obj, *, dtype=None, device=None, copy: bool | None = None,
            requires_grad: bool = False) -> Tensor:  # fmt: skip
    """A tensor from obj, sharing memory when obj is already a tensor or array of that
    dtype and device and copy is not True."""
    if isinstance(obj, Tensor) and not copy:
        out = obj if dtype is None else obj.to(dtype)
        out = out if device is None else out.to(device)
    elif copy:
        out = factory.tensor(obj, dtype=dtype, device=device)
    else:
        out = factory.as_tensor(obj, dtype=dtype, device=device)
    return out.requires_grad_(True) if requires_grad else out


def empty_strided(size, stride, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of `size` (shardgrad lays it out contiguously; `stride` is
    accepted for compatibility)."""
    return factory.empty(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def range(start, end, step=1, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:  # noqa: A001
    """Deprecated torch.range: like arange but including `end`."""
    warnings.warn(
        "torch.range is deprecated and will be removed in a future release because its "
        "behavior is inconsistent with Python's range builtin. Instead, use torch.arange, "
        "which produces values in [start, end).",
        UserWarning,
        stacklevel=2,
    )
    from .. import _dtype  # noqa: PLC0415

    count = int(np.floor((end - start) / step)) + 1
    values = start + step * np.arange(count)
    d = _dtype.get_default_dtype() if dtype is None else dtype
    return factory.tensor(values, dtype=d, device=device, requires_grad=requires_grad)


def trapz(y: Tensor, x: Tensor | None = None, *, dx=None, dim: int = -1) -> Tensor:
    """torch.trapz, the older name of trapezoid."""
    from .composite import trapezoid  # noqa: PLC0415

    return trapezoid(y, x, dx=dx, dim=dim)


def unravel_index(indices: Tensor, shape) -> tuple:
    """Flat indices into a tensor of `shape`, as one index tensor per dimension."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    data = indices._data if isinstance(indices, Tensor) else np.asarray(indices)
    if data.dtype.kind not in "iu":
        raise TypeError("expected 'indices' to be integer dtype, but got " + str(data.dtype))
    xp = xp_of(data)
    total = int(np.prod(shape))
    if data.size and (bool((data < -total).any()) or bool((data >= total).any())):
        raise RuntimeError("'indices' must be in range [-prod(shape), prod(shape) - 1]")
    data = xp.where(data < 0, data + total, data)
    return tuple(Tensor._make(part.astype(np.int64)) for part in xp.unravel_index(data, shape))


def detach(input: Tensor) -> Tensor:
    return input.detach()


def fill(input: Tensor, value) -> Tensor:
    return input.clone().fill_(value) if not isinstance(value, Tensor) else input * 0 + value


def adjoint(input: Tensor) -> Tensor:
    return input.mT


def frobenius_norm(input: Tensor, dim=(-2, -1), keepdim: bool = False) -> Tensor:
    from .. import linalg  # noqa: PLC0415

    return linalg.matrix_norm(input, "fro", dim=dim, keepdim=keepdim)


def nuclear_norm(input: Tensor, dim=(-2, -1), keepdim: bool = False) -> Tensor:
    from .. import linalg  # noqa: PLC0415

    return linalg.matrix_norm(input, "nuc", dim=dim, keepdim=keepdim)


def igamma(input: Tensor, other: Tensor) -> Tensor:
    from .special_functions import gammainc  # noqa: PLC0415

    return gammainc(input, other)


def igammac(input: Tensor, other: Tensor) -> Tensor:
    from .special_functions import gammaincc  # noqa: PLC0415

    return gammaincc(input, other)


_generated = {name + "_": _inplace_form(name) for name in _INPLACE}
_generated.update({name + "_copy": _copy_form(name) for name in _COPIES})
_generated.update({name + "_copy": _split_copy_form(name) for name in _SPLIT_COPIES})
globals().update(_generated)

TENSOR_METHODS: dict = {}

__all__ = [
    "rsub", "scalar_tensor", "randint_like", "asarray", "empty_strided", "range", "trapz",
    "unravel_index", "detach", "fill", "adjoint", "frobenius_norm", "nuclear_norm", "igamma",
    "igammac", *_generated,
]  # fmt: skip
