"""TransformedDistribution (a base distribution pushed through bijections) and the families
torch builds that way or that sit beside them: Gumbel, Weibull, Pareto, HalfCauchy, the
relaxed (concrete) Bernoulli and one-hot categorical, and the negative binomial.

log_prob of a transformed variable is the change of variables: the base log_prob at the
inverse image minus each transform's log |dy/dx|. Gumbel, Weibull, Pareto and HalfCauchy
are written out in closed form (torch's formulas for their moments and entropies); the
relaxed distributions are TransformedDistributions of their logit- or log-space versions,
as in torch, so their samples carry gradients to the parameters (rsample).
"""

from __future__ import annotations

import math

import numpy as np

from ..nn import functional as F
from ..ops import gamma as _gamma
from ..tensor import Tensor
from .distribution import Distribution, _noise, broadcast_all, clamp_value, constraints
from .transforms import (
    AffineTransform,
    ComposeTransform,
    ExpTransform,
    PowerTransform,
    SigmoidTransform,
    StickBreakingTransform,
    Transform,
    _sum_rightmost,
)
from .univariate import (
    Bernoulli,
    Categorical,
    Gamma,
    Poisson,
    Uniform,
    _probs_or_logits,
    binary_parameter,
)

__all__ = [
    "FisherSnedecor", "InverseGamma", "Kumaraswamy", "LogisticNormal",
    "ExpRelaxedCategorical", "Gumbel", "HalfCauchy", "LogitRelaxedBernoulli", "NegativeBinomial",
    "Pareto", "RelaxedBernoulli", "RelaxedOneHotCategorical", "TransformedDistribution", "Weibull",
]  # fmt: skip

_EULER = 0.57721566490153286060


def _log(temperature) -> Tensor | float:
    return math.log(temperature) if isinstance(temperature, (int, float)) else temperature.log()


def _tiny_uniform(like: Tensor, shape: tuple) -> Tensor:
    """Uniform draws in (tiny, 1 - eps): safe under log and log1p."""
    info = np.finfo(like._data.dtype if like._data.dtype.kind == "f" else np.float64)
    return _noise(like, shape, "uniform").clamp(float(info.tiny), 1 - float(info.eps))


# ================================================================ the general construction
class TransformedDistribution(Distribution):
    """The distribution of transforms[-1](...transforms[0](x)) for x ~ base_distribution."""

    arg_constraints: dict = {}

    def __init__(self, base_distribution: Distribution, transforms, validate_args=None) -> None:
        if isinstance(transforms, Transform):
            transforms = [transforms]
        if not all(isinstance(t, Transform) for t in transforms):
            raise ValueError(
                f"transforms must be a Transform or a list of Transforms, but was {transforms}"
            )
        self.base_dist = base_distribution
        self.transforms = list(transforms)
        chain = ComposeTransform(self.transforms)
        base_shape = tuple(base_distribution.batch_shape) + tuple(base_distribution.event_shape)
        shape = tuple(chain.forward_shape(base_shape))  # stick breaking adds a coordinate
        event_dim = max(chain.codomain_event_dim, len(base_distribution.event_shape))
        cut = len(shape) - event_dim
        super().__init__(shape[:cut], shape[cut:], validate_args=validate_args)

    @property
    def has_rsample(self) -> bool:
        return self.base_dist.has_rsample

    @property
    def support(self):
        return self.transforms[-1].codomain if self.transforms else self.base_dist.support

    def sample(self, sample_shape=()) -> Tensor:
        x = self.base_dist.sample(sample_shape)
        for t in self.transforms:
            x = t(x)
        return x.detach()

    def rsample(self, sample_shape=()) -> Tensor:
        x = self.base_dist.rsample(sample_shape)
        for t in self.transforms:
            x = t(x)
        return x

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        event_dim = len(self._event_shape)
        total = 0
        y = value
        for t in reversed(self.transforms):
            x = t.inv(y)
            event_dim += t.domain_event_dim - t.codomain_event_dim
            total = total - _sum_rightmost(
                t.log_abs_det_jacobian(x, y), event_dim - t.domain_event_dim
            )
            y = x
        base = self.base_dist.log_prob(y)
        return total + _sum_rightmost(base, event_dim - len(self.base_dist.event_shape))

    def _monotone_sign(self) -> int:
        sign = 1
        for t in self.transforms:
            sign *= t.sign
        return sign

    def cdf(self, value: Tensor) -> Tensor:
        for t in reversed(self.transforms):
            value = t.inv(value)
        value = self.base_dist.cdf(value)
        return value if self._monotone_sign() == 1 else 1 - value

    def icdf(self, value: Tensor) -> Tensor:
        if self._monotone_sign() != 1:
            value = 1 - value
        value = self.base_dist.icdf(value)
        for t in self.transforms:
            value = t(value)
        return value


