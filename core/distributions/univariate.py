"""Scalar distributions: Normal, Uniform, Exponential, Laplace, Gamma, Beta (continuous) and
Bernoulli, Categorical, Poisson (discrete), with torch's parameters, formulas and shapes.

Normal, Uniform, Exponential and Laplace sample by transforming parameter-free noise
(`rsample`, so gradients reach the parameters). Gamma draws from the generator's own sampler
and reaches its concentration through the implicit reparameterization gradient (the draw's
quantile held fixed; see `_StandardGamma`), and Beta through two Gamma draws; Poisson and
the discrete distributions have `sample` only.
"""

from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..autograd.node import Op
from ..backend import device_of, xp_of
from ..factory import arange
from ..nn import functional as F
from ..ops import gamma as _gamma
from ..ops._special_more import gamma_sample_grad
from ..ops.elementwise import where
from ..ops.sampling import multinomial
from ..special import xlogy
from ..tensor import Size, Tensor
from .distribution import (
    Distribution,
    ExponentialFamily,
    _noise,
    _shape,
    broadcast_all,
    clamp_value,
    constraints,
)

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _gen(like: Tensor):
    return _random.generator(like.device)


# ================================================================ continuous
class _LocationScale(Distribution):
    """A distribution on the reals symmetric about loc, with a positive scale (Normal,
    Laplace): its mean and mode are loc."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args: bool | None = None) -> None:
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc


class Normal(_LocationScale, ExponentialFamily):
    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.scale.pow(2)

    def rsample(self, sample_shape=()) -> Tensor:
        eps = _noise(self.loc, self._extended_shape(sample_shape))
        return self.loc + eps * self.scale

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        var = self.scale**2
        return -((value - self.loc) ** 2) / (2 * var) - self.scale.log() - _HALF_LOG_2PI

    def cdf(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return 0.5 * (1 + ((value - self.loc) * self.scale.reciprocal() / math.sqrt(2)).erf())

    def icdf(self, value: Tensor) -> Tensor:
        return self.loc + self.scale * (2 * value - 1).erfinv() * math.sqrt(2)

    def entropy(self) -> Tensor:
        return 0.5 + 0.5 * math.log(2 * math.pi) + self.scale.log()

    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple:
        return (self.loc / self.scale.pow(2), -0.5 * self.scale.pow(2).reciprocal())

    def _log_normalizer(self, x, y) -> Tensor:
        return -0.25 * x.pow(2) / y + 0.5 * (-math.pi / y).log()


class Uniform(Distribution):
    has_rsample = True

    def __init__(self, low, high, validate_args: bool | None = None) -> None:
        self.low, self.high = broadcast_all(low, high)
        self.arg_constraints = {
            "low": constraints.less_than(self.high),
            "high": constraints.greater_than(self.low),
        }
        super().__init__(self.low.shape, validate_args=validate_args)

    @property
    def support(self):
        return constraints.half_open_interval(self.low._data, self.high._data)

    @property
    def mean(self) -> Tensor:
        return (self.high + self.low) / 2

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low).pow(2) / 12

    def rsample(self, sample_shape=()) -> Tensor:
        u = _noise(self.low, self._extended_shape(sample_shape), "uniform")
        return self.low + u * (self.high - self.low)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        inside = ((self.low._data <= value._data) & (value._data < self.high._data)).astype(
            self.low._data.dtype
        )
        return Tensor._make(inside).log() - (self.high - self.low).log()

    def cdf(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return ((value - self.low) / (self.high - self.low)).clamp(0, 1)

    def icdf(self, value: Tensor) -> Tensor:
        return value * (self.high - self.low) + self.low

    def entropy(self) -> Tensor:
        return (self.high - self.low).log()


class Exponential(ExponentialFamily):
    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, rate, validate_args: bool | None = None) -> None:
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.rate.reciprocal()

    @property
    def variance(self) -> Tensor:
        return self.rate.pow(-2)

    def rsample(self, sample_shape=()) -> Tensor:
        u = _noise(self.rate, self._extended_shape(sample_shape), "uniform")
        return -(-u).log1p() / self.rate

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return self.rate.log() - self.rate * value

    def cdf(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return 1 - (-self.rate * value).exp()

    def icdf(self, value: Tensor) -> Tensor:
        return -(-value).log1p() / self.rate

    def entropy(self) -> Tensor:
        return 1.0 - self.rate.log()

    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple:
        return (-self.rate,)

    def _log_normalizer(self, x) -> Tensor:
        return -(-x).log()


class Laplace(_LocationScale):
    @property
    def variance(self) -> Tensor:
        return 2 * self.scale.pow(2)

    def rsample(self, sample_shape=()) -> Tensor:
        u = _noise(self.loc, self._extended_shape(sample_shape), "uniform")
        eps = np.finfo(self.loc._data.dtype).eps
        u = u * 2 - 1
        u = u.clamp(-1 + eps, 1)  # torch's uniform on (-1, 1)
        return self.loc - self.scale * u.sign() * (-u.abs()).log1p()

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return -(2 * self.scale).log() - (value - self.loc).abs() / self.scale

    def cdf(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        return (
            0.5 - 0.5 * (value - self.loc).sign() * (-(value - self.loc).abs() / self.scale).expm1()
        )

    def entropy(self) -> Tensor:
        return 1 + (2 * self.scale).log()


class _StandardGamma(Op):
    """Draws of Gamma(a, 1) (torch's `_standard_gamma`), differentiable in a: a draw is
    F^-1(u; a) for a uniform u, and holding u fixed, dx/da = -(dF/da) / f(x; a)
    (`gamma_sample_grad`)."""

    save_inputs = (0,)
    save_output = True

    def forward(self, a):
        draws = _random.generator(device_of(a)).gamma(a, 1.0, size=a.shape).astype(a.dtype)
        return xp_of(draws).maximum(draws, np.finfo(a.dtype).tiny)  # as torch's sampler

    def backward(self, g):
        a, x = self.saved
        return g * Tensor._make(gamma_sample_grad(a._data, x._data))


class Gamma(ExponentialFamily):
    """Gamma(concentration, rate): density rate^a x^(a-1) e^(-rate x) / Gamma(a)."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.greater_than(0.0)
    has_rsample = True

    def __init__(self, concentration, rate, validate_args: bool | None = None) -> None:
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.rate

    @property
    def mode(self) -> Tensor:
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self) -> Tensor:
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        value = _StandardGamma.apply(self.concentration.expand(*shape)) / self.rate.expand(*shape)
        return clamp_value(value, min=float(np.finfo(value._data.dtype).tiny))

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        a, b = self.concentration, self.rate
        return xlogy(a, b) + xlogy(a - 1, value) - b * value - _gamma.lgamma(a)

    def cdf(self, value: Tensor) -> Tensor:
        """The regularized lower incomplete gamma function P(concentration, rate x)."""
        from ..ops.special_functions import gammainc  # noqa: PLC0415

        self._validate_sample(value)
        return gammainc(self.concentration, self.rate * value)

    def entropy(self) -> Tensor:
        a = self.concentration
        return a - self.rate.log() + _gamma.lgamma(a) + (1.0 - a) * _gamma.digamma(a)

    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple:
        return (self.concentration - 1, -self.rate)

    def _log_normalizer(self, x, y) -> Tensor:
        return _gamma.lgamma(x + 1) + (x + 1) * (-y.reciprocal()).log()


