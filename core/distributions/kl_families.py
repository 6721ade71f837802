"""KL divergences between different families, as torch registers them: closed forms where
q's support holds p's, and infinity where p puts mass outside it (a Normal from a Gamma, an
Exponential from a Uniform); and the low-rank normals', which keep to r x r solves where q
is low-rank. Imported by the package for its registrations."""

from __future__ import annotations

import math

import numpy as np

from ..ops import gamma as _gamma
from ..special import erf, xlogy
from ..tensor import Tensor
from .continuous_bernoulli import ContinuousBernoulli
from .derived import Binomial
from .kl import _EULER, register_kl
from .mixture import LowRankMultivariateNormal
from .multivariate import MultivariateNormal, _batch_mahalanobis
from .transformed import Gumbel, Pareto
from .univariate import Bernoulli, Beta, Exponential, Gamma, Laplace, Normal, Poisson, Uniform

_INF = math.inf


def _infinite_like(t: Tensor) -> Tensor:
    return t.detach().new_full(tuple(t.shape), _INF)


def _x_log_x(t: Tensor) -> Tensor:
    return xlogy(t, t)


# ---------------------------------------------------------------- p's support outside q's
def _infinite_for(type_p: type, parameter: str, qs) -> None:
    for type_q in qs:
        register_kl(type_p, type_q)(lambda p, q, _name=parameter: _infinite_like(getattr(p, _name)))


_infinite_for(Beta, "concentration1", (Pareto,))
_infinite_for(ContinuousBernoulli, "probs", (Pareto,))
_infinite_for(Exponential, "rate", (Beta, ContinuousBernoulli, Pareto, Uniform))
_infinite_for(Gamma, "concentration", (Beta, ContinuousBernoulli, Pareto, Uniform))
_infinite_for(Gumbel, "loc", (Beta, ContinuousBernoulli, Exponential, Gamma, Pareto, Uniform))
_infinite_for(Laplace, "loc", (Beta, ContinuousBernoulli, Exponential, Gamma, Pareto, Uniform))
_infinite_for(Normal, "loc", (Beta, ContinuousBernoulli, Exponential, Gamma, Pareto, Uniform))
_infinite_for(Pareto, "scale", (Beta, ContinuousBernoulli, Uniform))
_infinite_for(Poisson, "rate", (Bernoulli, Binomial))


# ---------------------------------------------------------------- p = Bernoulli
@register_kl(Bernoulli, Poisson)
def _kl_bernoulli_poisson(p: Bernoulli, q: Poisson) -> Tensor:
    return -p.entropy() - (p.probs * q.rate.log() - q.rate)


# ---------------------------------------------------------------- p = Beta
def _beta_mean(p: Beta) -> Tensor:
    return p.concentration1 / (p.concentration1 + p.concentration0)


@register_kl(Beta, ContinuousBernoulli)
def _kl_beta_continuous_bernoulli(p: Beta, q: ContinuousBernoulli) -> Tensor:
    return -p.entropy() - _beta_mean(p) * q.logits - (-q.probs).log1p() - q._cont_bern_log_norm()


@register_kl(Beta, Exponential)
def _kl_beta_exponential(p: Beta, q: Exponential) -> Tensor:
    return -p.entropy() - q.rate.log() + q.rate * _beta_mean(p)


@register_kl(Beta, Gamma)
def _kl_beta_gamma(p: Beta, q: Gamma) -> Tensor:
    mean_log = _gamma.digamma(p.concentration1) - _gamma.digamma(
        p.concentration1 + p.concentration0
    )
    t2 = _gamma.lgamma(q.concentration) - q.concentration * q.rate.log()
    return -p.entropy() + t2 - (q.concentration - 1) * mean_log + q.rate * _beta_mean(p)


@register_kl(Beta, Normal)
def _kl_beta_normal(p: Beta, q: Normal) -> Tensor:
    mean = _beta_mean(p)
    second_moment = mean * (1 - mean) / (p.concentration1 + p.concentration0 + 1) + mean.pow(2)
    var_q = q.scale.pow(2)
    t2 = 0.5 * (var_q * 2 * math.pi).log()
    return -p.entropy() + t2 + (0.5 * second_moment - q.loc * mean + 0.5 * q.loc.pow(2)) / var_q


@register_kl(Beta, Uniform)
def _kl_beta_uniform(p: Beta, q: Uniform) -> Tensor:
    result = -p.entropy() + (q.high - q.low).log()
    return result.masked_fill((q.low > 0) | (q.high < 1), _INF)


