"""Reductions and scans: sum, mean, prod, var/std, max/min, amax/amin, argmax/argmin,
median, logsumexp, norm, all/any, count_nonzero, cumsum, cumprod.

`dim` takes torch's forms (int, negative, tuple, None; an empty tuple means every dim) and
`keepdim` keeps reduced axes. Backward re-expands the gradient to the input's shape; the
value-selecting reductions send it to the selected elements as torch does (one index for
`max(dim)`, split evenly among ties for `amax` and the full `max()`).
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from ..autograd import grad_mode
from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor, _wrap_dim
from ._select import TakeAlong, return_type
from ._util import normalize_dims
from .elementwise import _TORCH_NAMES, _sign, where
from .elementwise import _dtype_name as _tname

_max_t = return_type("max")
_min_t = return_type("min")
_median_t = return_type("median")
_aminmax_t = return_type("aminmax", ("min", "max"))


def _dims(dim, ndim: int):
    """None for a full reduction, else a sorted tuple of non-negative axes."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return None
    return normalize_dims(dim, ndim)


def _expand_reduced(t: Tensor, in_shape: tuple, dims, keepdim: bool) -> Tensor:
    """Reshape a reduced result so it broadcasts against the input again."""
    if dims is None:
        return t.reshape((1,) * len(in_shape)) if in_shape and t.ndim != len(in_shape) else t
    if keepdim:
        return t
    shape = list(in_shape)
    for d in dims:
        shape[d] = 1
    return t.reshape(tuple(shape))


def _count(shape, dims) -> int:
    n = 1
    for d in range(len(shape)) if dims is None else dims:
        n *= shape[d]
    return n


def _floating(x: Tensor) -> Tensor:
    return x if x._data.dtype.kind == "f" else x.to(_dtype.get_default_dtype())


def _const(array, like: Tensor) -> Tensor:
    return Tensor._make(array.astype(like._data.dtype, copy=False))


class ExpandReduced(Op):
    """Broadcast a reduced gradient back over the reduced axes: the backward of sum/mean.

    One op instead of reshape + expand keeps the per-node cost of every reduction's backward
    low; its own backward is the matching sum, so double backward works."""

    def forward(self, g, in_shape=None, dims=None, keepdim=False):
        self.dims, self.keepdim = dims, keepdim
        if dims is None:
            kept = (1,) * len(in_shape)
        elif keepdim:
            kept = g.shape
        else:
            kept = list(in_shape)
            for d in dims:
                kept[d] = 1
        return broadcast_array(g.reshape(kept), in_shape)

    def backward(self, gg):
        return Sum.apply(gg, dims=self.dims, keepdim=self.keepdim)


def broadcast_array(a, shape):
    """`a` broadcast to `shape`: small results are materialised (numpy's broadcast_to costs
    microseconds of Python), large ones stay zero-copy views."""
    if a.shape == tuple(shape):
        return a
    xp = xp_of(a)
    if xp is np and _count(shape, None) <= 65536:
        out = np.empty(shape, dtype=a.dtype)
        out[...] = a
        return out
    return xp.broadcast_to(a, shape)


# ---------------------------------------------------------------- sum / mean / prod
class Sum(Op):
    def forward(self, a, dims=None, keepdim=False, dtype=None):
        self.in_shape, self.dims, self.keepdim, self.in_dtype = a.shape, dims, keepdim, a.dtype
        out = a.sum(axis=dims, keepdims=keepdim, dtype=dtype)
        if dtype is None and a.dtype.kind in "biu":
            out = out.astype(np.int64, copy=False)
        return out

    def backward(self, g):
        g = ExpandReduced.apply(g, in_shape=self.in_shape, dims=self.dims, keepdim=self.keepdim)
        if g._data.dtype != self.in_dtype:
            g = g.to(_dtype.from_numpy_dtype(self.in_dtype))
        return g


class Mean(Op):
    def forward(self, a, dims=None, keepdim=False):
        self.in_shape, self.dims, self.keepdim = a.shape, dims, keepdim
        self.count = _count(a.shape, dims)
        if a.size == 0:  # nan, quietly, as torch
            with np.errstate(invalid="ignore"):
                return xp_of(a).full(_out_shape(a, dims, keepdim), np.nan, dtype=a.dtype)
        return a.mean(axis=dims, keepdims=keepdim)

    def backward(self, g):
        return ExpandReduced.apply(
            g / self.count, in_shape=self.in_shape, dims=self.dims, keepdim=self.keepdim
        )


