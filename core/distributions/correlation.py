"""Distributions over matrices: LKJCholesky, a prior over the Cholesky factors of
correlation matrices (Lewandowski, Kurowicka and Joe, 2009), and Wishart, over positive
definite matrices.

LKJCholesky(dim, concentration) has density proportional to det(L L^T)^(concentration - 1)
in the correlation matrix; over its Cholesky factor L that is the product over rows i >= 1
of L_ii^(dim - i - 1 + 2 (concentration - 1)). It is drawn by the onion method: row i is
a uniform direction in its first i coordinates, scaled by the square root of a
Beta(i / 2, concentration + (dim - 2) / 2 - i / 2) draw, with the diagonal closing the row to
unit length.

Wishart(df, covariance_matrix | precision_matrix | scale_tril) draws by the Bartlett
decomposition: with the scale's Cholesky factor L, L A A^T L^T for A lower triangular with
chi-squared(df - i) square roots on its diagonal and standard normals below it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import linalg
from ..factory import arange
from ..ops import gamma as _gamma
from ..ops.matrix_functions import cholesky_inverse, cholesky_solve
from ..tensor import Size, Tensor
from .derived import Chi2
from .distribution import Distribution, ExponentialFamily, _noise, broadcast_all, constraints
from .multivariate import _precision_to_scale_tril
from .univariate import Beta

__all__ = ["LKJCholesky", "Wishart"]


class LKJCholesky(Distribution):
    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim: int, concentration=1.0, validate_args=None) -> None:
        if dim < 2:
            raise ValueError(
                f"Expected dim to be an integer greater than or equal to 2. Found dim={dim}."
            )
        self.dim = dim
        (self.concentration,) = broadcast_all(concentration)
        batch_shape = self.concentration.shape
        super().__init__(batch_shape, (dim, dim), validate_args=validate_args)
        # the onion method's Beta draws, one per row (row 0's is unused)
        offset = arange(dim - 1, dtype=self.concentration.dtype, device=self.concentration.device)
        offset = _prepend_zero(offset)  # row 0 draws nothing
        marginal = self.concentration + 0.5 * (dim - 2)
        self._beta = Beta(offset + 0.5, marginal.unsqueeze(-1) - 0.5 * offset, validate_args=False)

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        y = self._beta.sample(sample_shape).unsqueeze(-1)
        u = _noise(self.concentration, tuple(shape)).tril(-1)
        norms = u.norm(dim=-1, keepdim=True)
        direction = u / norms.masked_fill(norms == 0, 1.0)  # row 0 has no direction
        w = y.sqrt() * direction
        eps = float(np.finfo(w._data.dtype).tiny)
        diagonal = (1 - w.pow(2).sum(-1)).clamp(min=eps).sqrt()
        return w + diagonal.diag_embed()

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        diagonal = value.diagonal(dim1=-2, dim2=-1)[..., 1:]
        order = arange(2, self.dim + 1, dtype=value.dtype, device=value.device)
        order = 2 * (self.concentration - 1).unsqueeze(-1) + self.dim - order
        unnormalized = (order * diagonal.log()).sum(-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        normalizer = (
            0.5 * dm1 * math.log(math.pi)
            + _gamma.mvlgamma(alpha - 0.5, dm1)
            - _gamma.lgamma(alpha) * dm1
        )
        return unnormalized - normalizer

    def expand(self, batch_shape, _instance=None):
        return LKJCholesky(self.dim, self.concentration.expand(*batch_shape), validate_args=False)


def _prepend_zero(offset: Tensor) -> Tensor:
    from ..ops.join import cat  # noqa: PLC0415

    return cat([offset.new_zeros(1), offset])


class Wishart(ExponentialFamily):
    arg_constraints = {
        "covariance_matrix": constraints.positive_definite,
        "precision_matrix": constraints.positive_definite,
        "scale_tril": constraints.lower_cholesky,
        "df": constraints.greater_than(0),
    }
    support = constraints.positive_definite
    has_rsample = True

    def __init__(
        self,
        df,
        covariance_matrix: Tensor | None = None,
        precision_matrix: Tensor | None = None,
        scale_tril: Tensor | None = None,
        validate_args=None,
    ) -> None:
        candidates = (
            ("scale_tril", scale_tril),
            ("covariance_matrix", covariance_matrix),
            ("precision_matrix", precision_matrix),
        )
        given = [(n, m) for n, m in candidates if m is not None]
        if len(given) != 1:
            raise ValueError(
                "Exactly one of covariance_matrix or precision_matrix or scale_tril may be "
                "specified."
            )
        name, matrix = given[0]
        if matrix.ndim < 2:
            raise ValueError(
                "scale_tril must be at least two-dimensional, with optional leading batch "
                "dimensions"
            )
        p = matrix.shape[-1]
        if isinstance(df, Tensor):
            batch = Size(np.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(df.shape)))
            self.df = df.expand(*batch)
        else:
            batch = Size(tuple(matrix.shape[:-2]))
            self.df = matrix.new_tensor(float(df)).expand(*batch)
        if bool((self.df <= p - 1).any()):
            raise ValueError(f"Value of df={df} expected to be greater than ndim - 1 = {p - 1}.")
        self.arg_constraints = {
            name: self.arg_constraints[name],
            "df": constraints.greater_than(p - 1),
        }
        setattr(self, name, matrix.expand(*batch, p, p))
        self._given = name
        if name == "scale_tril":
            self._unbroadcasted_scale_tril = matrix
        elif name == "covariance_matrix":
            self._unbroadcasted_scale_tril = linalg.cholesky(matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(matrix)
        if bool((self.df < p).any()):
            warnings.warn(
                "Low df values detected. Singular samples are highly likely to occur for "
                "ndim - 1 < df < ndim.",
                stacklevel=2,
            )
        super().__init__(batch, (p, p), validate_args=validate_args)
        # the Bartlett factor's diagonal: chi-squared with df, df - 1, ..., df - p + 1
        steps = arange(p, dtype=self.df.dtype, device=self.df.device)
        self._chi2 = Chi2(self.df.unsqueeze(-1) - steps, validate_args=False)

    def __getattr__(self, name: str):
        tril = self.__dict__.get("_unbroadcasted_scale_tril")
        if tril is None:
            raise AttributeError(name)
        shape = tuple(self._batch_shape) + tuple(self._event_shape)
        if name == "scale_tril":
            return tril.expand(*shape)
        if name == "covariance_matrix":
            return (tril @ tril.mT).expand(*shape)
        if name == "precision_matrix":
            return cholesky_inverse(tril).expand(*shape)
        raise AttributeError(name)

    def _df(self) -> Tensor:
        return self.df.reshape(*self._batch_shape, 1, 1)

    @property
    def mean(self) -> Tensor:
        return self._df() * self.covariance_matrix

    @property
    def mode(self) -> Tensor:
        factor = self.df - self._event_shape[-1] - 1
        factor = factor.masked_fill(factor <= 0, math.nan)
        return factor.reshape(*self._batch_shape, 1, 1) * self.covariance_matrix

    @property
    def variance(self) -> Tensor:
        v = self.covariance_matrix
        d = v.diagonal(dim1=-2, dim2=-1)
        return self._df() * (v.pow(2) + d.unsqueeze(-1) * d.unsqueeze(-2))

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = float(np.finfo(self.df._data.dtype).eps)
        diagonal = self._chi2.rsample(sample_shape).sqrt().clamp(min=eps)
        below = _noise(self.df, tuple(shape)).tril(-1)
        chol = self._unbroadcasted_scale_tril @ (below + diagonal.diag_embed())
        return chol @ chol.mT

    def log_prob(self, value: Tensor) -> Tensor:
        self._validate_sample(value)
        nu, p = self.df, self._event_shape[-1]
        tril = self._unbroadcasted_scale_tril
        half_log_det_scale = tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        trace = cholesky_solve(value, tril).diagonal(dim1=-2, dim2=-1).sum(-1)
        return (
            -nu * (p * math.log(2.0) / 2 + half_log_det_scale)
            - _gamma.mvlgamma(nu / 2, p)
            + (nu - p - 1) / 2 * linalg.slogdet(value).logabsdet
            - trace / 2
        )

    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple:
        p = self._event_shape[-1]
        return -self.precision_matrix / 2, (self.df - p - 1) / 2

    def _log_normalizer(self, x, y) -> Tensor:
        p = self._event_shape[-1]
        log_det = linalg.slogdet(-2 * x).logabsdet
        return (y + (p + 1) / 2) * (-log_det + math.log(2.0) * p) + _gamma.mvlgamma(
            y + (p + 1) / 2, p
        )

    def entropy(self) -> Tensor:
        nu, p = self.df, self._event_shape[-1]
        half_log_det_scale = self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        steps = arange(p, dtype=nu.dtype, device=nu.device) / 2
        multi_digamma = _gamma.digamma(nu.unsqueeze(-1) / 2 - steps).sum(-1)
        return (
            (p + 1) * (p * math.log(2.0) / 2 + half_log_det_scale)
            + _gamma.mvlgamma(nu / 2, p)
            - (nu - p - 1) / 2 * multi_digamma
            + nu * p / 2
        )
