"""torch.use_deterministic_algorithms: one switch for run-to-run identical results.

On the CPU every shardgrad op is already deterministic. On the GPU the only op whose result
can vary between runs is the scatter-add (index_add, scatter_add, embedding and gather
backward, advanced-index writes with accumulation): cupy adds colliding values with
atomics, in whatever order the threads arrive. With the switch on, those sums are formed in
a fixed order instead (a sort and a segmented scan, somewhat slower), so the same inputs
give the same bits on every run.
"""

from __future__ import annotations

__all__ = [
    "are_deterministic_algorithms_enabled",
    "is_deterministic_algorithms_warn_only_enabled",
    "use_deterministic_algorithms",
]

_enabled = False
_warn_only = False


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    global _enabled, _warn_only
    if not isinstance(mode, bool):
        raise TypeError(
            f"use_deterministic_algorithms expects a bool, but got {type(mode).__name__}"
        )
    _enabled, _warn_only = mode, bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    return _enabled


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _warn_only
