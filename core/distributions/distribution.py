"""The Distribution base class, parameter broadcasting and the constraints that validate
parameters and values, with torch's names, shapes and error messages.

A distribution has a batch shape (independent distributions side by side) and an event shape
(the shape of one draw); `sample(shape)` returns shape + batch_shape + event_shape. `rsample`
draws through a differentiable transformation of parameter-free noise, so gradients reach
the parameters; draws come from shardgrad's seeded generators, not torch's stream.
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from .. import random as _random
from ..autograd import grad_mode
from ..backend import xp_of
from ..factory import tensor
from ..tensor import Size, Tensor

__all__ = ["Distribution"]


# ================================================================ constraints
class Constraint:
    """A set of valid values: `check(value)` is a boolean array, `repr` torch's."""

    is_discrete = False
    event_dim = 0

    def check(self, value):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Real(Constraint):
    def check(self, value):
        return value == value  # not nan

    def __repr__(self) -> str:
        return "Real()"


class _GreaterThan(Constraint):
    def __init__(self, lower_bound) -> None:
        self.lower_bound = lower_bound

    def check(self, value):
        return value > self.lower_bound

    def __repr__(self) -> str:
        return f"GreaterThan(lower_bound={_bound(self.lower_bound)})"


class _LessThan(Constraint):
    def __init__(self, upper_bound) -> None:
        self.upper_bound = upper_bound

    def check(self, value):
        return value < self.upper_bound

    def __repr__(self) -> str:
        return f"LessThan(upper_bound={_bound(self.upper_bound)})"


class _GreaterThanEq(_GreaterThan):
    def check(self, value):
        return value >= self.lower_bound

    def __repr__(self) -> str:
        return f"GreaterThanEq(lower_bound={_bound(self.lower_bound)})"


class _Interval(Constraint):
    def __init__(self, lower_bound, upper_bound) -> None:
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        return (value >= self.lower_bound) & (value <= self.upper_bound)

    def __repr__(self) -> str:
        return (
            f"Interval(lower_bound={_bound(self.lower_bound)}, "
            f"upper_bound={_bound(self.upper_bound)})"
        )


class _HalfOpenInterval(_Interval):
    def check(self, value):
        return (value >= self.lower_bound) & (value < self.upper_bound)

    def __repr__(self) -> str:
        return super().__repr__().replace("Interval", "HalfOpenInterval", 1)


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value):
        return (value == 0) | (value == 1)

    def __repr__(self) -> str:
        return "Boolean()"


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound: int, upper_bound) -> None:
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        return (value % 1 == 0) & (value >= self.lower_bound) & (value <= self.upper_bound)

    def __repr__(self) -> str:
        return (
            f"IntegerInterval(lower_bound={_bound(self.lower_bound)}, "
            f"upper_bound={_bound(self.upper_bound)})"
        )


class _NonNegativeInteger(Constraint):
    is_discrete = True

    def check(self, value):
        return (value % 1 == 0) & (value >= 0)

    def __repr__(self) -> str:
        return "IntegerGreaterThan(lower_bound=0)"


class _Simplex(Constraint):
    event_dim = 1

    def check(self, value):
        xp = xp_of(value)
        return (value >= 0).all(axis=-1) & (xp.abs(value.sum(axis=-1) - 1) < 1e-6)

    def __repr__(self) -> str:
        return "Simplex()"


class _RealVector(_Real):
    event_dim = 1

    def check(self, value):
        return (value == value).all(axis=-1)

    def __repr__(self) -> str:
        return "IndependentConstraint(Real(), 1)"


def _bound(b):
    if isinstance(b, Tensor):
        return float(b) if b.numel() == 1 else b
    return b


class constraints:  # noqa: N801 - torch's module name
    """The constraints torch.distributions.constraints names, as far as shardgrad uses them."""

    real = _Real()
    real_vector = _RealVector()
    positive = _GreaterThan(0.0)
    nonnegative = _GreaterThanEq(0.0)
    unit_interval = _Interval(0.0, 1.0)
    boolean = _Boolean()
    nonnegative_integer = _NonNegativeInteger()
    simplex = _Simplex()
    greater_than = _GreaterThan
    less_than = _LessThan
    interval = _Interval
    half_open_interval = _HalfOpenInterval
    integer_interval = _IntegerInterval


# ================================================================ helpers
def broadcast_all(*values) -> tuple[Tensor, ...]:
    """Tensors and numbers broadcast to one shape (numbers become the default float dtype,
    or the tensors' dtype and device)."""
    like = next((v for v in values if isinstance(v, Tensor)), None)
    dtype = like.dtype if like is not None and like.is_floating_point() else None
    dtype = dtype or _dtype.get_default_dtype()
    device = like.device if like is not None else None
    ts = [
        v if isinstance(v, Tensor) else tensor(float(v), dtype=dtype, device=device) for v in values
    ]
    shape = np.broadcast_shapes(*(tuple(t.shape) for t in ts))
    return tuple(t.expand(*shape) if tuple(t.shape) != shape else t for t in ts)


