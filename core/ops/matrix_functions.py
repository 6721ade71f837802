"""torch.linalg's functions, and torch's older top-level spellings of them.

The factorizations are the ops of `decompositions`; norms, powers, products, pseudo-inverse
tolerances and condition numbers are compositions of ops, so their gradients come from the
ops they are made of. `shardgrad.linalg` is the namespace that exposes these under
torch.linalg's names; `torch.det`, `torch.svd` and the rest (which differ from their linalg
cousins in arguments or results) are exported at the top level from here.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..backend import xp_of
from ..tensor import Tensor, _wrap_dim
from . import decompositions as dec
from ._select import return_type
from .decompositions import check_matrix
from .elementwise import _dtype_name, where
from .join import cat, stack
from .products import matmul
from .reduce import norm as _vector_norm

_slogdet_t = return_type("slogdet", ("sign", "logabsdet"))
_qr_t = return_type("qr", ("Q", "R"))
_svd_t = return_type("svd", ("U", "S", "V"))
_INF = float("inf")


# ================================================================ inverses and determinants
def inv(A: Tensor) -> Tensor:
    check_matrix("linalg.inv", A)
    return dec.Inv.apply(A)


def det(A: Tensor) -> Tensor:
    check_matrix("linalg.det", A)
    return dec.Det.apply(A)


def slogdet(A: Tensor):
    """(sign, log|det A|): the determinant without overflow or underflow."""
    check_matrix("linalg.slogdet", A)
    return dec._slogdet_t(*dec.Slogdet.apply(A))


def logdet(input: Tensor) -> Tensor:
    """log(det A): nan where the determinant is negative, -inf where it is zero."""
    check_matrix("linalg.logdet", input)
    sign, logabs = dec.Slogdet.apply(input)
    return where(sign._data < 0, math.nan, logabs)


def pinv(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    """The pseudo-inverse; singular values up to max(atol, rtol * largest) count as zero,
    with torch's default rtol of eps * max(m, n) when neither tolerance is given."""
    check_matrix("linalg.pinv", A, square=False)
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else _default_rtol(A)
    return dec.Pinv.apply(A, atol=float(atol or 0.0), rtol=float(rtol), hermitian=hermitian)


def _default_rtol(A: Tensor) -> float:
    return float(np.finfo(A._data.dtype).eps) * max(A.shape[-2], A.shape[-1])


def matrix_power(A: Tensor, n: int) -> Tensor:
    """A^n by repeated squaring; n < 0 inverts first, n = 0 is the identity."""
    check_matrix("linalg.matrix_power", A)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise TypeError(f"matrix_power(): argument 'n' must be int, not {type(n).__name__}")
    if n == 0:  # the identity, still a function of A (with zero gradient), as in torch
        eye = Tensor._make(_like(A, np.eye(A.shape[-1], dtype=A._data.dtype)))
        everywhere = _like(A, np.ones(tuple(A.shape), dtype=bool))
        return where(everywhere, eye, A)
    base = inv(A) if n < 0 else A
    n = abs(int(n))
    result = None
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


def _like(A: Tensor, array: np.ndarray):
    """A numpy array on A's device."""

    return xp_of(A._data).asarray(array)


# ================================================================ solving
def _is_vector_rhs(A: Tensor, B: Tensor) -> bool:
    """torch's rule: B is a (batch of) vector(s) when it is 1-D, or has A's batch shape."""
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """X with A X = B (left) or X A = B, batches broadcast."""
    check_matrix("linalg.solve", A)
    if not isinstance(B, Tensor) or not B.is_floating_point():
        raise RuntimeError("linalg.solve: Expected B to be a floating point tensor")
    if A.dtype != B.dtype:
        raise RuntimeError(
            f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
            f"{_name(A)} and B of type {_name(B)} instead"
        )
    if not left:
        return solve(A.mT, B.mT).mT
    vector = _is_vector_rhs(A, B)
    rhs = B.unsqueeze(-1) if vector else B
    n = A.shape[-1]
    if rhs.ndim < 2 or rhs.shape[-2] != n:
        shown = f"{rhs.shape[-2]}x{rhs.shape[-1]}" if rhs.ndim >= 2 else f"{rhs.shape[-1]}x1"
        raise RuntimeError(
            f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
            f"({A.shape[-2]}x{n} and {shown})"
        )
    x = _solve_matrices("linalg.solve", A, rhs)
    return x.squeeze(-1) if vector else x


