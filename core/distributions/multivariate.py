"""Distributions over vectors: MultivariateNormal (by covariance, precision or its Cholesky
factor), Dirichlet, and Independent, which turns batch dimensions of another distribution
into event dimensions."""

from __future__ import annotations

import math

import numpy as np

from .. import linalg
from ..factory import eye
from ..ops import gamma as _gamma
from ..special import xlogy
from ..tensor import Tensor
from .distribution import Distribution, ExponentialFamily, _noise, clamp_value, constraints
from .univariate import Gamma


def _batch_mahalanobis(scale_tril: Tensor, diff: Tensor) -> Tensor:
    """|L^-1 diff|^2 over the event dimension, batches broadcast."""
    batch = np.broadcast_shapes(tuple(scale_tril.shape[:-2]), tuple(diff.shape[:-1]))
    n = diff.shape[-1]
    tril = scale_tril.expand(*batch, n, n)
    y = linalg.solve_triangular(tril, diff.expand(*batch, n).unsqueeze(-1), upper=False)
    return y.squeeze(-1).pow(2).sum(-1)


class MultivariateNormal(Distribution):
    arg_constraints = {
        "loc": constraints.real_vector,
    }
    support = constraints.real_vector
    has_rsample = True

    def __init__(
        self,
        loc: Tensor,
        covariance_matrix: Tensor | None = None,
        precision_matrix: Tensor | None = None,
        scale_tril: Tensor | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = [m is not None for m in (covariance_matrix, precision_matrix, scale_tril)]
        if sum(given) != 1:
            raise ValueError(
                "Exactly one of covariance_matrix or precision_matrix or scale_tril may be "
                "specified."
            )
        name, matrix = next(
            (n, m)
            for n, m in (
                ("scale_tril", scale_tril), ("covariance_matrix", covariance_matrix),
                ("precision_matrix", precision_matrix),
            )
            if m is not None
        )  # fmt: skip
        self._given = name
        if matrix.ndim < 2:
            raise ValueError(
                f"{name} matrix must be at least two-dimensional, with optional leading batch "
                "dimensions"
            )
        batch = np.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1]))
        n = loc.shape[-1]
        self.loc = loc.expand(*batch, n)
        if scale_tril is not None:
            self.scale_tril = scale_tril.expand(*batch, n, n)
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self.covariance_matrix = covariance_matrix.expand(*batch, n, n)
            self._unbroadcasted_scale_tril = linalg.cholesky(covariance_matrix)
        else:
            self.precision_matrix = precision_matrix.expand(*batch, n, n)
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(precision_matrix)
        super().__init__(batch, (n,), validate_args=validate_args)

    def __getattr__(self, name: str):
        tril = self.__dict__.get("_unbroadcasted_scale_tril")
        if tril is None:
            raise AttributeError(name)
        shape = tuple(self._batch_shape) + tuple(self._event_shape) * 2
        if name == "scale_tril":
            return tril.expand(*shape)
        if name == "covariance_matrix":
            return (tril @ tril.mT).expand(*shape)
        if name == "precision_matrix":
            return linalg.inv(tril @ tril.mT).expand(*shape)
        raise AttributeError(name)

    def __repr__(self) -> str:
        matrix = self.__dict__[self._given]
        return f"MultivariateNormal(loc: {self.loc.shape}, {self._given}: {matrix.shape})"

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        tril = self._unbroadcasted_scale_tril
        return tril.pow(2).sum(-1).expand(*self._batch_shape, *self._event_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        eps = _noise(self.loc, self._extended_shape(sample_shape))
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        diff = value - self.loc
        m = _batch_mahalanobis(self._unbroadcasted_scale_tril, diff)
        half_log_det = self._unbroadcasted_scale_tril.diagonal(0, -2, -1).log().sum(-1)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + m) - half_log_det

    def entropy(self) -> Tensor:
        half_log_det = self._unbroadcasted_scale_tril.diagonal(0, -2, -1).log().sum(-1)
        h = 0.5 * self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + half_log_det
        return h.expand(*self._batch_shape) if len(self._batch_shape) else h


