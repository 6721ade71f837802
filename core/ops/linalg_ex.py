"""torch.linalg's `_ex` variants: the result together with LAPACK's `info` code instead of
an error, so a batch with a few bad matrices can be handled without try/except.

info is 0 for a matrix that worked. For inv_ex and solve_ex a positive info is the 1-based
position of the first zero pivot of the LU factorization (the matrix is singular); for
cholesky_ex it is the order of the first leading minor that is not positive-definite.
When every matrix works the result is the plain, differentiable one. Otherwise the failed
matrices are swapped for the identity, the batch is computed once, and their results are
set to NaN (LAPACK leaves unspecified values there); that result carries no gradient.
`check_errors=True` raises as the plain function does.
"""

from __future__ import annotations

import numpy as np

from ..backend import xp_of
from ..tensor import Tensor
from ._select import return_type
from .decompositions import LinAlgError, check_matrix
from .lu_factorization import _eliminate

_inv_ex_t = return_type("linalg_inv_ex", ("inverse", "info"))
_solve_ex_t = return_type("linalg_solve_ex", ("result", "info"))
_cholesky_ex_t = return_type("linalg_cholesky_ex", ("L", "info"))


def _zeros_info(A: Tensor) -> Tensor:
    return Tensor._make(xp_of(A._data).zeros(tuple(A.shape[:-2]), dtype=np.int32))


def _stand_in(A: Tensor, info) -> Tensor:
    """A with each failed matrix replaced by the identity."""
    xp = xp_of(A._data)
    eye = xp.eye(A.shape[-1], dtype=A._data.dtype)
    return Tensor._make(xp.where((info > 0)[..., None, None], eye, A._data))


def _nan_where_failed(result: Tensor, info, tail: int) -> Tensor:
    """result (batch, *tail dims) with the failed matrices' entries set to NaN."""
    xp = xp_of(result._data)
    out = result._data.copy()
    batch = out.shape[: out.ndim - tail]
    failed = xp.broadcast_to(info > 0, batch)
    out[failed] = np.nan
    return Tensor._make(out)


def inv_ex(A: Tensor, *, check_errors: bool = False):
    from .matrix_functions import inv  # noqa: PLC0415 - a sibling family

    check_matrix("linalg.inv_ex", A)
    try:
        return _inv_ex_t(inv(A), _zeros_info(A))
    except LinAlgError:
        if check_errors:
            raise
    info = _eliminate(A._data)[2]
    result = inv(_stand_in(A, info))
    return _inv_ex_t(_nan_where_failed(result, info, 2), Tensor._make(info))


def solve_ex(A: Tensor, B: Tensor, *, left: bool = True, check_errors: bool = False):
    from .matrix_functions import _is_vector_rhs, solve  # noqa: PLC0415 - a sibling family

    check_matrix("linalg.solve_ex", A)
    try:
        return _solve_ex_t(solve(A, B, left=left), _zeros_info(A))
    except LinAlgError:
        if check_errors:
            raise
    info = _eliminate(A._data)[2]
    result = solve(_stand_in(A, info), B.detach(), left=left)
    tail = 1 if _is_vector_rhs(A, B) else 2
    return _solve_ex_t(_nan_where_failed(result, info, tail), Tensor._make(info))


def cholesky_ex(A: Tensor, *, upper: bool = False, check_errors: bool = False):
    from .matrix_functions import cholesky  # noqa: PLC0415 - a sibling family

    check_matrix("linalg.cholesky_ex", A)
    try:
        return _cholesky_ex_t(cholesky(A, upper=upper), _zeros_info(A))
    except LinAlgError:
        if check_errors:
            raise
    xp = xp_of(A._data)
    mats = A._data.reshape((-1,) + tuple(A.shape[-2:]))
    info = xp.asarray(
        np.array([_first_bad_minor(m) for m in mats], dtype=np.int32).reshape(tuple(A.shape[:-2]))
    )
    result = cholesky(_stand_in(A, info), upper=upper)
    return _cholesky_ex_t(_nan_where_failed(result, info, 2), Tensor._make(info))


def _first_bad_minor(a) -> int:
    """The order of the first leading minor of `a` (read through its lower triangle, as
    cholesky reads it) that is not positive-definite; 0 when all are. On the host: numpy's
    cholesky raises where cupy's would return NaN silently."""
    a = np.asarray(a.get() if hasattr(a, "get") else a)
    sym = np.tril(a) + np.tril(a, -1).T
    for k in range(1, a.shape[0] + 1):
        try:
            np.linalg.cholesky(sym[:k, :k])
        except np.linalg.LinAlgError:
            return k
    return 0


__all__: list[str] = []