class Beta(ExponentialFamily):
    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args: bool | None = None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        super().__init__(self.concentration1.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def variance(self) -> Tensor:
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=()) -> Tensor:
        x = Gamma(self.concentration1, 1.0, validate_args=False).rsample(sample_shape)
        y = Gamma(self.concentration0, 1.0, validate_args=False).rsample(sample_shape)
        eps = float(np.finfo(x._data.dtype).eps)
        tiny = float(np.finfo(x._data.dtype).tiny)
        return clamp_value(x / (x + y), min=tiny, max=1 - eps)  # as torch's Dirichlet draws

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        return xlogy(a - 1, value) + xlogy(b - 1, 1 - value) - self._log_normalizer(a, b)

    def entropy(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        total = a + b
        return (
            self._log_normalizer(a, b)
            - (a - 1) * _gamma.digamma(a)
            - (b - 1) * _gamma.digamma(b)
            + (total - 2) * _gamma.digamma(total)
        )

    @property
    def _natural_params(self) -> tuple:
        return (self.concentration1, self.concentration0)

    def _log_normalizer(self, x, y) -> Tensor:
        """log B(x, y), the log of the Beta function."""
        return _gamma.lgamma(x) + _gamma.lgamma(y) - _gamma.lgamma(x + y)


# ================================================================ discrete
def binary_parameter(dist, name: str):
    """`logits` from a probs-parameterized distribution (clamped off 0 and 1), or `probs`
    from a logits-parameterized one: the one of the pair it was not given."""
    if name == "logits":
        p = dist.__dict__["probs"]
        eps = float(np.finfo(p._data.dtype).eps)
        clamped = p.clamp(eps, 1 - eps)
        return clamped.log() - (-clamped).log1p()
    if name == "probs":
        return dist.__dict__["logits"].sigmoid()
    raise AttributeError(name)


def _probs_or_logits(probs, logits) -> None:
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")


class _BinaryTrials(Distribution):
    """One success probability, given as probs or as logits (the other derived when read):
    the parameter of Bernoulli, Geometric and Binomial."""

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None) -> None:
        _probs_or_logits(probs, logits)
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            self.arg_constraints = {"probs": constraints.unit_interval}
            shape = self.probs.shape
        else:
            (self.logits,) = broadcast_all(logits)
            self.arg_constraints = {"logits": constraints.real}
            shape = self.logits.shape
        super().__init__(shape, validate_args=validate_args)

    def __getattr__(self, name: str):
        return binary_parameter(self, name)