class Prod(Op):
    save_inputs = (0,)
    save_output = True

    def forward(self, a, dim=None, keepdim=False, dtype=None):
        self.dim, self.keepdim = dim, keepdim
        out = a.prod(axis=dim, keepdims=keepdim, dtype=dtype)
        if dtype is None and a.dtype.kind in "biu":
            out = out.astype(np.int64, copy=False)
        return out

    def backward(self, g):
        x, out = self.saved
        dims = None if self.dim is None else (self.dim,)
        g = _expand_reduced(g, x.shape, dims, self.keepdim)
        zeros = int((x._data == 0).sum())
        if not zeros:
            return g * _expand_reduced(out, x.shape, dims, self.keepdim) / x
        if zeros > 1 and self.dim is None and not grad_mode.state.enabled:
            # torch's shortcut: with two zeros, every product of all-but-one holds a zero
            # (even beside an inf or a nan); under create_graph it takes the general path
            return Tensor._make(xp_of(x._data).zeros(x.shape, dtype=g._data.dtype))
        # with zeros, g * out / x is 0/0: use the product of the others instead
        if self.dim is None:
            return g * _prod_others(x.reshape(-1), 0).reshape(x.shape)
        return g * _prod_others(x, self.dim)


def _prod_others(x: Tensor, dim: int) -> Tensor:
    """prod_{j != i} x_j along dim, without dividing: left times right exclusive products."""
    left = cumprod(Shift.apply(x, dim=dim, step=1, fill=1.0), dim)
    right = _Cumprod.apply(Shift.apply(x, dim=dim, step=-1, fill=1.0), dim=dim, reverse=True)
    return left * right


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A001
    np_dtype = _dtype.to_np(dtype) if dtype is not None else None
    return Sum.apply(input, dims=_dims(dim, input._data.ndim), keepdim=keepdim, dtype=np_dtype)


def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if input._data.dtype.kind == "f":
        input = where(xp_of(input._data).isnan(input._data), 0.0, input)
    return sum(input, dim, keepdim, dtype=dtype)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if dtype is not None:
        input = input.to(dtype)
    if input._data.dtype.kind != "f":
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {_tname(input)}"
        )
    return Mean.apply(input, dims=_dims(dim, input._data.ndim), keepdim=keepdim)


def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    np_dtype = _dtype.to_np(dtype) if dtype is not None else None
    if dim is not None:
        dim = _wrap_dim(dim, input._data.ndim)
        if input._data.ndim == 0:
            dim = None
    return Prod.apply(input, dim=dim, keepdim=keepdim, dtype=np_dtype)


# ---------------------------------------------------------------- var / std
def _var_args(dim, unbiased, correction):
    if isinstance(dim, bool):  # var(input, unbiased)
        dim, unbiased = None, dim
    if correction is None:
        correction = 0 if unbiased is False else 1
    elif unbiased is not None:
        raise TypeError("var(): cannot specify both unbiased and correction")
    return dim, correction


class Var(Op):
    save_inputs = (0,)

    def forward(self, a, dims=None, correction=1, keepdim=False):
        self.in_shape, self.dims, self.keepdim = a.shape, dims, keepdim
        self.dof = _count(a.shape, dims) - correction
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp_of(a).var(a, axis=dims, ddof=correction, keepdims=keepdim)

    def backward(self, g):
        (x,) = self.saved
        g = _expand_reduced(g, self.in_shape, self.dims, self.keepdim)
        scale = 2.0 / self.dof if self.dof else float("inf")
        return g * scale * (x - mean(x, self.dims, keepdim=True))


