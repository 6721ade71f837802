"""LU factorization with partial pivoting, and what is built on it: torch.linalg's
lu_factor, lu, lu_solve, the `_ex` variants that report failures instead of raising, and
torch's older top-level lu / lu_unpack / lu_solve spellings.

numpy has no LU routine, so the factorization is Gaussian elimination written once for a
whole batch: one column at a time, the largest remaining entry becomes the pivot, rows swap,
and a rank-one update eliminates below it. LAPACK's getrf does the same arithmetic (blocked);
the results agree to rounding. Pivots are LAPACK's: 1-based, int32, the row swapped with
row i at step i.

The gradient of the factors is torch's (linalg_lu_backward): with A = P L U,
gA = P L^-T [tril(L^T gL, -1) + triu(gU U^T)] U^-T, written with Tensor ops so it
differentiates again. lu_solve and lu_unpack are compositions of differentiable ops.
"""

from __future__ import annotations

import numpy as np

from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor
from ._select import return_type
from .decompositions import LinAlgError, check_matrix

_lu_factor_t = return_type("linalg_lu_factor", ("LU", "pivots"))
_lu_factor_ex_t = return_type("linalg_lu_factor_ex", ("LU", "pivots", "info"))
_lu_t = return_type("linalg_lu", ("P", "L", "U"))
_lu_unpack_t = return_type("lu_unpack", ("P", "L", "U"))


def _eliminate(a):
    """(LU packed, pivots (1-based), info) of a batch of (m, n) matrices. info is the 1-based
    index of the first exactly zero pivot (0 if none), as LAPACK reports singularity."""
    xp = xp_of(a)
    lu = a.copy()
    m, n = lu.shape[-2:]
    k_max = min(m, n)
    batch = lu.shape[:-2]
    flat = lu.reshape(-1, m, n)
    pivots = xp.zeros((flat.shape[0], k_max), dtype=np.int32)
    info = xp.zeros(flat.shape[0], dtype=np.int32)
    rows = xp.arange(flat.shape[0])
    for k in range(k_max):
        p = k + xp.argmax(xp.abs(flat[:, k:, k]), axis=1)  # the pivot row of each matrix
        pivots[:, k] = p + 1
        swap = flat[rows, p].copy()
        flat[rows, p] = flat[:, k]
        flat[:, k] = swap
        pivot = flat[:, k, k]
        zero = pivot == 0
        info = xp.where(zero & (info == 0), k + 1, info)
        safe = xp.where(zero, 1, pivot)
        below = flat[:, k + 1 :, k] / safe[:, None]
        below = xp.where(zero[:, None], 0, below)  # a zero column stays zero, as in getrf
        flat[:, k + 1 :, k] = below
        flat[:, k + 1 :, k + 1 :] -= below[:, :, None] * flat[:, k : k + 1, k + 1 :]
    return (
        flat.reshape(lu.shape),
        pivots.reshape(batch + (k_max,)),
        info.reshape(batch),
    )


def _permutation(pivots, m: int, dtype):
    """P (m x m) with A = P L U, from LAPACK pivots: replay the row swaps on the identity's
    row order, then P's column j is the unit vector of the row that ended in position j."""
    xp = xp_of(pivots)
    batch = pivots.shape[:-1]
    flat = pivots.reshape(-1, pivots.shape[-1]) - 1
    order = xp.tile(xp.arange(m), (flat.shape[0], 1))
    rows = xp.arange(flat.shape[0])
    for k in range(flat.shape[1]):
        p = flat[:, k]
        swap = order[rows, p].copy()
        order[rows, p] = order[:, k]
        order[:, k] = swap
    perm = xp.zeros((flat.shape[0], m, m), dtype=dtype)
    perm[rows[:, None], order, xp.arange(m)[None, :]] = 1
    return perm.reshape(batch + (m, m))


def _split(lu: Tensor) -> tuple[Tensor, Tensor]:
    """L (unit lower, m x k) and U (upper, k x n) out of the packed factors."""
    m, n = lu.shape[-2:]
    k = min(m, n)
    eye = Tensor._make(xp_of(lu._data).eye(m, k, dtype=lu._data.dtype))
    lower = lu[..., :, :k].tril(-1) + eye
    upper = lu[..., :k, :].triu()
    return lower, upper


class LuFactor(Op):
    """The packed factors LU (L's strict lower part and U) of A = P L U. The pivots and
    info, which have no gradient, are handed back through `found`."""

    save_output = True

    def forward(self, a, found=None):
        lu, pivots, info = _eliminate(a)
        found["pivots"], found["info"] = pivots, info
        self.pivots = pivots
        self.m, self.n = a.shape[-2:]
        return lu

    def backward(self, g):
        if self.m != self.n:
            raise NotImplementedError(
                "the gradient of an LU factorization is provided for square matrices"
            )
        (lu,) = self.saved
        lower, upper = _split(lu)
        perm = Tensor._make(_permutation(self.pivots, self.m, lu._data.dtype))
        return _lu_backward(g.tril(-1), g.triu(), perm, lower, upper)