class Bernoulli(_BinaryTrials, ExponentialFamily):
    """1 with probability probs (or sigmoid(logits)), else 0."""

    support = constraints.boolean

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        return (self.probs >= 0.5).to(self.probs.dtype)

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        p = self.probs.detach()
        shape = self._extended_shape(sample_shape)
        u = _noise(p, shape, "uniform")
        return (u < p.expand(*shape)).to(p.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self) -> Tensor:
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple:
        return ((self.probs / (1 - self.probs)).log(),)

    def _log_normalizer(self, x) -> Tensor:
        return x.exp().log1p()


class Categorical(Distribution):
    """One of K categories with probabilities probs (rows normalised) or softmax(logits);
    the last dimension indexes the categories."""

    def __init__(self, probs=None, logits=None, validate_args: bool | None = None) -> None:
        _probs_or_logits(probs, logits)
        if probs is not None:
            if probs.ndim < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
            self.arg_constraints = {"probs": constraints.simplex}
            param = self.probs
        else:
            if logits.ndim < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(-1, keepdim=True)
            self.arg_constraints = {"logits": constraints.real_vector}
            param = self.logits
        self._num_events = param.shape[-1]
        super().__init__(param.shape[:-1], validate_args=validate_args)

    def __getattr__(self, name: str):
        if name == "logits":
            p = self.__dict__["probs"]
            eps = float(np.finfo(p._data.dtype).eps)
            return p.clamp(eps, 1 - eps).log()
        if name == "probs":
            return F.softmax(self.__dict__["logits"], -1)
        raise AttributeError(name)

    @property
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @property
    def param_shape(self) -> Size:
        return self.probs.shape

    @property
    def mean(self) -> Tensor:
        return self.probs.new_full(tuple(self._batch_shape), float("nan"))

    @property
    def variance(self) -> Tensor:
        return self.probs.new_full(tuple(self._batch_shape), float("nan"))

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(-1)

    def sample(self, sample_shape=()) -> Tensor:
        shape = _shape(sample_shape)
        count = int(np.prod(shape)) if shape else 1
        rows = self.probs.detach().reshape(-1, self._num_events)
        draws = multinomial(rows, count, replacement=True)  # (rows, count)
        return draws.T.reshape(*shape, *self._batch_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        value, log_pmf = broadcast_all_int(value, self.logits)
        return log_pmf.gather(-1, value[..., :1]).squeeze(-1)

    def entropy(self) -> Tensor:
        lowest = float(np.finfo(self.logits._data.dtype).min)
        logits = self.logits.clamp(min=lowest)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = arange(self._num_events, device=self.probs.device).reshape(
            -1, *([1] * len(self._batch_shape))
        )
        return values.expand(-1, *self._batch_shape) if expand else values

    has_enumerate_support = True


def broadcast_all_int(value: Tensor, log_pmf: Tensor) -> tuple[Tensor, Tensor]:
    """(value, log_pmf) broadcast over their batch dims: value (..., 1), log_pmf (..., K)."""
    batch = np.broadcast_shapes(tuple(value.shape[:-1]), tuple(log_pmf.shape[:-1]))
    return value.expand(*batch, 1), log_pmf.expand(*batch, log_pmf.shape[-1])


class Poisson(ExponentialFamily):
    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args: bool | None = None) -> None:
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.rate

    @property
    def mode(self) -> Tensor:
        return self.rate.floor()

    @property
    def variance(self) -> Tensor:
        return self.rate

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        lam = self.rate.detach().expand(*shape)._data
        return Tensor._make(_gen(self.rate).poisson(lam, size=shape).astype(lam.dtype))

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        rate, value = broadcast_all(self.rate, value)
        return xlogy(value, rate) - rate - _gamma.lgamma(value + 1)

    @property
    def _natural_params(self) -> tuple:
        return (self.rate.log(),)

    def _log_normalizer(self, x) -> Tensor:
        return x.exp()