# ---------------------------------------------------------------- p = ContinuousBernoulli
@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_cb_cb(p: ContinuousBernoulli, q: ContinuousBernoulli) -> Tensor:
    t1 = p.mean * (p.logits - q.logits)
    t2 = p._cont_bern_log_norm() + (-p.probs).log1p()
    t3 = -q._cont_bern_log_norm() - (-q.probs).log1p()
    return t1 + t2 + t3


@register_kl(ContinuousBernoulli, Exponential)
def _kl_cb_exponential(p: ContinuousBernoulli, q: Exponential) -> Tensor:
    return -p.entropy() - q.rate.log() + q.rate * p.mean


@register_kl(ContinuousBernoulli, Normal)
def _kl_cb_normal(p: ContinuousBernoulli, q: Normal) -> Tensor:
    t2 = 0.5 * (math.log(2.0 * math.pi) + (q.loc / q.scale).pow(2)) + q.scale.log()
    t3 = (p.variance + p.mean.pow(2) - 2.0 * q.loc * p.mean) / (2.0 * q.scale.pow(2))
    return -p.entropy() + t2 + t3


@register_kl(ContinuousBernoulli, Uniform)
def _kl_cb_uniform(p: ContinuousBernoulli, q: Uniform) -> Tensor:
    result = -p.entropy() + (q.high - q.low).log()
    return result.masked_fill((q.low > 0) | (q.high < 1), _INF)


# ---------------------------------------------------------------- p = Exponential
@register_kl(Exponential, Gumbel)
def _kl_exponential_gumbel(p: Exponential, q: Gumbel) -> Tensor:
    product = p.rate * q.scale
    loc_ratio = q.loc / q.scale
    t1 = product.log() - 1
    t2 = loc_ratio.exp() * product / (product + 1)
    return t1 - loc_ratio + t2 + product.reciprocal()


@register_kl(Exponential, Normal)
def _kl_exponential_normal(p: Exponential, q: Normal) -> Tensor:
    var_q = q.scale.pow(2)
    rate_sq = p.rate.pow(2)
    t1 = 0.5 * (rate_sq * var_q * 2 * math.pi).log()
    return t1 - 1 + (rate_sq.reciprocal() - q.loc / p.rate + 0.5 * q.loc.pow(2)) / var_q


# ---------------------------------------------------------------- p = Gamma
@register_kl(Gamma, Exponential)
def _kl_gamma_exponential(p: Gamma, q: Exponential) -> Tensor:
    return -p.entropy() - q.rate.log() + q.rate * p.concentration / p.rate


@register_kl(Gamma, Gumbel)
def _kl_gamma_gumbel(p: Gamma, q: Gumbel) -> Tensor:
    a = p.concentration
    product = p.rate * q.scale
    loc_ratio = q.loc / q.scale
    t1 = (a - 1) * _gamma.digamma(a) - _gamma.lgamma(a) - a
    t2 = product.log() + a / product
    t3 = loc_ratio.exp() * (1 + product.reciprocal()).pow(-a) - loc_ratio
    return t1 + t2 + t3


@register_kl(Gamma, Normal)
def _kl_gamma_normal(p: Gamma, q: Normal) -> Tensor:
    a = p.concentration
    var_q = q.scale.pow(2)
    rate_sq = p.rate.pow(2)
    t1 = 0.5 * (rate_sq * var_q * 2 * math.pi).log() - a - _gamma.lgamma(a)
    moments = 0.5 * (a.pow(2) + a) / rate_sq - q.loc * a / p.rate + 0.5 * q.loc.pow(2)
    return t1 + (a - 1) * _gamma.digamma(a) + moments / var_q


# ---------------------------------------------------------------- p = Gumbel, Laplace
@register_kl(Gumbel, Normal)
def _kl_gumbel_normal(p: Gumbel, q: Normal) -> Tensor:
    ratio = p.scale / q.scale
    t1 = (ratio / math.sqrt(2 * math.pi)).log()
    t2 = (math.pi * ratio * 0.5).pow(2) / 3
    t3 = ((p.loc + p.scale * _EULER - q.loc) / q.scale).pow(2) * 0.5
    return -t1 + t2 + t3 - (_EULER + 1)


@register_kl(Laplace, Normal)
def _kl_laplace_normal(p: Laplace, q: Normal) -> Tensor:
    var_q = q.scale.pow(2)
    ratio = p.scale.pow(2) / var_q
    t1 = 0.5 * (2 * ratio / math.pi).log()
    moments = 0.5 * p.loc.pow(2) - p.loc * q.loc + 0.5 * q.loc.pow(2)
    return -t1 + ratio + moments / var_q - 1


