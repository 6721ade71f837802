"""MixtureSameFamily (a categorical choice among K components of one family), the von Mises
distribution on the circle, and the low-rank-plus-diagonal multivariate normal.

MixtureSameFamily's log_prob is logsumexp over components of (log weight + component
log_prob); its moments follow the law of total variance. VonMises samples with Best and
Fisher's rejection scheme and normalises with log I0 (through the scaled i0e, so large
concentrations do not overflow). LowRankMultivariateNormal never forms its n x n covariance
W W^T + D: log_prob and entropy use the r x r capacitance matrix I + W^T D^-1 W (Woodbury and
the matrix determinant lemma).
"""

from __future__ import annotations

import math

import numpy as np

from .. import linalg
from ..backend import xp_of
from ..ops import special_functions as _special
from ..ops.elementwise import where
from ..tensor import Tensor
from .distribution import Distribution, _noise, broadcast_all, constraints
from .univariate import Categorical

__all__ = ["LowRankMultivariateNormal", "MixtureSameFamily", "VonMises"]


class MixtureSameFamily(Distribution):
    """Pick a component with `mixture_distribution` (a Categorical over the rightmost batch
    dimension of `component_distribution`), then draw from it."""

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(
        self, mixture_distribution: Categorical, component_distribution: Distribution,
        validate_args=None,
    ) -> None:  # fmt: skip
        if not isinstance(mixture_distribution, Categorical):
            raise ValueError(
                "The Mixture distribution needs to be an instance of torch.distributions.Categorical"
            )
        if not isinstance(component_distribution, Distribution):
            raise ValueError(
                "The Component distribution need to be an instance of torch.distributions.Distribution"
            )
        self._mixture, self._component = mixture_distribution, component_distribution
        batch = tuple(component_distribution.batch_shape)
        k = batch[-1] if batch else 0
        if mixture_distribution._num_events != k:
            raise ValueError(
                f"`mixture_distribution component` ({mixture_distribution._num_events}) does not "
                f"equal `component_distribution.batch_shape[-1]` ({k})"
            )
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(batch[:-1], component_distribution.event_shape, validate_args)

    @property
    def mixture_distribution(self) -> Categorical:
        return self._mixture

    @property
    def component_distribution(self) -> Distribution:
        return self._component

    @property
    def support(self):
        return self._component.support

    def _pad_weights(self, w: Tensor) -> Tensor:
        """(..., K) -> (..., K, 1, ..., 1): one 1 per event dimension."""
        return w.reshape(*w.shape, *([1] * self._event_ndims))

    def _pad_value(self, x: Tensor) -> Tensor:
        """x (..., event) -> (..., 1, event): against every component."""
        return x.unsqueeze(-1 - self._event_ndims)

    @property
    def mean(self) -> Tensor:
        probs = self._pad_weights(self._mixture.probs)
        return (probs * self._component.mean).sum(-1 - self._event_ndims)

    @property
    def variance(self) -> Tensor:
        probs = self._pad_weights(self._mixture.probs)
        axis = -1 - self._event_ndims
        within = (probs * self._component.variance).sum(axis)
        between = (probs * (self._component.mean - self._pad_value(self.mean)).pow(2)).sum(axis)
        return within + between

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        per_component = self._component.log_prob(self._pad_value(value))  # (..., K)
        log_weights = self._mixture.logits.log_softmax(-1)
        return (per_component + log_weights).logsumexp(-1)

    def cdf(self, value: Tensor) -> Tensor:
        per_component = self._component.cdf(self._pad_value(value))
        return (per_component * self._mixture.probs).sum(-1)

    def sample(self, sample_shape=()) -> Tensor:
        chosen = self._mixture.sample(sample_shape)  # (sample, batch)
        draws = self._component.sample(sample_shape)  # (sample, batch, K, event)
        index = chosen.reshape(*chosen.shape, 1, *([1] * self._event_ndims))
        index = index.expand(*chosen.shape, 1, *self._event_shape)
        return draws.gather(-1 - self._event_ndims, index).squeeze(-1 - self._event_ndims)

    def __repr__(self) -> str:
        return f"MixtureSameFamily(\n  {self._mixture!r},\n  {self._component!r})"


class VonMises(Distribution):
    """A distribution of angles: density proportional to exp(concentration cos(x - loc))."""

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None) -> None:
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(self.loc.shape, validate_args=validate_args)
        # the rejection sampler's proposal (Best and Fisher 1979), torch's choice of tau
        tau = 1 + (1 + 4 * self.concentration.detach().pow(2)).sqrt()
        rho = (tau - (2 * tau).sqrt()) / (2 * self.concentration.detach())
        self._proposal_r = (1 + rho.pow(2)) / (2 * rho)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        kappa = self.concentration
        return 1 - _special.i1e(kappa) / _special.i0e(kappa)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        kappa = self.concentration
        log_i0 = _special.i0e(kappa).log() + kappa
        return kappa * (value - self.loc).cos() - math.log(2 * math.pi) - log_i0

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        loc = self.loc.detach().expand(*shape)
        kappa = self.concentration.detach().expand(*shape)
        r = self._proposal_r.expand(*shape)
        x = loc.new_zeros(shape)
        done = x.new_zeros(shape).bool()
        while not bool(done.all()):
            u1, u2, u3 = (_noise(loc, shape, "uniform") for _ in range(3))
            z = (math.pi * u1).cos()
            f = (1 + r * z) / (r + z)
            c = kappa * (r - f)
            accept = ((c * (2 - c) - u2) > 0) | ((c / u2).log() + 1 - c >= 0)
            accept = accept & ~done
            x = where(accept, (u3 - 0.5).sign() * f.clamp(-1, 1).acos(), x)
            done = done | accept
        return (x + math.pi + loc).remainder(2 * math.pi) - math.pi