def _lu_backward(g_lower, g_upper, perm, lower, upper):
    from .matrix_functions import solve_triangular  # noqa: PLC0415 - a sibling family

    inner = (lower.mT @ g_lower).tril(-1) + (g_upper @ upper.mT).triu()
    inner = solve_triangular(upper.mT, inner, upper=False, left=False)
    inner = solve_triangular(lower.mT, inner, upper=True, unitriangular=True)
    return perm @ inner


def _factor(fn: str, A: Tensor, pivot: bool) -> tuple[Tensor, Tensor, Tensor]:
    check_matrix(fn, A, square=False)
    if not pivot:
        raise NotImplementedError(f"{fn}: LU without pivoting is not provided (pivot=False)")
    found: dict = {}
    lu = LuFactor.apply(A, found=found)
    return lu, Tensor._make(found["pivots"]), Tensor._make(found["info"])


def lu_factor_ex(A: Tensor, *, pivot: bool = True, check_errors: bool = False):
    """(LU, pivots, info): info > 0 marks a singular matrix (its first zero pivot)."""
    lu, pivots, info = _factor("linalg.lu_factor_ex", A, pivot)
    if check_errors:
        _raise_if_singular("linalg.lu_factor_ex", info)
    return _lu_factor_ex_t(lu, pivots, info)


def lu_factor(A: Tensor, *, pivot: bool = True):
    """(LU, pivots) of A = P L U; LU holds L below the diagonal and U on and above it.
    A singular matrix factors fine (U has a zero on its diagonal), as in torch."""
    lu, pivots, _ = _factor("linalg.lu_factor", A, pivot)
    return _lu_factor_t(lu, pivots)


def _raise_if_singular(fn: str, info: Tensor) -> None:
    bad = np.asarray(info._data.get() if hasattr(info._data, "get") else info._data)
    if bad.size and bad.max() > 0:
        flat = bad.reshape(-1)
        i = int(np.argmax(flat > 0))
        where = f"(Batch element {i}): " if bad.ndim else ""
        raise LinAlgError(
            f"{fn}: {where}The factorization could not be completed because the input is not "
            f"invertible: U[{int(flat[i])},{int(flat[i])}] is zero."
        )


def lu_unpack(LU_data: Tensor, LU_pivots: Tensor, unpack_data: bool = True, unpack_pivots=True):
    """(P, L, U) out of lu_factor's results."""
    m = LU_data.shape[-2]
    perm = lower = upper = None
    if unpack_pivots:
        perm = Tensor._make(_permutation(LU_pivots._data, m, LU_data._data.dtype))
    if unpack_data:
        lower, upper = _split(LU_data)
    empty = LU_data.new_empty(0)
    return _lu_unpack_t(
        perm if perm is not None else empty,
        lower if lower is not None else empty,
        upper if upper is not None else empty,
    )


def lu(A: Tensor, *, pivot: bool = True):
    """(P, L, U) with A = P L U: P a permutation, L unit lower triangular, U upper."""
    lu_packed, pivots, _ = _factor("linalg.lu", A, pivot)
    return _lu_t(*lu_unpack(lu_packed, pivots))


def lu_solve(LU: Tensor, pivots: Tensor, B: Tensor, *, left: bool = True, adjoint: bool = False):
    """X with A X = B (or X A = B, or with A^T) from A's lu_factor results: two triangular
    solves and a permutation, differentiable in LU and B."""
    from .matrix_functions import solve_triangular  # noqa: PLC0415 - a sibling family

    check_matrix("linalg.lu_solve", LU)
    perm, lower, upper = lu_unpack(LU, pivots)
    if left and not adjoint:  # P L U X = B
        y = solve_triangular(lower, perm.mT @ B, upper=False, unitriangular=True)
        return solve_triangular(upper, y, upper=True)
    if left:  # U^T L^T P^T X = B
        y = solve_triangular(upper.mT, B, upper=False)
        return perm @ solve_triangular(lower.mT, y, upper=True, unitriangular=True)
    if not adjoint:  # X P L U = B
        y = solve_triangular(upper, B, upper=True, left=False)
        return solve_triangular(lower, y, upper=False, left=False, unitriangular=True) @ perm.mT
    # X U^T L^T P^T = B
    y = solve_triangular(lower.mT, B @ perm, upper=True, left=False, unitriangular=True)
    return solve_triangular(upper.mT, y, upper=False, left=False)


# ---------------------------------------------------------------- torch's older spellings
def torch_lu(A: Tensor, pivot: bool = True, get_infos: bool = False):
    """torch.lu: (LU, pivots[, infos])."""
    lu_packed, pivots, info = _factor("torch.lu", A, pivot)
    return (lu_packed, pivots, info) if get_infos else (lu_packed, pivots)


def torch_lu_solve(b: Tensor, LU_data: Tensor, LU_pivots: Tensor) -> Tensor:
    """torch.lu_solve(b, LU_data, LU_pivots): the right-hand side comes first."""
    return lu_solve(LU_data, LU_pivots, b)


TENSOR_METHODS = {
    "lu": lambda self, pivot=True, get_infos=False: torch_lu(self, pivot, get_infos),
    "lu_solve": lambda self, LU_data, LU_pivots: torch_lu_solve(self, LU_data, LU_pivots),
}

__all__ = ["lu_unpack"]
