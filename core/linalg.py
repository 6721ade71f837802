"""shardgrad.linalg: torch.linalg's names (inverses, solves, factorizations, norms).

The functions live in `ops.matrix_functions` and the ops behind them in
`ops.decompositions`; this module is the namespace a torch user reaches for.
"""

from __future__ import annotations

from .ops.decompositions import LinAlgError
from .ops.least_squares import lstsq
from .ops.linalg_ex import cholesky_ex, inv_ex, solve_ex
from .ops.lu_factorization import lu, lu_factor, lu_factor_ex, lu_solve
from .ops.matrix_exponential import matrix_exp
from .ops.matrix_functions import (
    cholesky,
    cond,
    cross,
    det,
    diagonal,
    eigh,
    eigvalsh,
    householder_product,
    inv,
    matrix_norm,
    matrix_power,
    matrix_rank,
    multi_dot,
    norm,
    pinv,
    qr,
    slogdet,
    solve,
    solve_triangular,
    svd,
    svdvals,
    tensorinv,
    tensorsolve,
    vander,
    vecdot,
    vector_norm,
)
from .ops.products import matmul

__all__ = [
    "LinAlgError",
    "cholesky_ex",
    "inv_ex",
    "solve_ex",
    "householder_product",
    "lstsq",
    "lu",
    "lu_factor",
    "lu_factor_ex",
    "lu_solve",
    "matrix_exp",
    "tensorinv",
    "tensorsolve",
    "vander",
    "cholesky",
    "cond",
    "cross",
    "det",
    "diagonal",
    "eigh",
    "eigvalsh",
    "inv",
    "matmul",
    "matrix_norm",
    "matrix_power",
    "matrix_rank",
    "multi_dot",
    "norm",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "solve_triangular",
    "svd",
    "svdvals",
    "vecdot",
    "vector_norm",
]
