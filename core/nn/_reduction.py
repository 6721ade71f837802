"""How a loss reduces its per-element values: torch's `reduction` argument, and the legacy
`size_average`/`reduce` pair it replaced. Shared by every loss function."""

from __future__ import annotations

import warnings

from ..tensor import Tensor


def resolve(size_average, reduce, reduction: str) -> str:
    """torch's `_Reduction.legacy_get_string` and `get_enum` checks."""
    if size_average is not None or reduce is not None:
        warnings.warn(
            "size_average and reduce args will be deprecated, please use reduction='"
            + _legacy(size_average, reduce)
            + "' instead.",
            stacklevel=3,
        )
        reduction = _legacy(size_average, reduce)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _legacy(size_average, reduce) -> str:
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        return "mean"
    return "sum" if reduce else "none"


def apply(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
