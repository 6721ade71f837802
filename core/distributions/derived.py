"""Distributions derived from the basic ones by a transformation, a ratio or a count:
LogNormal, HalfNormal, Cauchy, StudentT, Chi2 (continuous) and Geometric, Binomial,
Multinomial, OneHotCategorical (discrete), with torch's formulas for log_prob, entropy,
mean and variance."""

from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..backend import xp_of
from ..nn import functional as F
from ..ops import gamma as _gamma
from ..tensor import Tensor
from .distribution import Distribution, _noise, _shape, broadcast_all, constraints
from .univariate import Categorical, Gamma, Normal, _BinaryTrials, _LocationScale

__all__ = [
    "Binomial", "Cauchy", "Chi2", "Geometric", "HalfNormal", "LogNormal", "Multinomial",
    "OneHotCategorical", "OneHotCategoricalStraightThrough", "StudentT",
]  # fmt: skip

_LOG_2 = math.log(2.0)


# ================================================================ continuous
class LogNormal(Distribution):
    """exp of a Normal(loc, scale) draw."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc, scale, validate_args: bool | None = None) -> None:
        self.base_dist = Normal(loc, scale, validate_args=validate_args)
        self.loc, self.scale = self.base_dist.loc, self.base_dist.scale
        super().__init__(self.loc.shape, validate_args=validate_args)

    def __repr__(self) -> str:
        return "LogNormal()"

    @property
    def mean(self) -> Tensor:
        return (self.loc + self.scale.pow(2) / 2).exp()

    @property
    def mode(self) -> Tensor:
        return (self.loc - self.scale.pow(2)).exp()

    @property
    def variance(self) -> Tensor:
        s2 = self.scale.pow(2)
        return s2.expm1() * (2 * self.loc + s2).exp()

    def rsample(self, sample_shape=()) -> Tensor:
        return self.base_dist.rsample(sample_shape).exp()

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        log_value = value.log()
        return self.base_dist.log_prob(log_value) - log_value

    def entropy(self) -> Tensor:
        return self.base_dist.entropy() + self.loc


class HalfNormal(Distribution):
    """|x| for x from Normal(0, scale)."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args: bool | None = None) -> None:
        (self.scale,) = broadcast_all(scale)
        self.base_dist = Normal(0.0 * self.scale.detach(), self.scale, validate_args=False)
        super().__init__(self.scale.shape, validate_args=validate_args)

    def __repr__(self) -> str:
        return "HalfNormal()"

    @property
    def mean(self) -> Tensor:
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def variance(self) -> Tensor:
        return self.scale.pow(2) * (1 - 2 / math.pi)

    def rsample(self, sample_shape=()) -> Tensor:
        return self.base_dist.rsample(sample_shape).abs()

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        out = self.base_dist.log_prob(value) + _LOG_2
        return out.masked_fill(value < 0, float("-inf"))

    def cdf(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return 2 * self.base_dist.cdf(value) - 1

    def entropy(self) -> Tensor:
        return self.base_dist.entropy() - _LOG_2


class Cauchy(_LocationScale):
    """The ratio of two normals: no mean (nan) and infinite variance."""

    @property
    def mean(self) -> Tensor:
        return self.loc.new_full(tuple(self._batch_shape), float("nan"))

    @property
    def variance(self) -> Tensor:
        return self.loc.new_full(tuple(self._batch_shape), float("inf"))

    def rsample(self, sample_shape=()) -> Tensor:
        u = _noise(self.loc, self._extended_shape(sample_shape), "uniform")
        return self.loc + self.scale * ((u - 0.5) * math.pi).tan()

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - z.pow(2).log1p()

    def cdf(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return ((value - self.loc) / self.scale).atan() / math.pi + 0.5

    def icdf(self, value: Tensor) -> Tensor:
        return ((value - 0.5) * math.pi).tan() * self.scale + self.loc

    def entropy(self) -> Tensor:
        return (4 * math.pi * self.scale).log()


class StudentT(Distribution):
    has_rsample = True
    arg_constraints = {
        "df": constraints.positive,
        "loc": constraints.real,
        "scale": constraints.positive,
    }
    support = constraints.real

    def __init__(self, df, loc=0.0, scale=1.0, validate_args: bool | None = None) -> None:
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        super().__init__(self.df.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.loc.masked_fill(self.df <= 1, float("nan"))

    @property
    def variance(self) -> Tensor:
        var = self.scale.pow(2) * self.df / (self.df - 2)
        var = var.masked_fill((self.df <= 2) & (self.df > 1), float("inf"))
        return var.masked_fill(self.df <= 1, float("nan"))

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        z = _noise(self.loc, shape)
        chi2 = Gamma(0.5 * self.df, 0.5, validate_args=False).rsample(sample_shape)
        return self.loc + self.scale * z * (self.df / chi2).sqrt()

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        y = (value - self.loc) / self.scale
        z = (
            self.scale.log()
            + 0.5 * self.df.log()
            + 0.5 * math.log(math.pi)
            + _gamma.lgamma(0.5 * self.df)
            - _gamma.lgamma(0.5 * (self.df + 1.0))
        )
        return -0.5 * (self.df + 1.0) * (y.pow(2) / self.df).log1p() - z

    def entropy(self) -> Tensor:
        half = 0.5 * self.df
        lbeta = _gamma.lgamma(half) + math.lgamma(0.5) - _gamma.lgamma(half + 0.5)
        return (
            self.scale.log()
            + (half + 0.5) * (_gamma.digamma(half + 0.5) - _gamma.digamma(half))
            + 0.5 * self.df.log()
            + lbeta
        )


class Chi2(Gamma):
    """Gamma(df / 2, 1 / 2): the sum of df squared standard normals."""

    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args: bool | None = None) -> None:
        (df,) = broadcast_all(df)
        super().__init__(0.5 * df, 0.5, validate_args=validate_args)

    @property
    def df(self) -> Tensor:
        return self.concentration * 2

    def __repr__(self) -> str:
        return "Chi2()"


# ================================================================ discrete
class Geometric(_BinaryTrials):
    """The number of failures before the first success of Bernoulli(probs) trials."""

    support = constraints.nonnegative_integer

    @property
    def mean(self) -> Tensor:
        return 1.0 / self.probs - 1.0

    @property
    def mode(self) -> Tensor:
        return self.probs * 0

    @property
    def variance(self) -> Tensor:
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()) -> Tensor:
        p = self.probs.detach()
        shape = self._extended_shape(sample_shape)
        tiny = float(np.finfo(p._data.dtype).tiny)
        u = _noise(p, shape, "uniform").clamp(min=tiny)
        return (u.log() / (-p.expand(*shape)).log1p()).floor()

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        value, probs = broadcast_all(value, self.probs)
        certain = (probs._data == 1) & (value._data == 0)  # 0 * log(0) is 0 here
        safe = probs.masked_fill(Tensor._make(certain), 0.0)
        return value * (-safe).log1p() + probs.log()

    def entropy(self) -> Tensor:
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none") / (
            self.probs
        )


