"""How many BLAS threads a worker's arithmetic uses.

A matrix product can give different low bits with a different thread count (the library may
split the reduction dimension differently), so a worker fixes its count once, when it loads a
job, instead of inheriting whatever the machine's BLAS picks. The count is the job's
`compute_threads` when set (give every worker the same value and every worker does the same
arithmetic), else the worker's share of the cores it may run on. threadpoolctl changes the
limit of the BLAS already loaded in the process; without it, the OPENBLAS/MKL/OMP
environment variables are set, which only reach a BLAS loaded after this call.
"""

from __future__ import annotations

import os

_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
_limiter = None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1


def cpu_share(workers_per_host: int = 1) -> int:
    """This worker's share of the cores: cores // workers on the host, at least 1."""
    return max(1, available_cores() // max(1, int(workers_per_host)))


def set_blas_threads(n: int) -> int:
    """Limit BLAS to `n` threads for the rest of the process (until called again)."""
    global _limiter
    n = max(1, int(n))
    for var in _ENV_VARS:
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415 - optional dependency
    except ImportError:  # pragma: no cover - threadpoolctl ships with the service extra
        return n
    _limiter = threadpool_limits(limits=n, user_api="blas")
    return n


def blas_threads() -> int | None:
    """The thread count of the loaded BLAS, or None when it cannot be read."""
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        return None
    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return counts[0] if counts else None