def _solve_matrices(fn: str, A: Tensor, B: Tensor) -> Tensor:
    try:
        np.broadcast_shapes(tuple(A.shape[:-2]), tuple(B.shape[:-2]))
    except ValueError:
        raise RuntimeError(
            f"{fn}: the batch dimensions of A {tuple(A.shape[:-2])} and B "
            f"{tuple(B.shape[:-2])} are not broadcastable"
        ) from None
    return dec.Solve.apply(A, B)


def _name(t: Tensor) -> str:
    return _dtype_name(t)


def solve_triangular(
    A: Tensor, B: Tensor, *, upper: bool, left: bool = True, unitriangular: bool = False
) -> Tensor:
    """X with A X = B (left) or X A = B, reading only A's upper or lower triangle (and
    taking its diagonal as ones when unitriangular); B is always a (batch of) matrices."""
    fn = "linalg.solve_triangular"
    check_matrix(fn, A)
    if B.ndim < 2:
        raise RuntimeError(f"{fn}: The input tensor B must have at least 2 dimensions.")
    tri = A.triu(1 if unitriangular else 0) if upper else A.tril(-1 if unitriangular else 0)
    if unitriangular:
        tri = tri + Tensor._make(_like(A, np.eye(A.shape[-1], dtype=A._data.dtype)))
    if not left:
        tri, B = tri.mT, B.mT
    n = A.shape[-1]
    if B.shape[-2] != n:
        raise RuntimeError(
            f"{fn}: Incompatible shapes of A and B for the equation "
            f"{'AX = B' if left else 'XA = B'} ({A.shape[-2]}x{n} and {B.shape[-2]}x{B.shape[-1]})"
        )
    x = _solve_matrices(fn, tri, B)
    return x if left else x.mT


def cholesky_solve(B: Tensor, L: Tensor, upper: bool = False) -> Tensor:
    """X with A X = B, given A's Cholesky factor L (A = L L^T, or U^T U when upper): two
    triangular solves instead of a general one."""
    check_matrix("cholesky_solve", L)
    low = L.mT if upper else L
    return solve_triangular(low.mT, solve_triangular(low, B, upper=False), upper=True)


# ================================================================ factorizations
def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:
    """L (lower) with L L^T = A, reading A's lower triangle; upper=True gives L^T."""
    check_matrix("linalg.cholesky", A)
    low = dec.Cholesky.apply(A)
    return low.mT if upper else low


def qr(A: Tensor, mode: str = "reduced"):
    check_matrix("linalg.qr", A, square=False)
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(
            f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
            "'r', or 'complete'"
        )
    return dec._qr_t(*dec.Qr.apply(A, mode=mode))


def _check_uplo(uplo: str) -> None:
    if uplo not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {uplo}")