def _clamp_by_zero(x: Tensor) -> Tensor:
    """max(x, 0) with the gradient 1/2 at 0, as torch's Binomial uses."""
    return (x.clamp(min=0) + x - x.clamp(max=0)) / 2


class Binomial(_BinaryTrials):
    """The number of successes in total_count Bernoulli(probs) trials."""

    def __init__(
        self, total_count=1, probs=None, logits=None, validate_args: bool | None = None
    ) -> None:
        param = probs if probs is not None else logits
        self.total_count, _ = broadcast_all(total_count, param)
        super().__init__(probs, logits, validate_args=validate_args)
        if tuple(self.total_count.shape) != tuple(self._batch_shape):
            self.total_count = self.total_count.expand(*self._batch_shape)
        self.total_count = self.total_count.to(self.probs.dtype)

    @property
    def support(self):
        return constraints.integer_interval(0, self.total_count._data)

    def __repr__(self) -> str:
        name = "probs" if "probs" in self.__dict__ else "logits"
        value = self.__dict__[name]
        shown = float(value) if value.numel() == 1 else value.shape
        count = float(self.total_count) if self.total_count.numel() == 1 else self.total_count.shape
        return f"Binomial(total_count: {count}, {name}: {shown})"

    @property
    def mean(self) -> Tensor:
        return self.total_count * self.probs

    @property
    def mode(self) -> Tensor:
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        n = self.total_count.detach().expand(*shape)._data.astype(np.int64)
        p = self.probs.detach().expand(*shape)._data
        draws = _random.generator(self.probs.device).binomial(n, p, size=shape)
        return Tensor._make(draws.astype(p.dtype))

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        n, logits = self.total_count, self.logits
        normalize = (
            n * _clamp_by_zero(logits) + n * (-logits.abs()).exp().log1p() - (_gamma.lgamma(n + 1))
        )
        return value * logits - _gamma.lgamma(value + 1) - _gamma.lgamma(n - value + 1) - normalize

    def entropy(self) -> Tensor:
        raise NotImplementedError("Binomial.entropy is provided for a total_count of 1 only")