def _precision_to_scale_tril(p: Tensor) -> Tensor:
    """torch's route from a precision matrix to the covariance's Cholesky factor."""
    lf = linalg.cholesky(p.flip(-2, -1)).flip(-2, -1)
    l_inv = lf.mT
    identity = eye(p.shape[-1], dtype=p.dtype, device=p.device)
    return linalg.solve_triangular(l_inv, identity, upper=False)


class Dirichlet(ExponentialFamily):
    arg_constraints = {"concentration": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration: Tensor, validate_args: bool | None = None) -> None:
        if concentration.ndim < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:], validate_args)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def variance(self) -> Tensor:
        total = self.concentration.sum(-1, keepdim=True)
        return self.concentration * (total - self.concentration) / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=()) -> Tensor:
        """Gamma draws normalised: the gradient reaches the concentration through each
        draw's implicit gradient and the normalisation. (torch differentiates the marginal
        Beta CDF instead; both are unbiased, their per-draw values differ.)"""
        draws = Gamma(self.concentration, 1.0, validate_args=False).rsample(sample_shape)
        tiny = float(np.finfo(draws._data.dtype).tiny)
        return clamp_value(draws / draws.sum(-1, keepdim=True), min=tiny)

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        a = self.concentration
        return xlogy(a - 1.0, value).sum(-1) + _gamma.lgamma(a.sum(-1)) - _gamma.lgamma(a).sum(-1)

    def entropy(self) -> Tensor:
        a = self.concentration
        k = a.shape[-1]
        a0 = a.sum(-1)
        return (
            _gamma.lgamma(a).sum(-1)
            - _gamma.lgamma(a0)
            - (k - a0) * _gamma.digamma(a0)
            - ((a - 1.0) * _gamma.digamma(a)).sum(-1)
        )

    @property
    def _natural_params(self) -> tuple:
        return (self.concentration,)

    def _log_normalizer(self, x) -> Tensor:
        return _gamma.lgamma(x).sum(-1) - _gamma.lgamma(x.sum(-1))


class Independent(Distribution):
    """base_distribution with its rightmost `reinterpreted_batch_ndims` batch dimensions
    read as event dimensions: log_prob and entropy sum over them."""

    arg_constraints: dict = {}

    def __init__(
        self, base_distribution: Distribution, reinterpreted_batch_ndims: int,
        validate_args: bool | None = None,
    ) -> None:  # fmt: skip
        batch = tuple(base_distribution.batch_shape)
        if reinterpreted_batch_ndims > len(batch):
            raise ValueError(
                "Expected reinterpreted_batch_ndims <= len(base_distribution.batch_shape), "
                f"actual {reinterpreted_batch_ndims} vs {len(batch)}"
            )
        self.base_dist = base_distribution
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims
        split = len(batch) - reinterpreted_batch_ndims
        super().__init__(
            batch[:split], batch[split:] + tuple(base_distribution.event_shape),
            validate_args=False if validate_args is None else validate_args,
        )  # fmt: skip

    @property
    def has_rsample(self) -> bool:
        return self.base_dist.has_rsample

    @property
    def support(self):
        return self.base_dist.support

    @property
    def mean(self) -> Tensor:
        return self.base_dist.mean

    @property
    def variance(self) -> Tensor:
        return self.base_dist.variance

    def sample(self, sample_shape=()) -> Tensor:
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        return self.base_dist.rsample(sample_shape)

    def _sum_rightmost(self, t: Tensor) -> Tensor:
        n = self.reinterpreted_batch_ndims
        return t.sum(tuple(range(-n, 0))) if n else t

    def log_prob(self, value: Tensor) -> Tensor:
        return self._sum_rightmost(self.base_dist.log_prob(value))

    def entropy(self) -> Tensor:
        return self._sum_rightmost(self.base_dist.entropy())

    def __repr__(self) -> str:
        return f"Independent({self.base_dist!r}, {self.reinterpreted_batch_ndims})"


__all__ = ["Dirichlet", "Independent", "MultivariateNormal"]
