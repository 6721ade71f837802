"""torch.distributions.utils: the conversions between probabilities and logits that custom
distributions use, and broadcast_all."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .distribution import broadcast_all

__all__ = [
    "broadcast_all", "clamp_probs", "logits_to_probs", "probs_to_logits", "tril_matrix_to_vec",
    "vec_to_tril_matrix",
]  # fmt: skip


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


def _tril_positions(n: int, diag: int) -> np.ndarray:
    """Flat row-major positions of the n x n entries on or below diagonal `diag`."""
    rows, cols = np.indices((n, n))
    return np.flatnonzero(cols <= rows + diag)


def vec_to_tril_matrix(vec: Tensor, diag: int = 0) -> Tensor:
    """The lower triangle (on or below diagonal `diag`) of a square matrix filled row by row
    from the last dimension of `vec`; zeros elsewhere. Differentiable in vec."""
    m = vec.shape[-1]
    n = int(
        round(
            (-(1 + 2 * diag) + ((1 + 2 * diag) ** 2 + 8 * m + 4 * abs(diag) * (diag + 1)) ** 0.5)
            / 2
        )
    )
    if len(_tril_positions(n, diag)) != m:
        raise ValueError(f"{m} values do not fill a triangle below diagonal {diag}")
    index = vec.new_tensor(_tril_positions(n, diag)).long()
    flat = vec.new_zeros(tuple(vec.shape[:-1]) + (n * n,)).index_add(-1, index, vec)
    return flat.reshape(*vec.shape[:-1], n, n)


def tril_matrix_to_vec(mat: Tensor, diag: int = 0) -> Tensor:
    """The entries of `mat` on or below diagonal `diag`, row by row: vec_to_tril_matrix's
    inverse."""
    n = mat.shape[-1]
    index = mat.new_tensor(_tril_positions(n, diag)).long()
    return mat.reshape(*mat.shape[:-2], n * n).index_select(-1, index)