# ---------------------------------------------------------------- p = Normal
@register_kl(Normal, Gumbel)
def _kl_normal_gumbel(p: Normal, q: Gumbel) -> Tensor:
    mean_ratio = p.loc / q.scale
    var_ratio = (p.scale / q.scale).pow(2)
    loc_ratio = q.loc / q.scale
    t3 = (-mean_ratio + 0.5 * var_ratio + loc_ratio).exp()
    return -0.5 * var_ratio.log() + mean_ratio - loc_ratio + t3 - 0.5 * (1 + math.log(2 * math.pi))


@register_kl(Normal, Laplace)
def _kl_normal_laplace(p: Normal, q: Laplace) -> Tensor:
    diff = p.loc - q.loc
    standardized = diff / p.scale
    t2 = math.sqrt(2 / math.pi) * p.scale * (-0.5 * standardized.pow(2)).exp()
    t3 = diff * erf(math.sqrt(0.5) * standardized)
    return -(p.scale / q.scale).log() + (t2 + t3) / q.scale - 0.5 * (1 + math.log(0.5 * math.pi))


# ---------------------------------------------------------------- p = Pareto
@register_kl(Pareto, Exponential)
def _kl_pareto_exponential(p: Pareto, q: Exponential) -> Tensor:
    product = p.scale * q.rate
    result = (
        (p.alpha / product).log() - p.alpha.reciprocal() + p.alpha * product / (p.alpha - 1) - 1
    )
    return result.masked_fill(p.alpha <= 1, _INF)


@register_kl(Pareto, Gamma)
def _kl_pareto_gamma(p: Pareto, q: Gamma) -> Tensor:
    mean_log = p.scale.log() + p.alpha.reciprocal()
    t2 = _gamma.lgamma(q.concentration) - q.concentration * q.rate.log()
    t4 = q.rate * p.alpha * p.scale / (p.alpha - 1)
    result = p.alpha.log() - mean_log + t2 + (1 - q.concentration) * mean_log + t4 - 1
    return result.masked_fill(p.alpha <= 1, _INF)


@register_kl(Pareto, Normal)
def _kl_pareto_normal(p: Pareto, q: Normal) -> Tensor:
    var_q = 2 * q.scale.pow(2)
    spread = p.scale / (p.alpha - 1)
    t1 = (math.sqrt(2 * math.pi) * q.scale * p.alpha / p.scale).log()
    t3 = p.alpha * spread.pow(2) / (p.alpha - 2)
    t4 = (p.alpha * spread - q.loc).pow(2)
    result = t1 - p.alpha.reciprocal() + (t3 + t4) / var_q - 1
    return result.masked_fill(p.alpha <= 2, _INF)


# ---------------------------------------------------------------- p = Uniform
@register_kl(Uniform, Beta)
def _kl_uniform_beta(p: Uniform, q: Beta) -> Tensor:
    width = p.high - p.low
    t2 = (q.concentration1 - 1) * (_x_log_x(p.high) - _x_log_x(p.low) - width) / width
    t3 = (q.concentration0 - 1) * (_x_log_x(1 - p.high) - _x_log_x(1 - p.low) + width) / width
    t4 = q._log_normalizer(q.concentration1, q.concentration0)  # log B
    result = t3 + t4 - width.log() - t2
    return result.masked_fill((p.high > 1) | (p.low < 0), _INF)


@register_kl(Uniform, ContinuousBernoulli)
def _kl_uniform_cb(p: Uniform, q: ContinuousBernoulli) -> Tensor:
    result = -p.entropy() - p.mean * q.logits - (-q.probs).log1p() - q._cont_bern_log_norm()
    return result.masked_fill((p.high >= 1) | (p.low <= 0), _INF)


@register_kl(Uniform, Exponential)
def _kl_uniform_exponential(p: Uniform, q: Exponential) -> Tensor:
    result = q.rate * (p.high + p.low) / 2 - ((p.high - p.low) * q.rate).log()
    return result.masked_fill(p.low < 0, _INF)


@register_kl(Uniform, Gamma)
def _kl_uniform_gamma(p: Uniform, q: Gamma) -> Tensor:
    width = p.high - p.low
    t2 = _gamma.lgamma(q.concentration) - q.concentration * q.rate.log()
    t3 = (1 - q.concentration) * (_x_log_x(p.high) - _x_log_x(p.low) - width) / width
    t4 = q.rate * (p.high + p.low) / 2
    result = -width.log() + t2 + t3 + t4
    return result.masked_fill(p.low < 0, _INF)


