"""Connectionist temporal classification (CTC) loss: the negative log-probability of a
target sequence summed over every alignment of it to the input frames (blanks between and
around the labels, repeats collapsed), for speech and handwriting models whose outputs are
not aligned to their labels.

The forward pass is the alpha recursion over the target extended with blanks
(blank, l1, blank, l2, ..., blank), in log space, one frame at a time for the whole batch;
the backward pass runs the beta recursion and forms torch's gradient with respect to the
log-probabilities, exp(lp) - exp(log(sum of alpha*beta over the positions holding the class)
+ nll - lp). The exp(lp) term is torch's too: it vanishes through the log_softmax that
produces log_probs, and it makes a leaf's gradient equal torch's.
"""

from __future__ import annotations

import numpy as np

from ..autograd.node import Op
from ..backend import xp_of
from ..ops._view import add_at
from ..tensor import Tensor

__all__ = ["ctc_loss"]


def _extended(targets, target_lengths, blank: int, xp):
    """(N, 2S+1) extended labels (blank-padded past each target's end) and the mask of
    positions that may be reached by skipping a blank from two back."""
    n, s_max = targets.shape
    width = 2 * s_max + 1
    labels = xp.full((n, width), blank, dtype=np.int64)
    labels[:, 1::2] = targets
    past_end = xp.arange(s_max)[None, :] >= target_lengths[:, None]
    labels[:, 1::2] = xp.where(past_end, blank, labels[:, 1::2])
    skip = xp.zeros((n, width), dtype=bool)
    skip[:, 2:] = (labels[:, 2:] != blank) & (labels[:, 2:] != labels[:, :-2])
    return labels, skip


def _shift(a, by: int, fill):
    xp = xp_of(a)
    out = xp.full_like(a, fill)
    out[:, by:] = a[:, :-by]
    return out


def _unshift(a, by: int, fill):
    xp = xp_of(a)
    out = xp.full_like(a, fill)
    out[:, :-by] = a[:, by:]
    return out


class CtcLoss(Op):
    """Per-sample negative log-likelihoods; log_probs (T, N, C)."""

    save_inputs = (0,)

    def forward(self, lp, targets=None, input_lengths=None, target_lengths=None, blank=0,
                zero_infinity=False):  # fmt: skip
        xp = xp_of(lp)
        t_max, n, _ = lp.shape
        labels, skip = _extended(targets, target_lengths, blank, xp)
        ends = 2 * target_lengths + 1  # each sample's extended length
        rows = xp.arange(n)[:, None]
        neg_inf = -np.inf
        emit = xp.take_along_axis(lp, xp.broadcast_to(labels[None], (t_max,) + labels.shape), 2)
        alpha = xp.full((t_max,) + labels.shape, neg_inf, dtype=lp.dtype)
        positions = xp.arange(labels.shape[1])[None, :]
        first = (positions == 0) | ((positions == 1) & (target_lengths[:, None] > 0))
        alpha[0] = xp.where(first, emit[0], neg_inf)
        for t in range(1, t_max):
            prev = alpha[t - 1]
            best = xp.logaddexp(prev, _shift(prev, 1, neg_inf))
            best = xp.where(skip, xp.logaddexp(best, _shift(prev, 2, neg_inf)), best)
            step = best + emit[t]
            alpha[t] = xp.where((t < input_lengths)[:, None], step, prev)  # frozen past the end
        last = alpha[xp.maximum(input_lengths - 1, 0), xp.arange(n)]  # (N, width)
        final = xp.logaddexp(
            last[rows[:, 0], ends - 1],
            xp.where(target_lengths > 0, last[rows[:, 0], xp.maximum(ends - 2, 0)], neg_inf),
        )
        nll = -final
        self.infinite = xp.isinf(nll)
        if zero_infinity:
            nll = xp.where(self.infinite, 0.0, nll)
        self.context = (labels, skip, emit, alpha, nll, targets, input_lengths, target_lengths)
        self.blank, self.zero_infinity = blank, zero_infinity
        return nll.astype(lp.dtype)

    def backward(self, g):
        (lp_t,) = self.saved
        lp = lp_t._data
        labels, skip, emit, alpha, nll, _, input_lengths, target_lengths = self.context
        xp = xp_of(lp)
        t_max, n, c = lp.shape
        width = labels.shape[1]
        neg_inf = -np.inf
        positions = xp.arange(width)[None, :]
        ends = 2 * target_lengths[:, None] + 1
        beta = xp.full_like(alpha, neg_inf)
        last_t = input_lengths - 1
        at_end = (positions == ends - 1) | ((positions == ends - 2) & (target_lengths[:, None] > 0))
        skip_ahead = _unshift(skip, 2, False)  # from s, may jump to s + 2
        current = xp.full((n, width), neg_inf, dtype=lp.dtype)
        for t in range(t_max - 1, -1, -1):
            start_here = (t == last_t)[:, None]
            nxt = xp.logaddexp(current, _unshift(current, 1, neg_inf))
            nxt = xp.where(skip_ahead, xp.logaddexp(nxt, _unshift(current, 2, neg_inf)), nxt)
            stepped = nxt + emit[t]
            current = xp.where(start_here, xp.where(at_end, emit[t], neg_inf), stepped)
            current = xp.where((t <= last_t)[:, None], current, neg_inf)
            beta[t] = current
        # log sum over the positions s holding class c of alpha_t(s) beta_t(s), per (t, n, c)
        ab = alpha + beta
        peak = ab.max(axis=2, keepdims=True)
        peak = xp.where(xp.isfinite(peak), peak, 0.0)
        totals = xp.zeros((t_max, n, c), dtype=lp.dtype)
        t_idx = xp.broadcast_to(xp.arange(t_max)[:, None, None], ab.shape)
        n_idx = xp.broadcast_to(xp.arange(n)[None, :, None], ab.shape)
        c_idx = xp.broadcast_to(labels[None], ab.shape)
        add_at(totals, (t_idx, n_idx, c_idx), xp.exp(ab - peak))
        with np.errstate(divide="ignore"):
            lcab = xp.log(totals) + peak
        grad = xp.exp(lp) - xp.exp(lcab + nll[None, :, None] - lp)
        active = (xp.arange(t_max)[:, None] < input_lengths[None, :])[:, :, None]
        grad = xp.where(active, grad, 0.0)
        if self.zero_infinity:
            grad = xp.where(self.infinite[None, :, None], 0.0, grad)
        return g.reshape(1, n, 1) * Tensor._make(grad.astype(lp.dtype))

    def name(self) -> str:
        return "CtcLossBackward0"