# ================================================================ closed forms
class Gumbel(Distribution):
    """The maximum of many draws: loc - scale log(-log U)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None) -> None:
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.loc + self.scale * _EULER

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return (math.pi / math.sqrt(6)) * self.scale

    @property
    def variance(self):
        return self.stddev.pow(2)

    def rsample(self, sample_shape=()):
        u = _tiny_uniform(self.loc, self._extended_shape(sample_shape))
        return self.loc - self.scale * (-u.log()).log()

    def log_prob(self, value):
        self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -(z + (-z).exp()) - self.scale.log()

    def cdf(self, value):
        return (-(-(value - self.loc) / self.scale).exp()).exp()

    def icdf(self, value):
        return self.loc - self.scale * (-value.log()).log()

    def entropy(self):
        return self.scale.log() + (1 + _EULER)


class Weibull(Distribution):
    """scale * E^(1/concentration), E a unit exponential."""

    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, scale, concentration, validate_args=None) -> None:
        self.scale, self.concentration = broadcast_all(scale, concentration)
        super().__init__(self.scale.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.scale * _gamma.lgamma(1 + self.concentration.reciprocal()).exp()

    @property
    def mode(self):
        k = self.concentration
        return self.scale * ((k - 1) / k).pow(k.reciprocal())  # nan for k < 1, as in torch

    @property
    def variance(self):
        k = self.concentration
        return self.scale.pow(2) * (
            _gamma.lgamma(1 + 2 * k.reciprocal()).exp()
            - _gamma.lgamma(1 + k.reciprocal()).exp().pow(2)
        )

    def rsample(self, sample_shape=()):
        u = _tiny_uniform(self.scale, self._extended_shape(sample_shape))
        return self.scale * (-(-u).log1p()).pow(self.concentration.reciprocal())

    def log_prob(self, value):
        self._validate_sample(value)
        k, lam = self.concentration, self.scale
        z = value / lam
        return (k / lam).log() + (k - 1) * z.log() - z.pow(k)

    def cdf(self, value):
        return 1 - (-(value / self.scale).pow(self.concentration)).exp()

    def entropy(self):
        k = self.concentration
        return _EULER * (1 - k.reciprocal()) + (self.scale / k).log() + 1


class Pareto(Distribution):
    """scale * exp(E / alpha): a power law above `scale`."""

    arg_constraints = {"alpha": constraints.positive, "scale": constraints.positive}
    has_rsample = True

    def __init__(self, scale, alpha, validate_args=None) -> None:
        self.scale, self.alpha = broadcast_all(scale, alpha)
        super().__init__(self.scale.shape, validate_args=validate_args)

    @property
    def support(self):
        return constraints.greater_than(self.scale)

    @property
    def mean(self):
        a = self.alpha.clamp(min=1)
        return (a * self.scale / (a - 1)).masked_fill(self.alpha <= 1, math.inf)

    @property
    def mode(self):
        return self.scale

    @property
    def variance(self):
        a = self.alpha.clamp(min=2)
        var = self.scale.pow(2) * a / ((a - 1).pow(2) * (a - 2))
        return var.masked_fill(self.alpha <= 2, math.inf)

    def rsample(self, sample_shape=()):
        u = _tiny_uniform(self.scale, self._extended_shape(sample_shape))
        return self.scale * (-(-u).log1p() / self.alpha).exp()

    def log_prob(self, value):
        self._validate_sample(value)
        return self.alpha.log() + self.alpha * self.scale.log() - (self.alpha + 1) * value.log()

    def cdf(self, value):
        return 1 - (self.scale / value).pow(self.alpha)

    def icdf(self, value):
        return self.scale * (-(-value).log1p() / self.alpha).exp()

    def entropy(self):
        return (self.scale / self.alpha).log() + (1 + self.alpha.reciprocal())


class HalfCauchy(Distribution):
    """|X| for X ~ Cauchy(0, scale)."""

    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None) -> None:
        (self.scale,) = broadcast_all(scale)
        super().__init__(self.scale.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.scale.new_full(tuple(self._batch_shape), math.inf)

    @property
    def mode(self):
        return self.scale.new_zeros(tuple(self._batch_shape))

    @property
    def variance(self):
        return self.scale.new_full(tuple(self._batch_shape), math.inf)

    def rsample(self, sample_shape=()):
        u = _noise(self.scale, self._extended_shape(sample_shape), "uniform")
        return (self.scale * ((u - 0.5) * math.pi).tan()).abs()

    def log_prob(self, value):
        self._validate_sample(value)
        value, scale = broadcast_all(value, self.scale)
        lp = math.log(2 / math.pi) - scale.log() - (value / scale).pow(2).log1p()
        return lp.masked_fill(value < 0, -math.inf)

    def cdf(self, value):
        return 2 * (value / self.scale).atan() / math.pi

    def icdf(self, prob):
        return self.scale * (prob * math.pi / 2).tan()

    def entropy(self):
        return (2 * math.pi * self.scale).log()


class NegativeBinomial(Distribution):
    """Failures before total_count successes, each trial succeeding with 1 - probs (torch's
    parameterization: probs is the probability of the counted event)."""

    arg_constraints = {
        "total_count": constraints.nonnegative,
        "probs": constraints.half_open_interval(0.0, 1.0),
        "logits": constraints.real,
    }
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None) -> None:
        _probs_or_logits(probs, logits)
        given = probs if probs is not None else logits
        self.total_count, param = broadcast_all(total_count, given)
        self.total_count = self.total_count.to(param.dtype)
        if probs is not None:
            self.probs = param
            self.arg_constraints = {
                "total_count": constraints.nonnegative,
                "probs": constraints.half_open_interval(0.0, 1.0),
            }
        else:
            self.logits = param
            self.arg_constraints = {
                "total_count": constraints.nonnegative,
                "logits": constraints.real,
            }
        super().__init__(param.shape, validate_args=validate_args)

    def __getattr__(self, name: str):
        return binary_parameter(self, name)

    @property
    def mean(self):
        return self.total_count * self.logits.exp()

    @property
    def mode(self):
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self):
        return self.mean / (-self.logits).sigmoid()

    def sample(self, sample_shape=()):
        rate = (-self.logits.detach()).exp()
        gamma = Gamma(self.total_count.detach(), rate, validate_args=False).sample(sample_shape)
        return Poisson(gamma, validate_args=False).sample()

    def log_prob(self, value):
        self._validate_sample(value)
        log_unnormalized = self.total_count * F.logsigmoid(-self.logits) + value * F.logsigmoid(
            self.logits
        )
        log_normalization = (
            -_gamma.lgamma(self.total_count + value)
            + _gamma.lgamma(1.0 + value)
            + _gamma.lgamma(self.total_count)
        )
        # total_count + value == 0 is the certain outcome 0 (lgamma(0) is inf): probability 1
        log_normalization = log_normalization.masked_fill(self.total_count + value == 0, 0.0)
        return log_unnormalized - log_normalization


# ================================================================ relaxed (concrete) families
class LogitRelaxedBernoulli(Distribution):
    """The logit of a RelaxedBernoulli draw: (logits + logistic noise) / temperature."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None) -> None:
        self._bernoulli = Bernoulli(probs=probs, logits=logits, validate_args=validate_args)
        self.temperature = temperature
        param = self._bernoulli.probs if probs is not None else self._bernoulli.logits
        self.arg_constraints = (
            {"probs": constraints.unit_interval}
            if probs is not None
            else {"logits": constraints.real}
        )
        super().__init__(param.shape, validate_args=False)

    @property
    def logits(self):
        return self._bernoulli.logits

    @property
    def probs(self):
        return self._bernoulli.probs

    def rsample(self, sample_shape=()):
        logits = self.logits
        u = _tiny_uniform(logits, self._extended_shape(sample_shape))
        return (logits + u.log() - (-u).log1p()) / self.temperature

    def log_prob(self, value):
        self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        diff = logits - value * self.temperature
        return _log(self.temperature) + diff - 2 * F.softplus(diff)