class LowRankMultivariateNormal(Distribution):
    """N(loc, W W^T + diag(D)) with W = cov_factor (n x r) and D = cov_diag (n)."""

    arg_constraints = {
        "loc": constraints.real_vector,
        "cov_factor": constraints.real,
        "cov_diag": constraints.positive,
    }
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: Tensor, cov_factor: Tensor, cov_diag: Tensor, validate_args=None):
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        n = loc.shape[-1]
        if cov_factor.ndim < 2:
            raise ValueError(
                "cov_factor must be at least two-dimensional, with optional leading batch dimensions"
            )
        if tuple(cov_factor.shape[-2:-1]) != (n,):
            raise ValueError(f"cov_factor must be a batch of matrices with shape {n} x m")
        if tuple(cov_diag.shape[-1:]) != (n,):
            raise ValueError(f"cov_diag must be a batch of vectors with shape {(n,)}")
        r = cov_factor.shape[-1]
        batch = _broadcast(loc.shape[:-1], cov_factor.shape[:-2], cov_diag.shape[:-1])
        self.loc = loc.expand(*batch, n)
        self.cov_factor = cov_factor.expand(*batch, n, r)
        self.cov_diag = cov_diag.expand(*batch, n)
        # capacitance I + W^T D^-1 W and its Cholesky factor: all solves are r x r
        wt_dinv = self.cov_factor.mT / self.cov_diag.unsqueeze(-2)
        capacitance = wt_dinv @ self.cov_factor + _identity(r, self.loc)
        self._capacitance_tril = linalg.cholesky(capacitance)
        super().__init__(batch, (n,), validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return self.cov_factor.pow(2).sum(-1) + self.cov_diag

    @property
    def covariance_matrix(self) -> Tensor:
        return self.cov_factor @ self.cov_factor.mT + self.cov_diag.diag_embed()

    @property
    def scale_tril(self) -> Tensor:
        return linalg.cholesky(self.covariance_matrix)

    @property
    def precision_matrix(self) -> Tensor:
        return linalg.inv(self.covariance_matrix)

    def _log_det(self) -> Tensor:
        """log det(W W^T + D) = 2 log det(L_c) + sum log D (the determinant lemma)."""
        diag = self._capacitance_tril.diagonal(dim1=-2, dim2=-1)
        return 2 * diag.log().sum(-1) + self.cov_diag.log().sum(-1)

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        r = self.cov_factor.shape[-1]
        eps_w = _noise(self.loc, shape[:-1] + (r,))
        eps_d = _noise(self.loc, shape)
        return (
            self.loc
            + (self.cov_factor @ eps_w.unsqueeze(-1)).squeeze(-1)
            + self.cov_diag.sqrt() * eps_d
        )

    def _mahalanobis(self, diff: Tensor) -> Tensor:
        """diff^T (W W^T + D)^-1 diff by Woodbury: |diff|_D^2 - |L_c^-1 W^T D^-1 diff|^2."""
        scaled = diff / self.cov_diag
        plain = (diff * scaled).sum(-1)
        projected = self.cov_factor.mT @ scaled.unsqueeze(-1)
        batch = tuple(projected.shape[:-2])
        tril = self._capacitance_tril.expand(*batch, *self._capacitance_tril.shape[-2:])
        solved = linalg.solve_triangular(tril, projected, upper=False).squeeze(-1)
        return plain - solved.pow(2).sum(-1)

    def _woodbury_factor(self) -> Tensor:
        """A = L_c^-1 W^T D^-1 (r x n), so that (W W^T + D)^-1 = D^-1 - A^T A."""
        wt_dinv = self.cov_factor.mT / self.cov_diag.unsqueeze(-2)
        return linalg.solve_triangular(self._capacitance_tril, wt_dinv, upper=False)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        n = self._event_shape[0]
        mahalanobis = self._mahalanobis(value - self.loc)
        return -0.5 * (n * math.log(2 * math.pi) + self._log_det() + mahalanobis)

    def entropy(self) -> Tensor:
        n = self._event_shape[0]
        return 0.5 * (n * (1.0 + math.log(2 * math.pi)) + self._log_det())


def _broadcast(*shapes) -> tuple:
    return np.broadcast_shapes(*(tuple(s) for s in shapes))


def _identity(r: int, like: Tensor) -> Tensor:
    return Tensor._make(xp_of(like._data).eye(r, dtype=like._data.dtype))