def eigh(A: Tensor, UPLO: str = "L"):
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix, from one triangle."""
    check_matrix("linalg.eigh", A)
    _check_uplo(UPLO)
    return dec._eigh_t(*dec.Eigh.apply(A, uplo=UPLO))


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:
    check_matrix("linalg.eigvalsh", A)
    _check_uplo(UPLO)
    if A.requires_grad:
        return dec.Eigh.apply(A, uplo=UPLO)[0]
    return Tensor._make(_xp(A).linalg.eigvalsh(A._data, UPLO=UPLO))


def _xp(A: Tensor):

    return xp_of(A._data)


def svd(A: Tensor, full_matrices: bool = True):
    check_matrix("linalg.svd", A, square=False)
    return dec._svd_t(*dec.Svd.apply(A, full_matrices=full_matrices))


def svdvals(A: Tensor) -> Tensor:
    """Singular values, descending."""
    check_matrix("linalg.svdvals", A, square=False)
    if A.requires_grad:
        return dec.Svd.apply(A, full_matrices=False)[1]
    return Tensor._make(_xp(A).linalg.svd(A._data, compute_uv=False))


def matrix_rank(A: Tensor, *, atol=None, rtol=None, hermitian: bool = False) -> Tensor:
    """How many singular values exceed max(atol, rtol * largest) (torch's default rtol)."""
    check_matrix("linalg.matrix_rank", A, square=False)
    data = A._data
    xp = _xp(A)
    if hermitian:
        s = xp.abs(xp.linalg.eigvalsh(data))
    else:
        s = xp.linalg.svd(data, compute_uv=False)
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else _default_rtol(A)
    if s.shape[-1] == 0:
        return Tensor._make(xp.zeros(s.shape[:-1], dtype=np.int64))
    tol = xp.maximum(xp.asarray(atol or 0.0, dtype=s.dtype), rtol * s.max(axis=-1, keepdims=True))
    return Tensor._make((s > tol).sum(axis=-1).astype(np.int64))


# ================================================================ norms
def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    if isinstance(ord, str):
        raise TypeError(
            f"linalg_vector_norm(): argument 'ord' (position 2) must be Number, not {type(ord).__name__}"
        )
    return _vector_norm(x, ord, dim, keepdim, dtype)


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None) -> Tensor:
    """'fro', 'nuc', and +-1, +-2, +-inf over the two dims (rows dim[0], columns dim[1])."""
    check_matrix("linalg.matrix_norm", A, square=False)
    if dtype is not None:
        A = A.to(dtype)
    if len(dim) != 2:
        raise RuntimeError(
            f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(map(str, dim))}"
        )
    rows, cols = (_wrap_dim(d, A.ndim) for d in dim)
    if rows == cols:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, {dim[1]})")
    if ord == "fro":
        return _vector_norm(A, 2, (rows, cols), keepdim)
    if ord == "nuc" or ord in (2, -2):
        moved = A.movedim((rows, cols), (-2, -1))
        s = svdvals(moved)
        out = s.sum(-1) if ord == "nuc" else (s.amax(-1) if ord == 2 else s.amin(-1))
        return _keep(out, (rows, cols), keepdim)
    if ord in (1, -1, _INF, -_INF):
        summed, other = (rows, cols) if ord in (1, -1) else (cols, rows)
        sums = A.abs().sum(summed, keepdim=True)
        out = sums.amax(other, keepdim=True) if ord > 0 else sums.amin(other, keepdim=True)
        return out if keepdim else _squeeze2(out, rows, cols)
    raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")


def _squeeze2(t: Tensor, a: int, b: int) -> Tensor:
    for d in sorted((a, b), reverse=True):
        t = t.squeeze(d)
    return t


def _keep(t: Tensor, dims: tuple, keepdim: bool) -> Tensor:
    if keepdim:
        for d in sorted(dims):
            t = t.unsqueeze(d)
    return t


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """A vector norm over one dim (or all, flattened), a matrix norm over two."""
    if isinstance(dim, int):
        dim = (dim,)
    if ord is None:
        if dim is not None and len(dim) == 2:
            return matrix_norm(A, "fro", dim, keepdim, dtype=dtype)
        return vector_norm(A, 2, dim, keepdim, dtype=dtype)
    if dim is None:
        if A.ndim not in (1, 2):
            raise RuntimeError(
                "linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
                f"Got {A.ndim}D."
            )
        dim = tuple(range(A.ndim))
    if len(dim) == 2:
        return matrix_norm(A, ord, dim, keepdim, dtype=dtype)
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm: Order {ord} not supported.")
    return vector_norm(A, ord, dim, keepdim, dtype=dtype)


def cond(A: Tensor, p=None) -> Tensor:
    """The condition number: s_max / s_min for p in (None, 2), s_min / s_max for -2, and
    norm(A) * norm(A^-1) for the other matrix norms."""
    check_matrix("linalg.cond", A, square=p not in (None, 2, -2))
    if p in (None, 2, -2):
        s = svdvals(A)
        big, small = s.amax(-1), s.amin(-1)
        return big / small if p != -2 else small / big
    return matrix_norm(A, p) * matrix_norm(inv(A), p)


