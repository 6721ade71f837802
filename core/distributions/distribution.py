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

__all__ = ["Distribution", "ExponentialFamily"]


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


class _Simplex(Constraint):
    event_dim = 1

    def check(self, value):
        xp = xp_of(value)
        return (value >= 0).all(axis=-1) & (xp.abs(value.sum(axis=-1) - 1) < 1e-6)

    def __repr__(self) -> str:
        return "Simplex()"


class _IndependentConstraint(Constraint):
    """`base` on each element, with the rightmost `reinterpreted_batch_ndims` dimensions
    of a value taken as one event (all of its elements must pass)."""

    def __init__(self, base_constraint: Constraint, reinterpreted_batch_ndims: int) -> None:
        self.base_constraint = base_constraint
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims

    @property
    def is_discrete(self) -> bool:
        return self.base_constraint.is_discrete

    @property
    def event_dim(self) -> int:
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def check(self, value):
        result = self.base_constraint.check(value)
        n = self.reinterpreted_batch_ndims
        if result.ndim < n:
            raise ValueError(f"Expected value.dim() >= {self.event_dim} but got {value.ndim}")
        return result.reshape(result.shape[: result.ndim - n] + (-1,)).all(axis=-1)

    def __repr__(self) -> str:
        return f"IndependentConstraint({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


class _Square(Constraint):
    event_dim = 2

    def check(self, value):
        xp = xp_of(value)
        return xp.full(value.shape[:-2], value.shape[-2] == value.shape[-1], dtype=bool)

    def __repr__(self) -> str:
        return "Square()"


class _Symmetric(_Square):
    def check(self, value):
        square = super().check(value)
        if not square.all():
            return square
        xp = xp_of(value)
        close = xp.isclose(value, value.swapaxes(-1, -2), atol=1e-6)
        return close.reshape(close.shape[:-2] + (-1,)).all(axis=-1)

    def __repr__(self) -> str:
        return "Symmetric()"


class _PositiveSemidefinite(_Symmetric):
    def check(self, value):
        symmetric = super().check(value)
        if not symmetric.all():
            return symmetric
        return (xp_of(value).linalg.eigvalsh(value) >= 0).all(axis=-1)

    def __repr__(self) -> str:
        return "PositiveSemidefinite()"


class _PositiveDefinite(_Symmetric):
    def check(self, value):
        symmetric = super().check(value)
        if not symmetric.all():
            return symmetric
        return (xp_of(value).linalg.eigvalsh(value) > 0).all(axis=-1)

    def __repr__(self) -> str:
        return "PositiveDefinite()"


class _LowerTriangular(Constraint):
    event_dim = 2

    def check(self, value):
        lower = xp_of(value).tril(value) == value
        return lower.reshape(lower.shape[:-2] + (-1,)).all(axis=-1)

    def __repr__(self) -> str:
        return "LowerTriangular()"


class _LowerCholesky(_LowerTriangular):
    """Lower triangular with a positive diagonal: a Cholesky factor."""

    def check(self, value):
        diagonal = xp_of(value).diagonal(value, axis1=-2, axis2=-1)
        return super().check(value) & (diagonal > 0).all(axis=-1)

    def __repr__(self) -> str:
        return "LowerCholesky()"


class _CorrCholesky(_LowerCholesky):
    """The Cholesky factor of a correlation matrix: each row has unit length."""

    def check(self, value):
        xp = xp_of(value)
        tol = float(np.finfo(value.dtype).eps) * value.shape[-1] * 10
        rows = xp.sqrt((value * value).sum(axis=-1))
        return super().check(value) & (xp.abs(rows - 1.0) <= tol).all(axis=-1)

    def __repr__(self) -> str:
        return "CorrCholesky()"


class _Joined(Constraint):
    """Constraints on pieces of a value along `dim` (cat, stack): discrete if any piece is,
    with the largest event of the pieces."""

    cseq: list

    @property
    def is_discrete(self) -> bool:
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self) -> int:
        return max(c.event_dim for c in self.cseq)


class _Cat(_Joined):
    """Constraints applied to consecutive pieces of `lengths` along `dim`."""

    def __init__(self, cseq, dim: int = 0, lengths=None) -> None:
        self.cseq = list(cseq)
        self.lengths = list(lengths) if lengths is not None else [1] * len(self.cseq)
        if len(self.lengths) != len(self.cseq):
            raise ValueError("cat: one length per constraint")
        self.dim = dim

    def check(self, value):
        xp = xp_of(value)
        checks, start = [], 0
        for constraint, length in zip(self.cseq, self.lengths):
            piece = xp.take(value, xp.arange(start, start + length), axis=self.dim)
            checks.append(constraint.check(piece))
            start += length
        return xp.concatenate(checks, axis=self.dim)

    def __repr__(self) -> str:
        return "Cat()"


class _Stack(_Joined):
    """One constraint per index along `dim`."""

    def __init__(self, cseq, dim: int = 0) -> None:
        self.cseq, self.dim = list(cseq), dim

    def check(self, value):
        xp = xp_of(value)
        pieces = [xp.take(value, i, axis=self.dim) for i in range(value.shape[self.dim])]
        return xp.stack([c.check(v) for c, v in zip(self.cseq, pieces)], axis=self.dim)

    def __repr__(self) -> str:
        return "Stack()"


