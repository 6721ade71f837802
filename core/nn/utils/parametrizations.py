"""nn.utils.parametrizations: weight_norm, spectral_norm and orthogonal as parametrizations
(the modern torch forms), computed as torch computes them."""

from __future__ import annotations

import numpy as np

from ... import linalg
from ...autograd import grad_mode
from ...backend import xp_of
from ...ops.elementwise import where
from ...ops.matrix_functions import geqrf
from ...tensor import Tensor
from .. import functional as F
from ..module import Module
from . import parametrize

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


def _norm_except_dim(v: Tensor, dim: int) -> Tensor:
    """The 2-norm of v over every dimension but dim, kept broadcastable to v."""
    if dim == -1:
        return v.norm()
    others = tuple(d for d in range(v.ndim) if d != dim)
    return v.norm(2, others, keepdim=True)


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return weight_v * (weight_g / _norm_except_dim(weight_v, self.dim))

    def right_inverse(self, weight: Tensor) -> tuple[Tensor, Tensor]:
        return _norm_except_dim(weight, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize module.<name> as g * v / |v| (the norm over every dimension but dim):
    originals `original0` (g) and `original1` (v)."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


def weight_matrix(weight: Tensor, dim: int) -> Tensor:
    """The weight as a matrix with dimension `dim` as its rows: what spectral norm
    normalises (both the parametrization and the older hook)."""
    if dim != 0:
        weight = weight.permute(dim, *(d for d in range(weight.ndim) if d != dim))
    return weight.reshape(weight.shape[0], -1)


class _SpectralNorm(Module):
    """W / sigma(W), sigma estimated by power iteration on the buffers _u and _v (updated in
    training mode), as in torch."""

    def __init__(
        self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12
    ) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but "
                f"got {dim})"
            )
        if n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be positive, but got "
                f"n_power_iterations={n_power_iterations}"
            )
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            matrix = self._matrix(weight)
            h, w = matrix.shape
            u = matrix.new_empty(h).normal_(0, 1)
            v = matrix.new_empty(w).normal_(0, 1)
            self.register_buffer("_u", F.normalize(u, dim=0, eps=eps))
            self.register_buffer("_v", F.normalize(v, dim=0, eps=eps))
            self._power_method(matrix, 15)

    def _matrix(self, weight: Tensor) -> Tensor:
        return weight_matrix(weight, self.dim)

    def _power_method(self, matrix: Tensor, iterations: int) -> None:
        from ...autograd import grad_mode  # noqa: PLC0415

        with grad_mode.no_grad():
            m = matrix.detach()
            for _ in range(iterations):
                self._u.copy_(F.normalize(m.mv(self._v), dim=0, eps=self.eps))
                self._v.copy_(F.normalize(m.mT.mv(self._u), dim=0, eps=self.eps))

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        matrix = self._matrix(weight)
        if self.training:
            self._power_method(matrix, self.n_power_iterations)
        u, v = self._u.clone(), self._v.clone()
        sigma = u.dot(matrix.mv(v))
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(
    module: Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> Module:
    """Reparametrize module.<name> as W / sigma(W), its spectral norm estimated by power
    iteration (dim 1 for transposed convolutions by default, 0 otherwise)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        from ..conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d  # noqa: PLC0415

        transposed = (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)
        dim = 1 if isinstance(module, transposed) else 0
    parametrize.register_parametrization(
        module, name, _SpectralNorm(weight, n_power_iterations, dim, eps)
    )
    return module


# ================================================================ orthogonal
_ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder")


def _is_orthogonal(q: Tensor) -> bool:
    n, k = q.shape[-2:]
    eps = 10.0 * n * float(np.finfo(q._data.dtype).eps)
    return bool(linalg.vector_norm(q.mT @ q - _eye(k, q), float("inf")) <= eps)


def _eye(n: int, like: Tensor) -> Tensor:
    return Tensor._make(xp_of(like._data).eye(n, dtype=like._data.dtype))


def _make_orthogonal(a: Tensor) -> Tensor:
    """Q of a tall A = Q R, with R's diagonal made non-negative (a unique choice)."""
    x, tau = geqrf(a)
    q = linalg.householder_product(x, tau)
    return q * x.diagonal(dim1=-2, dim2=-1).sign().unsqueeze(-2)


class _Orthogonal(Module):
    """X -> an orthogonal matrix: exp or the Cayley transform of the skew-symmetric part of
    tril(X), or a product of Householder reflectors; with `base` (the trivialization) the
    result is base @ Q, so the optimizer starts at the identity around the initial weight."""

    def __init__(self, weight: Tensor, orthogonal_map: str, use_trivialization: bool = True):
        super().__init__()
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, x: Tensor) -> Tensor:
        n, k = x.shape[-2:]
        transposed = n < k
        if transposed:
            x, n, k = x.mT, k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            x = x.tril()
            if n != k:
                x = _pad_square(x, n, k)
            a = x - x.mT
            if self.orthogonal_map == "matrix_exp":
                q = linalg.matrix_exp(a)
            else:
                eye = _eye(n, a)
                q = linalg.solve(eye - a * 0.5, eye + a * 0.5)
            if n != k:
                q = q[..., :k]
        else:
            a = x.tril(-1)
            tau = 2.0 / (1.0 + (a * a).sum(-2))
            q = linalg.householder_product(a, tau)
            q = q * x.diagonal(dim1=-2, dim2=-1).detach().trunc().unsqueeze(-2)
        if "base" in self._buffers:
            q = self.base @ q
        return q.mT if transposed else q

    def right_inverse(self, q: Tensor) -> Tensor:
        with grad_mode.no_grad():
            if tuple(q.shape) != self.shape:
                raise ValueError(
                    f"Expected a matrix or batch of matrices of shape {self.shape}. Got a tensor "
                    f"of shape {tuple(q.shape)}."
                )
            q_init = q
            n, k = q.shape[-2:]
            transpose = n < k
            if transpose:
                q, n, k = q.mT, k, n
            if "base" not in self._buffers:
                if self.orthogonal_map != "householder":
                    raise NotImplementedError(
                        "It is not possible to assign to the matrix exponential or the Cayley "
                        "parametrizations when use_trivialization=False."
                    )
                a, tau = geqrf(q)
                # R's diagonal signs, flipped where LAPACK skipped a reflection (tau == 0)
                signs = a.diagonal(dim1=-2, dim2=-1).sign()
                signs = where(tau == 0.0, -signs, signs)
                a = a.clone()
                a.diagonal(dim1=-2, dim2=-1).copy_(signs)
                return a.mT if transpose else a
            if n == k:
                q = q.clone() if _is_orthogonal(q) else _make_orthogonal(q)
            else:  # complete q to an n x n orthogonal matrix with random columns
                extra = q.new_empty((*q.shape[:-2], n, n - k)).normal_()
                q = _make_orthogonal(_cat_last(q, extra))
            self.base = q
            neg_id = q_init.new_zeros(tuple(q_init.shape))
            neg_id.diagonal(dim1=-2, dim2=-1).fill_(-1.0)
            return neg_id


def _pad_square(x: Tensor, n: int, k: int) -> Tensor:
    """A tall (n, k) matrix embedded in an (n, n) one with zero columns."""
    return _cat_last(x, x.new_zeros((n, n - k)).expand(*x.shape[:-2], n, n - k))


def _cat_last(a: Tensor, b: Tensor) -> Tensor:
    from ...ops.join import cat  # noqa: PLC0415

    return cat([a, b], -1)


def orthogonal(
    module: Module,
    name: str = "weight",
    orthogonal_map: str | None = None,
    *,
    use_trivialization: bool = True,
) -> Module:
    """Constrain module.<name> to orthogonal matrices (orthonormal columns or rows):
    matrix_exp for square matrices by default, householder otherwise."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(
            f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions."
        )
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _ORTHOGONAL_MAPS:
        raise ValueError(
            'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". Got: '
            f"{orthogonal_map}"
        )
    parametrization = _Orthogonal(weight, orthogonal_map, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, parametrization, unsafe=True)
    return module