class _CategoricalEvents(Distribution):
    """A distribution over K-vectors driven by one Categorical, whose parameters it shares."""

    def _wrap(self, probs, logits, validate_args) -> None:
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        self.arg_constraints = self._categorical.arg_constraints
        k = self._categorical._num_events
        Distribution.__init__(self, self._categorical.batch_shape, (k,), validate_args=False)

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits


class OneHotCategorical(_CategoricalEvents):
    """A Categorical draw as a one-hot vector (event shape (K,))."""

    support = constraints.one_hot

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None) -> None:
        self._wrap(probs, logits, validate_args)

    def __repr__(self) -> str:
        return "OneHotCategorical()"

    @property
    def mean(self) -> Tensor:
        return self._categorical.probs

    @property
    def variance(self) -> Tensor:
        p = self._categorical.probs
        return p * (1 - p)

    def sample(self, sample_shape=()) -> Tensor:
        indices = self._categorical.sample(sample_shape)
        return F.one_hot(indices, self._categorical._num_events).to(self._categorical.probs.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        return self._categorical.log_prob(value.argmax(-1))

    def entropy(self) -> Tensor:
        return self._categorical.entropy()


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """OneHotCategorical whose rsample passes gradients straight through (Bengio et al.,
    2013): the value is a one-hot draw, the gradient that of the probabilities."""

    has_rsample = True

    def __repr__(self) -> str:
        return "OneHotCategoricalStraightThrough()"

    def rsample(self, sample_shape=()) -> Tensor:
        draws = self.sample(sample_shape)
        probs = self._categorical.probs
        return draws + (probs - probs.detach())


class Multinomial(_CategoricalEvents):
    """Counts of total_count Categorical draws (event shape (K,))."""

    def __init__(
        self, total_count: int = 1, probs=None, logits=None, validate_args: bool | None = None
    ) -> None:
        if not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        self._wrap(probs, logits, validate_args)

    def __repr__(self) -> str:
        return "Multinomial()"

    @property
    def mean(self) -> Tensor:
        return self.probs * self.total_count

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        shape = _shape(sample_shape)
        draws = self._categorical.sample((self.total_count, *shape))  # (n, *shape, *batch)
        k = self._categorical._num_events
        return F.one_hot(draws, k).sum(0).to(self.probs.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        logits = self.logits.expand(
            *np.broadcast_shapes(tuple(self.logits.shape), tuple(value.shape))
        )
        value = value.expand(*logits.shape)
        # a category that cannot occur (logit -inf) and is not counted adds nothing
        unused = (_host(value._data) == 0) & np.isneginf(_host(logits._data))
        logits = logits.masked_fill(Tensor._make(_like(logits, unused)), 0.0)
        log_factorial_n = _gamma.lgamma(value.sum(-1) + 1)
        log_factorial_xs = _gamma.lgamma(value + 1).sum(-1)
        return log_factorial_n - log_factorial_xs + (logits * value).sum(-1)


def _host(array) -> np.ndarray:
    return np.asarray(array.get() if hasattr(array, "get") else array)


def _like(t: Tensor, array: np.ndarray):
    return xp_of(t._data).asarray(array)