# ================================================================ products
def multi_dot(tensors) -> Tensor:
    """A chain of matrix products; the first may be a row vector, the last a column one."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    for i, t in enumerate(tensors):
        allowed = (1, 2) if i in (0, len(tensors) - 1) else (2,)
        if t.ndim not in allowed:
            which = "first" if i == 0 else "last" if i == len(tensors) - 1 else None
            if which:
                raise RuntimeError(
                    f"multi_dot(): the {which} tensor must be 1D or 2D but got {t.ndim}D"
                )
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D but got {t.ndim}D")
    out = tensors[0]
    for t in tensors[1:]:
        out = matmul(out, t)
    return out


def chain_matmul(*matrices) -> Tensor:
    """torch.chain_matmul (deprecated there): the product of the matrices, in the cheapest
    order, as linalg.multi_dot."""
    warnings.warn(
        "torch.chain_matmul is deprecated and will be removed in a future PyTorch release. Use "
        "torch.linalg.multi_dot instead, which accepts a list of two or more tensors rather "
        "than multiple parameters.",
        UserWarning,
        stacklevel=2,
    )
    if len(matrices) == 1:
        return matrices[0]
    return multi_dot(list(matrices))


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    return (x * y).sum(dim)


def cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """The 3-vector cross product along dim, batches broadcast."""
    if input.shape[dim] != 3 or other.shape[dim] != 3:
        raise RuntimeError(
            f"linalg.cross: inputs dimension {dim} must have length 3. Got "
            f"{input.shape[dim]} and {other.shape[dim]}"
        )
    a = [input.select(dim, i) for i in range(3)]
    b = [other.select(dim, i) for i in range(3)]
    parts = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    nd = max(input.ndim, other.ndim)
    return stack(parts, _wrap_dim(dim, nd) if dim >= 0 else dim)


def diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    return A.diagonal(offset, dim1, dim2)


# ================================================================ torch.* spellings
def inverse(input: Tensor) -> Tensor:
    return inv(input)


def torch_slogdet(input: Tensor):
    check_matrix("linalg.slogdet", input)
    return _slogdet_t(*dec.Slogdet.apply(input))


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:
    return pinv(input, rtol=rcond)


def torch_cholesky(input: Tensor, upper: bool = False) -> Tensor:
    return cholesky(input, upper=upper)


def torch_qr(input: Tensor, some: bool = True):
    Q, R = qr(input, "reduced" if some else "complete")
    return _qr_t(Q, R)


def torch_svd(input: Tensor, some: bool = True, compute_uv: bool = True):
    """torch.svd: V rather than Vh; with compute_uv=False, U and V are zeros."""
    check_matrix("svd", input, square=False)
    if not compute_uv:
        s = svdvals(input)
        m, n = input.shape[-2], input.shape[-1]
        zeros = _xp(input).zeros
        dt = input._data.dtype
        u = Tensor._make(zeros(tuple(input.shape[:-2]) + (m, m if not some else min(m, n)), dt))
        v = Tensor._make(zeros(tuple(input.shape[:-2]) + (n, n if not some else min(m, n)), dt))
        return _svd_t(u, s, v)
    U, S, Vh = dec.Svd.apply(input, full_matrices=not some)
    return _svd_t(U, S, Vh.mT)


def torch_cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """torch.cross: without dim, the first dimension of length 3."""
    if dim is None:
        dim = next((i for i, s in enumerate(input.shape) if s == 3), None)
        if dim is None:
            raise RuntimeError("no dimension of size 3 in input")
    return cross(input, other, dim=dim)


def dist(input: Tensor, other: Tensor, p: float = 2) -> Tensor:
    """The p-norm of input - other (broadcast), flattened."""
    return _vector_norm(input - other, p)


# ================================================================ small compositions
def cholesky_inverse(L: Tensor, upper: bool = False) -> Tensor:
    """A^-1 from A's Cholesky factor (A = L L^T, or U^T U when upper)."""
    check_matrix("cholesky_inverse", L)
    eye = Tensor._make(_like(L, np.eye(L.shape[-1], dtype=L._data.dtype)))
    return cholesky_solve(eye.expand(*L.shape), L, upper)


def tensorinv(A: Tensor, ind: int = 2) -> Tensor:
    """The inverse of A read as a linear map from its last dims to its first `ind` dims:
    tensordot(tensorinv(A), A, ind) is the identity."""
    if ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    rows, cols = tuple(A.shape[:ind]), tuple(A.shape[ind:])
    n_rows, n_cols = math.prod(rows), math.prod(cols)
    if n_rows != n_cols:
        raise RuntimeError(
            "Expected self to satisfy the requirement prod(self.shape[ind:]) == "
            f"prod(self.shape[:ind]), but got {n_cols} != {n_rows}"
        )
    return inv(A.reshape(n_rows, n_cols)).reshape(*cols, *rows)