class Std(Op):
    save_inputs = (0,)
    save_output = True

    def forward(self, a, dims=None, correction=1, keepdim=False):
        self.in_shape, self.dims, self.keepdim = a.shape, dims, keepdim
        self.dof = _count(a.shape, dims) - correction
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp_of(a).std(a, axis=dims, ddof=correction, keepdims=keepdim)

    def backward(self, g):
        x, out = self.saved
        g = _expand_reduced(g, self.in_shape, self.dims, self.keepdim)
        out = _expand_reduced(out, self.in_shape, self.dims, self.keepdim)
        # torch: a zero std (a constant slice) gets a zero gradient, not 0/0
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = where(out._data == 0, 0.0, g / (out * self.dof))
        return scale * (x - mean(x, self.dims, keepdim=True))


def _check_var_input(input: Tensor) -> None:
    if input._data.dtype.kind != "f":
        raise RuntimeError("std and var only support floating point and complex dtypes")


def var(
    input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None
) -> Tensor:
    _check_var_input(input)
    dim, correction = _var_args(dim, unbiased, correction)
    dims = _dims(dim, input._data.ndim)
    return Var.apply(input, dims=dims, correction=correction, keepdim=keepdim)


def std(
    input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None
) -> Tensor:
    _check_var_input(input)
    dim, correction = _var_args(dim, unbiased, correction)
    dims = _dims(dim, input._data.ndim)
    return Std.apply(input, dims=dims, correction=correction, keepdim=keepdim)


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    d, _ = _var_args(dim, unbiased, correction)
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, d, keepdim)


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    d, _ = _var_args(dim, unbiased, correction)
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, d, keepdim)


# ---------------------------------------------------------------- max / min family
class Extreme(Op):
    """The full `max()`/`min()` (and full `median()`): ties share the gradient evenly; a NaN
    result sends it to the NaNs."""

    save_inputs = (0,)
    save_output = True

    def forward(self, a, fn="max"):
        if fn == "median":
            return _median_array(a.reshape(-1), 0)[0].reshape(())
        return getattr(a, fn)()

    def backward(self, g):
        x, out = self.saved
        xd, od = x._data, out._data
        if type(od) is np.ndarray:
            mask = np.isnan(xd) if od != od else xd == od
        else:  # no host round trip on a GPU: both masks, picked on the device
            mask = (xd == od) | (xp_of(xd).isnan(xd) & (od != od))
        return g * _const(mask / mask.sum(), g)


class Amax(Op):
    """amax/amin over dims: ties share the gradient evenly (torch's scale_grad_by_count)."""

    save_inputs = (0,)
    save_output = True

    def forward(self, a, dims=None, keepdim=False, fn="max"):
        self.dims, self.keepdim = dims, keepdim
        return getattr(a, fn)(axis=dims, keepdims=keepdim)

    def backward(self, g):
        x, out = self.saved
        out_d = _expand_reduced(out, x.shape, self.dims, self.keepdim)._data
        mask = x._data == out_d
        with np.errstate(divide="ignore", invalid="ignore"):
            w = mask / mask.sum(axis=self.dims, keepdims=True)
        return _expand_reduced(g, x.shape, self.dims, self.keepdim) * _const(w, g)


def _check_nonempty(name: str, input: Tensor, dims) -> None:
    shape = input._data.shape
    if dims is None:
        if input._data.size == 0:
            raise (RuntimeError if name in ("max", "min") else IndexError)(
                f"{name}(): Expected reduction dim to be specified for input.numel() == 0."
                + (
                    " Specify the reduction dim with the 'dim' argument."
                    if name in ("max", "min")
                    else ""
                )
            )
        return
    for d in dims:
        if input._data.ndim and shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")


def _arg_along(input: Tensor, dim: int, fn: str):
    """(index array with dim kept, dim) of argmax/argmin along a wrapped dim."""
    a = input._data
    if a.ndim == 0:
        return xp_of(a).zeros((), dtype=np.int64), 0
    return getattr(a, fn)(axis=dim, keepdims=True).astype(np.int64, copy=False), dim


def _select(name: str, rtype, input: Tensor, dim, keepdim: bool, fn: str):
    a = input._data
    d = _wrap_dim(dim, a.ndim)
    if a.ndim and a.shape[d] == 0:
        _check_nonempty(name, input, (d,))
    idx, d = _arg_along(input, d, "arg" + fn)
    values = getattr(a, fn)(axis=d, keepdims=keepdim) if a.ndim else a.copy()
    values = TakeAlong.apply(input, idx, dim=d, keepdim=keepdim, values=values)
    indices = idx if keepdim or idx.ndim == 0 else idx.squeeze(d)
    return rtype(values, Tensor._make(indices))


