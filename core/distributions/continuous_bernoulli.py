"""ContinuousBernoulli (Loaiza-Ganem and Cunningham, 2019): the density on [0, 1]
proportional to p^x (1 - p)^(1 - x), the likelihood a VAE over pixel intensities needs (a
Bernoulli likelihood on values in [0, 1] is not normalised).

Its normalising constant C(p) = 2 atanh(1 - 2p) / (1 - 2p), its mean and its variance are
0/0 at p = 1/2, so inside `lims` around 1/2 they come from their Taylor expansions in
(p - 1/2)^2, as in torch; outside, from the closed forms with p clamped to the edge of the
unstable region (the other branch of a `where` must stay finite for the gradient)."""

from __future__ import annotations

import math

import numpy as np

from ..nn import functional as F
from ..ops.elementwise import where
from ..tensor import Tensor
from .distribution import ExponentialFamily, _noise, broadcast_all, constraints
from .univariate import _probs_or_logits, binary_parameter
from .utils import clamp_probs

__all__ = ["ContinuousBernoulli"]


class ContinuousBernoulli(ExponentialFamily):
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        _probs_or_logits(probs, logits)
        self._lims = lims
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            self.arg_constraints = {"probs": constraints.unit_interval}
            # validated as given, then kept off 0 and 1 (where log p and log(1 - p) end)
            super().__init__(self.probs.shape, validate_args=validate_args)
            self.probs = clamp_probs(self.probs)
        else:
            (self.logits,) = broadcast_all(logits)
            self.arg_constraints = {"logits": constraints.real}
            super().__init__(self.logits.shape, validate_args=validate_args)

    def __getattr__(self, name: str):
        return binary_parameter(self, name)

    # ------------------------------------------------------------ the unstable region
    def _outside(self) -> Tensor:
        return (self.probs <= self._lims[0]) | (self.probs >= self._lims[1])

    def _cut_probs(self) -> Tensor:
        """probs, or the lower edge of the unstable region inside it."""
        return where(self._outside(), self.probs, self._lims[0] * self.probs.new_ones(()))

    def _cont_bern_log_norm(self) -> Tensor:
        """log C(p), with C(p) = log((1 - p) / p) / (1 - 2p) written as |log1p(-p) - log p| /
        |1 - 2p| on the side of 1/2 that p is on."""
        cut = self._cut_probs()
        below = where(cut <= 0.5, cut, cut.new_zeros(()))
        above = where(cut >= 0.5, cut, cut.new_ones(()))
        closed = (cut.neg().log1p() - cut.log()).abs().log() - where(
            cut <= 0.5, (-2.0 * below).log1p(), (2.0 * above - 1.0).log()
        )
        x = (self.probs - 0.5).pow(2)
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return where(self._outside(), closed, taylor)

    # ------------------------------------------------------------ moments
    @property
    def mean(self) -> Tensor:
        cut = self._cut_probs()
        closed = cut / (2.0 * cut - 1.0) + 1.0 / (cut.neg().log1p() - cut.log())
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x.pow(2)) * x
        return where(self._outside(), closed, taylor)

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    @property
    def variance(self) -> Tensor:
        cut = self._cut_probs()
        closed = cut * (cut - 1.0) / (1.0 - 2.0 * cut).pow(2) + 1.0 / (
            cut.neg().log1p() - cut.log()
        ).pow(2)
        x = (self.probs - 0.5).pow(2)
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return where(self._outside(), closed, taylor)

    # ------------------------------------------------------------ draws and densities
    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = float(np.finfo(self.probs._data.dtype).eps)
        u = _noise(self.probs, shape, "uniform").clamp(eps, 1 - eps)
        return self.icdf(u)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return (
            -F.binary_cross_entropy_with_logits(logits, value, reduction="none")
            + self._cont_bern_log_norm()
        )

    def cdf(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        cut = self._cut_probs()
        closed = (cut.pow(value) * (1.0 - cut).pow(1.0 - value) + cut - 1.0) / (2.0 * cut - 1.0)
        unbounded = where(self._outside(), closed, value)
        zero = 0.0 * unbounded  # (keeps the gradient's shape where the value is clipped)
        return where(value <= 0.0, zero, where(value >= 1.0, zero + 1.0, unbounded))

    def icdf(self, value: Tensor) -> Tensor:
        cut = self._cut_probs()
        closed = ((value * (2.0 * cut - 1.0) - cut).log1p() - cut.neg().log1p()) / (
            cut.log() - cut.neg().log1p()
        )
        return where(self._outside(), closed, value)

    def entropy(self) -> Tensor:
        log_p0, log_p1 = self.probs.neg().log1p(), self.probs.log()
        return self.mean * (log_p0 - log_p1) - self._cont_bern_log_norm() - log_p0

    @property
    def param_shape(self):
        return self.batch_shape

    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple:
        return (self.logits,)

    def _log_normalizer(self, x) -> Tensor:
        """log C as a function of the logits, with the same unstable region (in logits,
        lims - 1/2) and its Taylor expansion there, as torch."""
        outside = (x <= self._lims[0] - 0.5) | (x >= self._lims[1] - 0.5)
        cut = where(outside, x, (self._lims[0] - 0.5) * x.new_ones(()))
        closed = (cut.exp() - 1).abs().log() - cut.abs().log()
        taylor = 0.5 * x + x.pow(2) / 24.0 - x.pow(4) / 2880.0
        return where(outside, closed, taylor)