@register_kl(Uniform, Gumbel)
def _kl_uniform_gumbel(p: Uniform, q: Gumbel) -> Tensor:
    ratio = q.scale / (p.high - p.low)
    high, low = (p.high - q.loc) / q.scale, (p.low - q.loc) / q.scale
    t1 = ratio.log() + 0.5 * (high + low)
    return t1 - ratio * ((-high).exp() - (-low).exp())


@register_kl(Uniform, Normal)
def _kl_uniform_normal(p: Uniform, q: Normal) -> Tensor:
    width = p.high - p.low
    t1 = (math.sqrt(math.pi * 2) * q.scale / width).log()
    t2 = width.pow(2) / 12
    t3 = ((p.high + p.low - 2 * q.loc) / 2).pow(2)
    return t1 + 0.5 * (t2 + t3) / q.scale.pow(2)


@register_kl(Uniform, Pareto)
def _kl_uniform_pareto(p: Uniform, q: Pareto) -> Tensor:
    width = p.high - p.low
    t1 = (q.alpha * q.scale.pow(q.alpha) * width).log()
    t2 = (_x_log_x(p.high) - _x_log_x(p.low) - width) / width
    result = t2 * (q.alpha + 1) - t1
    return result.masked_fill(p.low < q.scale, _INF)


# ---------------------------------------------------------------- low-rank normals
def _same_events(p, q) -> None:
    if tuple(p.event_shape) != tuple(q.event_shape):
        raise ValueError(
            "KL-divergence between two (Low Rank) Multivariate Normals with different event "
            "shapes cannot be computed"
        )


def _trace_xxt(x: Tensor) -> Tensor:
    """tr(X X^T) = the squared Frobenius norm of each matrix of the batch."""
    return x.pow(2).sum((-2, -1))


def _gaussian_kl(log_det_q, log_det_p, trace, mahalanobis, n: int) -> Tensor:
    return 0.5 * (log_det_q - log_det_p + trace + mahalanobis - n)


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
def _kl_lowrank_lowrank(p: LowRankMultivariateNormal, q: LowRankMultivariateNormal) -> Tensor:
    """tr(Sq^-1 Sp) with Sq^-1 = Dq^-1 - A^T A and Sp = Wp Wp^T + Dp, term by term."""
    _same_events(p, q)
    a = q._woodbury_factor()
    trace = (
        (p.cov_diag / q.cov_diag).sum(-1)
        + _trace_xxt(p.cov_factor * q.cov_diag.rsqrt().unsqueeze(-1))
        - _trace_xxt(a * p.cov_diag.sqrt().unsqueeze(-2))
        - _trace_xxt(a @ p.cov_factor)
    )
    mahalanobis = q._mahalanobis(q.loc - p.loc)
    return _gaussian_kl(q._log_det(), p._log_det(), trace, mahalanobis, p.event_shape[0])


@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_mvn_lowrank(p: MultivariateNormal, q: LowRankMultivariateNormal) -> Tensor:
    _same_events(p, q)
    low = p._unbroadcasted_scale_tril
    a = q._woodbury_factor()
    trace = _trace_xxt(low * q.cov_diag.rsqrt().unsqueeze(-1)) - _trace_xxt(a @ low)
    log_det_p = 2 * low.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    mahalanobis = q._mahalanobis(q.loc - p.loc)
    return _gaussian_kl(q._log_det(), log_det_p, trace, mahalanobis, p.event_shape[0])


@register_kl(LowRankMultivariateNormal, MultivariateNormal)
def _kl_lowrank_mvn(p: LowRankMultivariateNormal, q: MultivariateNormal) -> Tensor:
    from .. import linalg  # noqa: PLC0415

    _same_events(p, q)
    n = p.event_shape[0]
    q_low = q._unbroadcasted_scale_tril
    batch = tuple(np.broadcast_shapes(tuple(q_low.shape[:-2]), tuple(p.cov_factor.shape[:-2])))
    q_low = q_low.expand(*batch, n, n)
    factor = p.cov_factor.expand(*batch, n, p.cov_factor.shape[-1])
    diag = p.cov_diag.sqrt().diag_embed().expand(*batch, n, n)
    trace = _trace_xxt(linalg.solve_triangular(q_low, factor, upper=False)) + _trace_xxt(
        linalg.solve_triangular(q_low, diag, upper=False)
    )
    log_det_q = 2 * q._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    mahalanobis = _batch_mahalanobis(q._unbroadcasted_scale_tril, q.loc - p.loc)
    return _gaussian_kl(log_det_q, p._log_det(), trace, mahalanobis, n)