def tensorsolve(A: Tensor, B: Tensor, dims=None) -> Tensor:
    """X with tensordot(A, X, X.ndim) = B; `dims` first moves those dims of A to the end."""
    if dims is not None:
        dims = [d % A.ndim for d in dims]
        keep = [d for d in range(A.ndim) if d not in dims]
        A = A.permute(*keep, *dims)
    x_shape = tuple(A.shape[B.ndim :])
    n = math.prod(x_shape)
    if math.prod(tuple(B.shape)) != n or tuple(A.shape[: B.ndim]) != tuple(B.shape):
        raise RuntimeError(
            "Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == "
            f"prod(self.shape[:other.ndim]), but got {n} != {math.prod(tuple(A.shape[: B.ndim]))}"
        )
    return solve(A.reshape(n, n), B.reshape(n)).reshape(*x_shape)


def vander(x: Tensor, *, N: int | None = None) -> Tensor:
    """linalg.vander: columns x^0, x^1, ..., x^(N-1) (increasing, unlike torch.vander)."""
    if x.ndim < 1:
        raise RuntimeError("linalg.vander: x must have at least one dimension")
    n = x.shape[-1] if N is None else N
    if n < 1:
        raise RuntimeError("N must be greater than 1.")
    ones = x.unsqueeze(-1).new_ones((*x.shape, 1))
    if n == 1:
        return ones
    powers = x.unsqueeze(-1).expand(*x.shape, n - 1).cumprod(-1)
    return cat([ones, powers], -1)


def householder_product(A: Tensor, tau: Tensor) -> Tensor:
    """The first n columns of H_1 H_2 ... H_k, H_i = I - tau_i v_i v_i^T with v_i the i-th
    column of A below the diagonal and a 1 on it (LAPACK's orgqr; geqrf's Q)."""
    check_matrix("linalg.householder_product", A, square=False)
    m, n = A.shape[-2:]
    k = tau.shape[-1]
    if n > m:
        raise RuntimeError(
            "torch.linalg.householder_product: input.shape[-2] must be greater than or equal "
            "to input.shape[-1]"
        )
    if k > n:
        raise RuntimeError(
            "torch.linalg.householder_product: input.shape[-1] must be greater than or equal "
            "to tau.shape[-1]"
        )
    eye = Tensor._make(_like(A, np.eye(m, n, dtype=A._data.dtype)))
    q = eye.expand(*A.shape[:-2], m, n)
    unit = Tensor._make(_like(A, np.eye(m, dtype=A._data.dtype)))
    for i in reversed(range(k)):  # apply H_k first: Q = H_1 (H_2 (... (H_k I)))
        below = Tensor._make(_like(A, (np.arange(m) > i).astype(A._data.dtype)))
        v = A[..., :, i] * below + unit[:, i]  # the reflector's vector: 1 at i, A below
        t = tau[..., i].unsqueeze(-1).unsqueeze(-1)
        q = q - t * v.unsqueeze(-1) @ (v.unsqueeze(-2) @ q)
    return q


def geqrf(input: Tensor):
    """LAPACK's QR in compact form: (a, tau), R on and above a's diagonal, the Householder
    vectors below it (householder_product(a, tau) is Q). Not differentiable, as in torch."""
    check_matrix("geqrf", input, square=False)
    xp = _xp(input)
    data = input.detach()._data
    mats = data.reshape((-1,) + tuple(data.shape[-2:]))
    packed, taus = [], []
    for a in mats:
        h, tau = xp.linalg.qr(a, mode="raw")
        packed.append(h.T)
        taus.append(tau)
    batch = tuple(data.shape[:-2])
    a = xp.stack(packed).reshape(data.shape) if packed else data.copy()
    tau = xp.stack(taus).reshape(batch + (min(data.shape[-2:]),)) if taus else data[..., 0, :0]
    return return_type("geqrf", ("a", "tau"))(Tensor._make(a), Tensor._make(tau))


TENSOR_METHODS = {
    "det": det,
    "logdet": logdet,
    "slogdet": torch_slogdet,
    "inverse": inverse,
    "pinverse": pinverse,
    "cholesky": torch_cholesky,
    "qr": torch_qr,
    "svd": torch_svd,
    "matrix_power": matrix_power,
    "cross": torch_cross,
    "dist": dist,
    "cholesky_solve": cholesky_solve,
    "cholesky_inverse": cholesky_inverse,
    "geqrf": geqrf,
}

# The torch.* names that mean the same as their linalg cousins; shardgrad's __init__ exports
# the torch_* spellings (torch.svd, torch.qr, ...) under torch's names.
__all__: list[str] = [
    "det", "logdet", "inverse", "pinverse", "matrix_power", "dist", "cholesky_solve",
    "cholesky_inverse", "geqrf", "chain_matmul",
]  # fmt: skip