class GeneralizedPareto(Distribution):
    """The generalized Pareto distribution (the excesses over a high threshold): location,
    scale and shape xi (`concentration`). xi = 0 is the exponential distribution, xi < 0 has
    a finite upper end loc - scale / xi. Where xi is 0 the xi-formulas are 0/0, so they are
    taken at a safe stand-in and the xi = 0 branch is chosen by `where`, as in torch."""

    arg_constraints = {
        "loc": constraints.real,
        "scale": constraints.positive,
        "concentration": constraints.real,
    }
    has_rsample = True

    def __init__(self, loc, scale, concentration, validate_args: bool | None = None) -> None:
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        upper = self.loc - self.scale / self.concentration
        upper = upper.masked_fill(self.concentration >= 0, math.inf)
        return constraints.interval(self.loc, upper)

    def _zero_and_safe(self):
        zero = self.concentration.abs() <= 1e-8  # torch.isclose(xi, 0) with its tolerances
        return zero, self.concentration.masked_fill(zero, 1.0)

    def _z(self, value: Tensor) -> Tensor:
        return (value - self.loc) / self.scale

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        u = _noise(self.loc, shape, "uniform")
        return self.icdf(u)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        z = self._z(value)
        zero, safe = self._zero_and_safe()
        y = 1 / safe + 1
        nonzero = where(y == 0, y, y * (safe * z).log1p())
        return -self.scale.log() - where(zero, z, nonzero)

    def _log_survival(self, value: Tensor) -> Tensor:
        z = self._z(value)
        zero, safe = self._zero_and_safe()
        return where(zero, -z, -(safe * z).log1p() / safe)

    def cdf(self, value: Tensor) -> Tensor:
        return -self._log_survival(value).expm1()

    def icdf(self, value: Tensor) -> Tensor:
        zero, safe = self._zero_and_safe()
        log_survival = (-value).log1p()
        standard = where(zero, -log_survival, (-safe * log_survival).expm1() / safe)
        return self.loc + self.scale * standard

    @property
    def mean(self) -> Tensor:
        valid = self.concentration < 1
        safe = self.concentration.masked_fill(~valid, 0.5)
        return where(valid, self.loc + self.scale / (1 - safe), math.nan)

    @property
    def variance(self) -> Tensor:
        valid = self.concentration < 0.5
        safe = self.concentration.masked_fill(~valid, 0.25)
        result = self.scale.pow(2) / ((1 - safe).pow(2) * (1 - 2 * safe))
        return where(valid, result, math.nan)

    @property
    def mode(self) -> Tensor:
        return self.loc

    def entropy(self) -> Tensor:
        return self.scale.log() + self.concentration + 1


__all__ = [
    "Bernoulli", "Beta", "Categorical", "Exponential", "Gamma", "GeneralizedPareto", "Laplace",
    "Normal", "Poisson", "Uniform",
]  # fmt: skip