class _IntegerGreaterThan(Constraint):
    is_discrete = True

    def __init__(self, lower_bound: int) -> None:
        self.lower_bound = lower_bound

    def check(self, value):
        return (value % 1 == 0) & (value >= self.lower_bound)

    def __repr__(self) -> str:
        return f"IntegerGreaterThan(lower_bound={_bound(self.lower_bound)})"


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def check(self, value):
        binary = ((value == 0) | (value == 1)).all(axis=-1)
        return binary & (value.sum(axis=-1) == 1)

    def __repr__(self) -> str:
        return "OneHot()"


class _Multinomial(Constraint):
    """Non-negative counts summing to at most `upper_bound`."""

    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound: int) -> None:
        self.upper_bound = upper_bound

    def check(self, value):
        return (value >= 0).all(axis=-1) & (value.sum(axis=-1) <= self.upper_bound)

    def __repr__(self) -> str:
        return "Multinomial()"


class _Dependent(Constraint):
    """A placeholder for a support that depends on other parameters: it cannot be
    checked (torch's `constraints.dependent`)."""

    def __init__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented) -> None:
        self._is_discrete, self._event_dim = is_discrete, event_dim

    @property
    def is_discrete(self):
        if self._is_discrete is NotImplemented:
            raise NotImplementedError(".is_discrete cannot be determined statically")
        return self._is_discrete

    @property
    def event_dim(self):
        if self._event_dim is NotImplemented:
            raise NotImplementedError(".event_dim cannot be determined statically")
        return self._event_dim

    def __call__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        return _Dependent(is_discrete=is_discrete, event_dim=event_dim)

    def check(self, value):
        raise ValueError("Cannot determine validity of dependent constraint")

    def __repr__(self) -> str:
        return "Dependent()"


class _DependentProperty(property, _Dependent):
    """A property of a distribution that is also a dependent constraint (a support that
    depends on the parameters: `@constraints.dependent_property def support(self)`)."""

    def __init__(self, fn=None, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        property.__init__(self, fn)
        _Dependent.__init__(self, is_discrete=is_discrete, event_dim=event_dim)

    def __call__(self, fn):
        return _DependentProperty(fn, is_discrete=self._is_discrete, event_dim=self._event_dim)


def _is_dependent(constraint) -> bool:
    return isinstance(constraint, _Dependent)


def _bound(b):
    if isinstance(b, Tensor):
        return float(b) if b.numel() == 1 else b
    return b


class constraints:  # noqa: N801 - torch's module name
    """The constraints torch.distributions.constraints names."""

    real = _Real()
    real_vector = _IndependentConstraint(_Real(), 1)
    positive = _GreaterThan(0.0)
    nonnegative = _GreaterThanEq(0.0)
    greater_than_eq = _GreaterThanEq
    independent = _IndependentConstraint
    square = _Square()
    symmetric = _Symmetric()
    positive_semidefinite = _PositiveSemidefinite()
    positive_definite = _PositiveDefinite()
    lower_triangular = _LowerTriangular()
    lower_cholesky = _LowerCholesky()
    corr_cholesky = _CorrCholesky()
    cat = _Cat
    stack = _Stack
    positive_integer = _IntegerGreaterThan(1)
    integer_greater_than = _IntegerGreaterThan
    one_hot = _OneHot()
    multinomial = _Multinomial
    dependent = _Dependent()
    dependent_property = _DependentProperty
    is_dependent = staticmethod(_is_dependent)
    Constraint = Constraint
    unit_interval = _Interval(0.0, 1.0)
    boolean = _Boolean()
    nonnegative_integer = _IntegerGreaterThan(0)
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


class ExponentialFamily(Distribution):
    """A family with density h(x) exp(<t(x), theta> - F(theta)): a subclass gives its
    natural parameters theta (`_natural_params`), the log normaliser F (`_log_normalizer`)
    and E[log h(x)] (`_mean_carrier_measure`), and gets the entropy as a Bregman divergence,
    F(theta) - <theta, grad F(theta)> - E[log h], with grad F by autograd (and the KL
    divergence between two members of one family the same way; see kl.py)."""

    @property
    def _natural_params(self) -> tuple:
        raise NotImplementedError

    def _log_normalizer(self, *natural_params) -> Tensor:
        raise NotImplementedError

    @property
    def _mean_carrier_measure(self):
        raise NotImplementedError

    def _log_normalizer_with_gradients(self):
        """The natural parameters (detached leaves), F at them, and grad F (recorded, so
        that the result can be differentiated again): what both Bregman forms need."""
        from ..autograd import grad  # noqa: PLC0415

        params = [p.detach().requires_grad_() for p in self._natural_params]
        with grad_mode.enable_grad():
            log_normalizer = self._log_normalizer(*params)
            gradients = grad(log_normalizer.sum(), params, create_graph=True)
        return params, log_normalizer, gradients

    def entropy(self) -> Tensor:
        params, log_normalizer, gradients = self._log_normalizer_with_gradients()
        result = -self._mean_carrier_measure + log_normalizer
        for param, gradient in zip(params, gradients):
            term = param * gradient
            result = result - term.reshape(*self._batch_shape, -1).sum(-1)
        return result


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