class _Relaxed(TransformedDistribution):
    """A relaxed distribution: its parameters are its base's."""

    has_rsample = True

    @property
    def temperature(self):
        return self.base_dist.temperature

    @property
    def logits(self):
        return self.base_dist.logits

    @property
    def probs(self):
        return self.base_dist.probs


class RelaxedBernoulli(_Relaxed):
    """A continuous relaxation of Bernoulli on (0, 1): sigmoid of LogitRelaxedBernoulli;
    lower temperatures push the draws towards 0 and 1."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None) -> None:
        base = LogitRelaxedBernoulli(temperature, probs, logits)
        super().__init__(base, SigmoidTransform(), validate_args=validate_args)


class ExpRelaxedCategorical(Distribution):
    """The log of a RelaxedOneHotCategorical draw: log-softmax((logits + Gumbel) / T)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None) -> None:
        self._categorical = Categorical(probs=probs, logits=logits, validate_args=validate_args)
        self.temperature = temperature
        batch = self._categorical.batch_shape
        events = self._categorical.param_shape[-1:]
        super().__init__(batch, events, validate_args=False)

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def probs(self):
        return self._categorical.probs

    def rsample(self, sample_shape=()):
        logits = self.logits
        u = _tiny_uniform(logits, self._extended_shape(sample_shape))
        scores = (logits - (-u.log()).log()) / self.temperature
        return scores - scores.logsumexp(-1, keepdim=True)

    def log_prob(self, value):
        self._validate_sample(value)
        k = self._categorical.param_shape[-1]
        temperature = self.temperature
        log_scale = math.lgamma(k) + (k - 1) * _log(temperature)
        logits, value = broadcast_all(self.logits, value)
        score = logits - value * temperature
        score = (score - score.logsumexp(-1, keepdim=True)).sum(-1)
        return score + log_scale