def _lengths(values, n: int, name: str, xp) -> np.ndarray:
    if isinstance(values, Tensor):
        arr = values._data
        arr = arr.get() if hasattr(arr, "get") else arr
    else:
        arr = np.asarray(values)
    arr = np.asarray(arr, dtype=np.int64).reshape(-1)
    if arr.shape[0] != n:
        raise RuntimeError(f"{name} must be of size batch_size, but got {arr.shape[0]} (batch {n})")
    return arr


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths,
    target_lengths,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """log_probs (T, N, C) (or (T, C) for one sequence) from log_softmax; targets (N, S)
    padded, or all targets concatenated in 1-D; lengths per sequence."""
    from . import _reduction  # noqa: PLC0415

    reduce = _reduction.resolve(None, None, reduction)
    unbatched = log_probs.ndim == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    if lp.ndim != 3:
        raise RuntimeError(f"ctc_loss: log_probs must be 2-D or 3-D, got {lp.ndim}-D")
    t_max, n, c = lp.shape
    if not 0 <= blank < c:
        raise RuntimeError("blank must be in label range")
    xp = xp_of(lp._data)
    in_len = _lengths(input_lengths, n, "input_lengths", xp)
    tg_len = _lengths(target_lengths, n, "target_lengths", xp)
    if (in_len > t_max).any() or (in_len < 0).any():
        raise RuntimeError(
            f"Expected input_lengths to have value at most {t_max}, but got value "
            f"{int(in_len.max())}"
        )
    tg = targets._data
    tg = np.asarray(tg.get() if hasattr(tg, "get") else tg).astype(np.int64)
    if unbatched and tg.ndim == 1 and tg_len.shape[0] == 1:
        tg = tg[None, : tg_len[0]] if tg.size >= tg_len[0] else tg[None]
    if tg.ndim == 1:  # concatenated
        if tg.shape[0] != tg_len.sum():
            raise RuntimeError(
                f"Expected tensor to have size at least {int(tg_len.sum())} at dimension 1, "
                f"but got size {tg.shape[0]}"
            )
        s_max = int(tg_len.max()) if n else 0
        padded = np.full((n, max(s_max, 1)), blank, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(tg_len)[:-1]])
        for i in range(n):
            padded[i, : tg_len[i]] = tg[offsets[i] : offsets[i] + tg_len[i]]
        tg = padded
    if (tg_len > tg.shape[1]).any():
        raise RuntimeError(
            f"Expected tensor to have size at least {int(tg_len.max())} at dimension 1, but got "
            f"size {tg.shape[1]}"
        )
    in_len_x, tg_len_x, tg_x = xp.asarray(in_len), xp.asarray(tg_len), xp.asarray(tg)
    losses = CtcLoss.apply(
        lp, targets=tg_x, input_lengths=in_len_x, target_lengths=tg_len_x, blank=blank,
        zero_infinity=zero_infinity,
    )  # fmt: skip
    if reduce == "none":
        return losses.squeeze(0) if unbatched else losses
    if reduce == "sum":
        return losses.sum()
    divisor = Tensor._make(xp.asarray(np.maximum(tg_len, 1).astype(lp._data.dtype)))
    return (losses / divisor).mean()
