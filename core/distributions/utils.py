"""torch.distributions.utils: the conversions between probabilities and logits that custom
distributions use, and broadcast_all."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .distribution import broadcast_all

__all__ = ["broadcast_all", "clamp_probs", "logits_to_probs", "probs_to_logits"]


def clamp_probs(probs: Tensor) -> Tensor:
    """probs kept inside [eps, 1 - eps], where their logs and logits are finite."""
    eps = float(np.finfo(probs._data.dtype).eps)
    return probs.clamp(eps, 1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """log(p) (categorical) or log(p / (1 - p)) (binary), with p clamped."""
    clipped = clamp_probs(probs)
    if is_binary:
        return clipped.log() - (-clipped).log1p()
    return clipped.log()


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """sigmoid(logits) (binary) or softmax(logits) over the last dimension."""
    if is_binary:
        return logits.sigmoid()
    return logits.softmax(-1)