class RelaxedOneHotCategorical(_Relaxed):
    """A continuous relaxation of OneHotCategorical on the simplex (the Gumbel-softmax /
    concrete distribution)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None) -> None:
        base = ExpRelaxedCategorical(temperature, probs, logits)
        super().__init__(base, _ExpEvent(), validate_args=validate_args)


class _ExpEvent(ExpTransform):
    """exp over a vector event: its log-determinant sums over the event (torch's
    ExpTransform under an ExpRelaxedCategorical), and draws are kept inside (0, 1)."""

    domain_event_dim = 1
    codomain_event_dim = 1
    codomain = constraints.simplex

    def _call(self, x):
        eps = float(np.finfo(x._data.dtype).eps)
        return x.exp().clamp(eps, 1 - eps)

    def log_abs_det_jacobian(self, x, y):
        return x.sum(-1)


# ================================================================ more transformed families
def _kumaraswamy_moment(a: Tensor, b: Tensor, n: int) -> Tensor:
    """E[X^n] = b B(1 + n/a, b)."""
    arg = 1 + n / a
    return b * (_gamma.lgamma(arg) + _gamma.lgamma(b) - _gamma.lgamma(arg + b)).exp()


class Kumaraswamy(TransformedDistribution):
    """A Beta-like distribution on (0, 1) with a closed-form CDF: (1 - U^(1/b))^(1/a)."""

    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None) -> None:
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        base = Uniform(
            self.concentration0.new_zeros(tuple(self.concentration0.shape)),
            self.concentration0.new_ones(tuple(self.concentration0.shape)),
            validate_args=validate_args,
        )
        transforms = [
            PowerTransform(self.concentration0.reciprocal()),
            AffineTransform(1.0, -1.0),
            PowerTransform(self.concentration1.reciprocal()),
        ]
        super().__init__(base, transforms, validate_args=validate_args)

    @property
    def mean(self):
        return _kumaraswamy_moment(self.concentration1, self.concentration0, 1)

    @property
    def mode(self):
        a, b = self.concentration1, self.concentration0
        log_mode = b.reciprocal() * (-b).log1p() - (-b * a).log1p()
        return log_mode.masked_fill((b < 1) | (a < 1), math.nan).exp()

    @property
    def variance(self):
        return _kumaraswamy_moment(self.concentration1, self.concentration0, 2) - self.mean.pow(2)

    def entropy(self):
        a, b = self.concentration1, self.concentration0
        harmonic = _gamma.digamma(b + 1) + _EULER
        return (1 - b.reciprocal()) + (1 - a.reciprocal()) * harmonic - a.log() - b.log()


class InverseGamma(TransformedDistribution):
    """1 / X for X ~ Gamma(concentration, rate)."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None) -> None:
        base = Gamma(concentration, rate, validate_args=validate_args)
        super().__init__(base, PowerTransform(-1.0), validate_args=validate_args)

    @property
    def concentration(self):
        return self.base_dist.concentration

    @property
    def rate(self):
        return self.base_dist.rate

    @property
    def mean(self):
        return (self.rate / (self.concentration - 1)).masked_fill(self.concentration <= 1, math.inf)

    @property
    def mode(self):
        return self.rate / (self.concentration + 1)

    @property
    def variance(self):
        c = self.concentration
        var = self.rate.pow(2) / ((c - 1).pow(2) * (c - 2))
        return var.masked_fill(c <= 2, math.inf)

    def entropy(self):
        c = self.concentration
        return c + self.rate.log() + _gamma.lgamma(c) - (1 + c) * _gamma.digamma(c)


