"""torch.linalg.lstsq: the X minimising ||A X - B||_F, for tall, wide and rank-deficient A.

The solution is the minimum-norm one, pinv(A) B, which is what every LAPACK driver torch
offers returns (gels for full-rank A; gelsy, gelsd and gelss also for rank-deficient A), and
its gradient is the pseudo-inverse's. The other results follow torch's rules per driver:
`rank` from all but gels, `singular_values` from gelsd and gelss, and `residuals` (the
squared residual norm of each column) from gels when A is tall, and from gelsd and gelss
when A is tall and every matrix has full rank; empty otherwise. The default driver is
torch's: gelsy on the CPU, gels on a GPU (torch's CUDA lstsq has only gels; shardgrad's
runs every driver on either device).
"""

from __future__ import annotations

import numpy as np

from ..backend import xp_of
from ..tensor import Tensor
from ._select import return_type
from .decompositions import check_matrix

_lstsq_t = return_type("linalg_lstsq", ("solution", "residuals", "rank", "singular_values"))
_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(A: Tensor, B: Tensor, rcond: float | None = None, *, driver: str | None = None):
    from .matrix_functions import pinv, svdvals  # noqa: PLC0415 - a sibling family

    check_matrix("linalg.lstsq", A, square=False)
    if driver is None:
        driver = "gels" if A.device.type == "cuda" else "gelsy"
    if driver not in _DRIVERS:
        raise RuntimeError(f"torch.linalg.lstsq: parameter `driver` should be one of {_DRIVERS}")
    if A.dtype != B.dtype:
        raise RuntimeError(
            f"torch.linalg.lstsq: Expected input and other to have the same dtype, but got "
            f"input's dtype {A.dtype.name} and other's dtype {B.dtype.name}"
        )
    vector = B.ndim == 1
    rhs = B.unsqueeze(-1) if vector else B
    m, n = A.shape[-2:]
    if rhs.shape[-2] != m:
        raise RuntimeError(
            f"torch.linalg.lstsq: input.size(-2) should match other.size(-2) ({m} vs "
            f"{rhs.shape[-2]})"
        )
    tol = float(np.finfo(A._data.dtype).eps) * max(m, n) if rcond is None or rcond < 0 else rcond
    solution = pinv(A, rtol=tol) @ rhs
    xp = xp_of(A._data)
    empty_float = A.new_empty(0)
    sv = svdvals(A.detach())
    rank = Tensor._make((sv._data > tol * sv._data.max(axis=-1, keepdims=True)).sum(axis=-1))
    full_rank = bool((rank._data == min(m, n)).all())
    residuals = empty_float
    if m > n and (driver == "gels" or (driver in ("gelsd", "gelss") and full_rank)):
        residuals = ((A @ solution - rhs) ** 2).sum(-2)
    if driver == "gels":
        rank = Tensor._make(xp.zeros(0, dtype=np.int64))
    singular_values = sv if driver in ("gelsd", "gelss") else empty_float
    if vector:
        solution = solution.squeeze(-1)
        if residuals.numel():
            residuals = residuals.squeeze(-1)
    return _lstsq_t(solution, residuals, rank, singular_values)


__all__: list[str] = []