def max(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """max(input) -> Tensor; max(input, dim, keepdim) -> (values, indices); max(input, other)."""
    if isinstance(dim, Tensor):
        from .elementwise import maximum  # noqa: PLC0415

        return maximum(input, dim)
    if dim is None:
        _check_nonempty("max", input, None)
        return Extreme.apply(input, fn="max")
    return _select("max", _max_t, input, dim, keepdim, "max")


def min(input: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    if isinstance(dim, Tensor):
        from .elementwise import minimum  # noqa: PLC0415

        return minimum(input, dim)
    if dim is None:
        _check_nonempty("min", input, None)
        return Extreme.apply(input, fn="min")
    return _select("min", _min_t, input, dim, keepdim, "min")


def amax(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    dims = _dims(dim, input._data.ndim)
    _check_nonempty("amax", input, dims)
    return Amax.apply(input, dims=dims, keepdim=keepdim, fn="max")


def amin(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    dims = _dims(dim, input._data.ndim)
    _check_nonempty("amin", input, dims)
    return Amax.apply(input, dims=dims, keepdim=keepdim, fn="min")


def aminmax(input: Tensor, *, dim=None, keepdim: bool = False):
    return _aminmax_t(
        amin(input, () if dim is None else dim, keepdim),
        amax(input, () if dim is None else dim, keepdim),
    )


def _arg(name: str, input: Tensor, dim, keepdim: bool) -> Tensor:
    a = input._data
    if dim is None:
        _check_nonempty(name, input, None)
        flat = getattr(a.reshape(-1), name)()
        out = xp_of(a).asarray(flat, dtype=np.int64)
        return Tensor._make(out.reshape((1,) * a.ndim) if keepdim else out)
    d = _wrap_dim(dim, a.ndim)
    _check_nonempty(name, input, (d,))
    idx, d = _arg_along(input, d, name)
    return Tensor._make(idx if keepdim or idx.ndim == 0 else idx.squeeze(d))


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _arg("argmax", input, dim, keepdim)


def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return _arg("argmin", input, dim, keepdim)


def _median_array(a, dim: int):
    """(values, indices with dim kept) of the lower median along dim; a slice holding a NaN
    gives that NaN, as torch does."""
    xp = xp_of(a)
    n = a.shape[dim]
    k = (n - 1) // 2
    idx = xp.take(xp.argpartition(a, k, axis=dim), [k], axis=dim)
    if a.dtype.kind == "f":
        nan = xp.isnan(a)
        if nan.any():
            first = xp.expand_dims(nan.argmax(axis=dim), dim)
            idx = xp.where(nan.any(axis=dim, keepdims=True), first, idx)
    idx = idx.astype(np.int64, copy=False)
    return xp.take_along_axis(a, idx, axis=dim), idx


def median(input: Tensor, dim=None, keepdim: bool = False):
    if dim is None:
        if input._data.size == 0:
            return Tensor._make(xp_of(input._data).asarray(float("nan"), dtype=input._data.dtype))
        return Extreme.apply(input, fn="median")
    d = _wrap_dim(dim, input._data.ndim)
    _check_nonempty("median", input, (d,))
    if input._data.ndim == 0:
        zero = xp_of(input._data).zeros((), dtype=np.int64)
        return _median_t(TakeAlong.apply(input, zero), Tensor._make(zero))
    _, idx = _median_array(input._data, d)
    values = TakeAlong.apply(input, idx, dim=d, keepdim=keepdim)
    return _median_t(values, Tensor._make(idx if keepdim else idx.squeeze(d)))


# ---------------------------------------------------------------- logsumexp / norm
class LogSumExp(Op):
    save_inputs = (0,)
    save_output = True

    def forward(self, a, dims=None, keepdim=False):
        self.dims, self.keepdim = dims, keepdim
        xp = xp_of(a)
        m = a.max(axis=dims, keepdims=True) if a.size else xp.zeros((1,) * a.ndim, a.dtype)
        m = xp.where(xp.isfinite(m), m, 0)  # an all -inf (or inf) slice must not give nan
        with np.errstate(divide="ignore"):
            out = xp.log(xp.exp(a - m).sum(axis=dims, keepdims=True)) + m
        if not keepdim:
            out = out.reshape(_reduced_shape(a.shape, dims))
        return out

    def backward(self, g):
        x, out = self.saved
        g = _expand_reduced(g, x.shape, self.dims, self.keepdim)
        return g * (x - _expand_reduced(out, x.shape, self.dims, self.keepdim)).exp()


def _reduced_shape(shape, dims) -> tuple:
    if dims is None:
        return ()
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    input = _floating(input)
    return LogSumExp.apply(input, dims=_dims(dim, input._data.ndim), keepdim=keepdim)


class Norm(Op):
    """Vector p-norm over dims, with torch's backward (zero gradient at a zero norm)."""

    save_inputs = (0,)
    save_output = True

    def forward(self, a, p=2.0, dims=None, keepdim=False):
        self.p, self.dims, self.keepdim = p, dims, keepdim
        xp = xp_of(a)
        if p == 2:
            return xp.sqrt((a * a).sum(axis=dims, keepdims=keepdim))
        absa = xp.abs(a)
        if p == 1:
            return absa.sum(axis=dims, keepdims=keepdim)
        if p == float("inf"):
            return (
                absa.max(axis=dims, keepdims=keepdim)
                if a.size
                else xp.zeros(_out_shape(a, dims, keepdim), a.dtype)
            )
        if p == float("-inf"):
            return absa.min(axis=dims, keepdims=keepdim)
        if p == 0:
            return (a != 0).sum(axis=dims, keepdims=keepdim).astype(a.dtype)
        return (absa**p).sum(axis=dims, keepdims=keepdim) ** (1.0 / p)

    def backward(self, g):
        x, out = self.saved
        p = self.p
        g = _expand_reduced(g, x.shape, self.dims, self.keepdim)
        norm = _expand_reduced(out, x.shape, self.dims, self.keepdim)
        xd = x._data
        xp = xp_of(xd)
        if p == 0:
            return Tensor._make(xp.zeros_like(xd))
        if p == 1:
            return g * _const(_sign(xd), g)
        if p in (float("inf"), float("-inf")):
            mask = xp.abs(xd) == norm._data
            with np.errstate(divide="ignore", invalid="ignore"):
                w = _sign(xd) * mask / mask.sum(axis=self.dims, keepdims=True)
            return g * _const(w, g)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._smooth_grad(g, x, norm, p)

    @staticmethod
    def _smooth_grad(g, x, norm, p):
        """torch's norm_backward for finite p other than 0 and 1."""
        xd = x._data
        xp = xp_of(xd)
        zero = norm._data == 0
        if p == 2:
            return x * where(zero, 0.0, g / norm)
        if p < 1:
            scaled = _const(xp.sign(xd), g) * where(xd == 0, 0.0, x.abs() ** (p - 1))
            return scaled * g * norm ** (1 - p)
        if p < 2:
            scaled = _const(xp.sign(xd), g) * x.abs() ** (p - 1)
        else:
            scaled = x * x.abs() ** (p - 2)
        return scaled * where(zero, 0.0, g / norm ** (p - 1))


def _out_shape(a, dims, keepdim):
    if keepdim:
        return tuple(1 if dims is None or i in dims else s for i, s in enumerate(a.shape))
    return _reduced_shape(a.shape, dims)


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """torch.norm for vector norms (p = 'fro', a number, inf or -inf) over any dims."""
    if input._data.dtype.kind != "f":
        raise RuntimeError(
            "linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
            f"{_tname(input)}"
        )
    if dtype is not None:
        target = _dtype.as_dtype(dtype)
        if np.promote_types(input._data.dtype, target.np) != target.np:
            raise RuntimeError(
                f"linalg.vector_norm: the dtype of the input ({_tname(input)}) should be "
                f"convertible without narrowing to the specified dtype ({_TORCH_NAMES[target.name][0]})"
            )
        input = input.to(target)
    if p is None or p == "fro":
        p = 2.0
    elif p == "nuc":  # the nuclear norm: a matrix norm, through the SVD
        from .matrix_functions import matrix_norm  # noqa: PLC0415 - it imports this module

        return matrix_norm(input, "nuc", (-2, -1) if dim is None else dim, keepdim)
    elif isinstance(p, str):
        raise RuntimeError(f"norm: p='{p}' is not a norm (expected 'fro', 'nuc' or a number)")
    dims = _dims(dim, input._data.ndim)
    if dims is not None and p in (float("inf"), float("-inf")):
        _check_nonempty("linalg.vector_norm", input, dims)
    return Norm.apply(input, p=float(p), dims=dims, keepdim=keepdim)


# ---------------------------------------------------------------- boolean reductions
def _bool_reduce(fn: str):
    def op(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
        a = input._data
        out = getattr(a, fn)(axis=_dims(dim, a.ndim), keepdims=keepdim)
        out = xp_of(a).asarray(out)
        return Tensor._make(out.astype(np.uint8) if a.dtype == np.uint8 else out)

    op.__name__ = op.__qualname__ = fn
    return op


all = _bool_reduce("all")  # noqa: A001
any = _bool_reduce("any")  # noqa: A001


def count_nonzero(input: Tensor, dim=None) -> Tensor:
    a = input._data
    xp = xp_of(a)
    out = (a != 0).sum(axis=_dims(dim, a.ndim))
    return Tensor._make(xp.asarray(out, dtype=np.int64))


# ---------------------------------------------------------------- scans
def _flip(a, dim: int):
    return xp_of(a).flip(a, axis=dim)


class _Cumsum(Op):
    """Cumulative sum along dim, from the front or (reverse) from the back."""

    def forward(self, a, dim=0, reverse=False, dtype=None):
        self.dim, self.reverse, self.in_dtype = dim, reverse, a.dtype
        if dtype is None and a.dtype.kind in "biu":
            dtype = np.int64
        if a.ndim == 0:
            return a.astype(dtype) if dtype is not None else a.copy()
        if reverse:
            return _flip(_flip(a, dim).cumsum(axis=dim, dtype=dtype), dim)
        return a.cumsum(axis=dim, dtype=dtype)

    def backward(self, g):
        gx = _Cumsum.apply(g, dim=self.dim, reverse=not self.reverse)
        if gx._data.dtype != self.in_dtype:
            gx = gx.to(_dtype.from_numpy_dtype(self.in_dtype))
        return gx


class _Cumprod(Op):
    """Cumulative product along dim, from the front or (reverse) from the back."""

    save_inputs = (0,)
    save_output = True

    def forward(self, a, dim=0, reverse=False, dtype=None):
        self.dim, self.reverse = dim, reverse
        if dtype is None and a.dtype.kind in "biu":
            dtype = np.int64
        if a.ndim == 0:
            return a.astype(dtype) if dtype is not None else a.copy()
        if reverse:
            return _flip(_flip(a, dim).cumprod(axis=dim, dtype=dtype), dim)
        return a.cumprod(axis=dim, dtype=dtype)

    def backward(self, g):
        x, out = self.saved
        if x.ndim == 0:
            return g
        d, rev = self.dim, self.reverse
        if not (x._data == 0).any():
            return _Cumsum.apply(g * out, dim=d, reverse=not rev) / x
        if grad_mode.is_grad_enabled():
            return _cumprod_grad_graph(g, x, d, rev)
        return Tensor._make(_cumprod_grad_zeros(g._data, x._data, out._data, d, rev))


def _cumprod_grad_zeros(g, x, out, dim: int, reverse: bool):
    """First-order cumprod gradient where x has zeros, in O(n) (torch's algorithm).

    Before the first zero z of a slice the usual sum_{k>=i} g_k out_k / x_i holds (out is 0
    from z on). At z it is prod_{j<z} x_j * sum_{k>=z} g_k prod_{z<j<=k} x_j. After z it is 0.
    """
    xp = xp_of(x)
    if reverse:
        g, x, out = _flip(g, dim), _flip(x, dim), _flip(out, dim)
    g, x, out = (xp.moveaxis(t, dim, -1) for t in (g, x, out))
    n = x.shape[-1]
    pos = xp.arange(n)
    is_zero = x == 0
    has_zero = is_zero.any(axis=-1, keepdims=True)
    z = xp.where(has_zero, is_zero.argmax(axis=-1)[..., None], n)
    before = pos < z
    tail = _flip(_flip(g * out, -1).cumsum(axis=-1), -1)
    res = xp.where(before, tail / xp.where(before, x, 1), 0)
    zc = xp.minimum(z, n - 1)
    prefix = xp.where(before, x, 1).prod(axis=-1, keepdims=True)
    after = xp.where(pos <= z, 1, x).cumprod(axis=-1)
    s = _flip(_flip(g * after, -1).cumsum(axis=-1), -1)
    at_z = prefix * xp.take_along_axis(s, zc, axis=-1)
    res = xp.where((pos == z) & has_zero, at_z, res)
    res = xp.moveaxis(res, -1, dim)
    return _flip(res, dim) if reverse else res


def _cumprod_grad_graph(g: Tensor, x: Tensor, dim: int, reverse: bool) -> Tensor:
    """The same gradient as a graph (for create_graph with zeros present): O(n^2), as torch
    does there. grad_i = sum over k downstream of i of g_k * cumprod(x with x_i := 1)_k."""
    xd = x._data
    xp = xp_of(xd)
    n = xd.shape[dim]
    view = [1] * xd.ndim
    view[dim] = n
    pos = xp.arange(n).reshape(view)
    total = None
    for i in range(n):
        onehot = (pos == i).astype(xd.dtype)
        downstream = (pos <= i if reverse else pos >= i).astype(xd.dtype)
        xi = x * Tensor._make(1 - onehot) + Tensor._make(onehot)
        c = _Cumprod.apply(xi, dim=dim, reverse=reverse)
        term = (g * c * Tensor._make(downstream)).sum(dim, keepdim=True) * Tensor._make(onehot)
        total = term if total is None else total + term
    return total


class Shift(Op):
    """Shift by one along dim (step +1: towards the end), filling the vacated slot."""

    def forward(self, a, dim=0, step=1, fill=0.0):
        self.dim, self.step = dim, step
        out = xp_of(a).empty_like(a)
        n = a.shape[dim]
        src = [slice(None)] * a.ndim
        dst = [slice(None)] * a.ndim
        edge = [slice(None)] * a.ndim
        if step > 0:
            dst[dim], src[dim], edge[dim] = slice(1, None), slice(0, n - 1), slice(0, 1)
        else:
            dst[dim], src[dim], edge[dim] = slice(0, n - 1), slice(1, None), slice(n - 1, n)
        out[tuple(dst)] = a[tuple(src)]
        out[tuple(edge)] = fill
        return out

    def backward(self, g):
        return Shift.apply(g, dim=self.dim, step=-self.step, fill=0.0)


def _scan_args(input: Tensor, dim, dtype):
    d = _wrap_dim(dim, input._data.ndim)
    return d, (_dtype.to_np(dtype) if dtype is not None else None)


def cumsum(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    d, np_dtype = _scan_args(input, dim, dtype)
    return _Cumsum.apply(input, dim=d, dtype=np_dtype)


def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    d, np_dtype = _scan_args(input, dim, dtype)
    return _Cumprod.apply(input, dim=d, dtype=np_dtype)


TENSOR_METHODS = {
    "sum": sum, "nansum": nansum, "mean": mean, "prod": prod, "var": var, "std": std,
    "max": max, "min": min, "amax": amax, "amin": amin, "aminmax": aminmax, "argmax": argmax,
    "argmin": argmin, "median": median, "logsumexp": logsumexp, "norm": norm, "all": all,
    "any": any, "count_nonzero": count_nonzero, "cumsum": cumsum, "cumprod": cumprod,
}  # fmt: skip

__all__ = [
    "sum", "nansum", "mean", "prod", "var", "std", "var_mean", "std_mean", "max", "min",
    "amax", "amin", "aminmax", "argmax", "argmin", "median", "logsumexp", "norm", "all", "any",
    "count_nonzero", "cumsum", "cumprod",
]  # fmt: skip