class FisherSnedecor(Distribution):
    """The F distribution: the ratio of two scaled chi-squared draws, df1 and df2."""

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1, df2, validate_args=None) -> None:
        self.df1, self.df2 = broadcast_all(df1, df2)
        super().__init__(self.df1.shape, validate_args=validate_args)

    @property
    def mean(self):
        df2 = self.df2.masked_fill(self.df2 <= 2, math.nan)
        return df2 / (df2 - 2)

    @property
    def mode(self):
        mode = (self.df1 - 2) / self.df1 * self.df2 / (self.df2 + 2)
        return mode.masked_fill(self.df1 <= 2, math.nan)

    @property
    def variance(self):
        df1, df2 = self.df1, self.df2.masked_fill(self.df2 <= 4, math.nan)
        return 2 * df2.pow(2) * (df1 + df2 - 2) / (df1 * (df2 - 2).pow(2) * (df2 - 4))

    def rsample(self, sample_shape=()):
        x1 = Gamma(self.df1 * 0.5, self.df1, validate_args=False).rsample(sample_shape)
        x2 = Gamma(self.df2 * 0.5, self.df2, validate_args=False).rsample(sample_shape)
        tiny = float(np.finfo(x2._data.dtype).tiny)
        return clamp_value(x1 / clamp_value(x2, min=tiny), min=tiny)

    def log_prob(self, value):
        self._validate_sample(value)
        ct1, ct2 = self.df1 * 0.5, self.df2 * 0.5
        ct3 = self.df1 / self.df2
        t1 = _gamma.lgamma(ct1 + ct2) - _gamma.lgamma(ct1) - _gamma.lgamma(ct2)
        t2 = ct1 * ct3.log() + (ct1 - 1) * value.log()
        t3 = (ct1 + ct2) * (ct3 * value).log1p()
        return t1 + t2 - t3


class LogisticNormal(TransformedDistribution):
    """A distribution on the simplex: a Normal vector of K - 1 coordinates, stick-broken
    into K probabilities."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None) -> None:
        from .univariate import Normal  # noqa: PLC0415

        base = Normal(loc, scale, validate_args=validate_args)
        if not tuple(base.batch_shape):  # one coordinate: a 2-point simplex
            base = Normal(base.loc.reshape(1), base.scale.reshape(1), validate_args=validate_args)
        super().__init__(base, StickBreakingTransform(), validate_args=validate_args)

    @property
    def loc(self):
        return self.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.scale