def _shape(sample_shape) -> tuple:
    if isinstance(sample_shape, int):
        return (sample_shape,)
    return tuple(sample_shape)


# ================================================================ the base class
class Distribution:
    """torch.distributions.Distribution: shapes, validation and the sampling interface."""

    has_rsample = False
    has_enumerate_support = False
    arg_constraints: dict = {}
    support: Constraint | None = None
    _validate_default = True

    def __init__(self, batch_shape=(), event_shape=(), validate_args: bool | None = None):
        self._batch_shape = Size(tuple(batch_shape))
        self._event_shape = Size(tuple(event_shape))
        self._validate_args = self._validate_default if validate_args is None else validate_args
        if self._validate_args:
            for name, constraint in self.arg_constraints.items():
                if name not in self.__dict__ and isinstance(
                    getattr(type(self), name, None), property
                ):
                    continue  # a parameterization the caller did not give
                value = getattr(self, name)
                valid = constraint.check(value._data)
                if not bool(np.all(_host(valid))):
                    raise ValueError(
                        f"Expected parameter {name} ({type(value).__name__} of shape "
                        f"{tuple(value.shape)}) of distribution {self!r} to satisfy the "
                        f"constraint {constraint!r}, but found invalid values:\n"
                        f"{_values(value)}"
                    )

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        Distribution._validate_default = bool(value)

    @property
    def batch_shape(self) -> Size:
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        return self._event_shape

    def _extended_shape(self, sample_shape=()) -> tuple:
        return _shape(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape)

    def sample(self, sample_shape=()) -> Tensor:
        with grad_mode.no_grad():
            return self.rsample(sample_shape).detach()

    def rsample(self, sample_shape=()) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} does not provide reparameterized samples (rsample); "
            "use sample()"
        )

    def sample_n(self, n: int) -> Tensor:
        return self.sample((n,))

    def log_prob(self, value: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def prob(self, value: Tensor) -> Tensor:
        return self.log_prob(value).exp()

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no cdf")

    def icdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no icdf")

    def entropy(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no entropy")

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement mean")

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement mode")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement variance")

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def perplexity(self) -> Tensor:
        return self.entropy().exp()

    def _validate_sample(self, value: Tensor) -> None:
        if not self._validate_args:
            return
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        event = len(self._event_shape)
        actual = tuple(value.shape)
        expected = tuple(self._batch_shape) + tuple(self._event_shape)
        if event and actual[len(actual) - event :] != tuple(self._event_shape):
            raise ValueError(
                f"The right-most size of value must match event_shape: {tuple(value.shape)} vs "
                f"{tuple(self._event_shape)}."
            )
        try:
            np.broadcast_shapes(actual, expected)
        except ValueError:
            raise ValueError(
                f"Value is not broadcastable with batch_shape+event_shape: {actual} vs {expected}."
            ) from None
        support = self.support
        if support is not None:
            valid = support.check(value._data)
            if not bool(np.all(_host(valid))):
                raise ValueError(
                    f"Expected value argument ({type(value).__name__} of shape "
                    f"{tuple(value.shape)}) to be within the support ({support!r}) of the "
                    f"distribution {self!r}, but found invalid values:\n{_values(value)}"
                )

    def __repr__(self) -> str:
        names = [k for k in self.arg_constraints if k in self.__dict__]
        parts = []
        for k in names:
            v = self.__dict__[k]
            parts.append(f"{k}: {float(v) if v.numel() == 1 else v.shape}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _host(array) -> np.ndarray:
    return np.asarray(array.get() if hasattr(array, "get") else array)


def _values(t: Tensor) -> str:
    values = _host(t._data)
    return str(values.item() if values.size == 1 else values)


def _noise(like: Tensor, shape: tuple, kind: str = "normal"):
    """Parameter-free draws on like's device and in its dtype."""
    gen = _random.generator(like.device)
    dtype = like._data.dtype if like._data.dtype.kind == "f" else np.float64
    if kind == "normal":
        return Tensor._make(gen.standard_normal(shape, dtype=dtype))
    return Tensor._make(gen.random(shape, dtype=dtype))


def clamp_value(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """x with its values clamped and its gradient path as it was: torch's samplers clamp
    their draws in place on a detached view (`value.detach().clamp_(min=tiny)`), which moves
    a value that underflowed to 0 without cutting its gradient."""
    clamped = x.detach().clamp(min=min, max=max)
    if not x.requires_grad:
        return clamped
    return x + (clamped - x.detach())
