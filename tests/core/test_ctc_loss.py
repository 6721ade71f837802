"""CTC loss against torch: every reduction, padded and concatenated targets, repeated
labels, a non-zero blank, unequal and zero lengths, impossible alignments with and without
zero_infinity, the unbatched form, gradients through log_softmax and on a leaf, and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import shardgrad as sg
import shardgrad.nn.functional as F
from tests.conftest import assert_close

RNG = np.random.default_rng(31)


def _run(logits, targets, in_len, tg_len, *, leaf=False, **kwargs):
    """Loss and gradient in both libraries; returns ((loss, grad) sg, (loss, grad) torch)."""
    out = []
    for lib, fn, lsm in ((sg, F.ctc_loss, F.log_softmax), (torch, TF.ctc_loss, TF.log_softmax)):
        x = lib.tensor(logits, requires_grad=True)
        lp = x if leaf else lsm(x, -1)
        loss = fn(lp, lib.tensor(targets), in_len, tg_len, **kwargs)
        up = np.linspace(0.5, 1.5, loss.numel()).reshape(tuple(loss.shape))
        (loss * lib.tensor(up)).sum().backward()
        out.append((loss.detach(), x.grad))
    return out


def _same(result, grads=True):
    (s_loss, s_grad), (t_loss, t_grad) = result
    assert_close(s_loss, t_loss)
    if grads:
        assert_close(s_grad, t_grad)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("leaf", [False, True])
def test_padded_targets_match_torch(reduction, leaf):
    t, n, c = 15, 4, 6
    logits = RNG.standard_normal((t, n, c))
    if leaf:
        logits = torch.log_softmax(torch.tensor(logits), -1).cpu().numpy()
    targets = RNG.integers(1, c, (n, 5))
    targets[0, 1] = targets[0, 0]  # a repeated label needs a blank between
    _same(_run(logits, targets, [15, 13, 9, 15], [5, 3, 1, 0], leaf=leaf, reduction=reduction))


def test_concatenated_targets_and_a_nonzero_blank():
    t, n, c = 10, 3, 5
    logits = RNG.standard_normal((t, n, c))
    tg_len = [3, 2, 4]
    targets = RNG.integers(0, c - 1, sum(tg_len))  # labels 0..3, blank is 4
    _same(_run(logits, targets, [10, 8, 10], tg_len, blank=4))


def test_unbatched_input():
    logits = RNG.standard_normal((8, 4))
    _same(_run(logits, np.array([1, 2, 2]), [8], [3], reduction="sum"))


def test_impossible_alignments():
    """Too few frames for the labels (and their separating blanks): infinite loss, or zero
    loss and gradient with zero_infinity."""
    logits = RNG.standard_normal((3, 2, 4))
    targets = np.array([[1, 1, 2], [1, 2, 3]])
    s, t = _run(logits, targets, [3, 3], [3, 2], reduction="none", zero_infinity=True)
    _same((s, t))
    assert float(s[0][0]) == 0.0 and np.isfinite(float(s[0][1]))
    (s_loss, _), (t_loss, _) = _run(logits, targets, [3, 3], [3, 2], reduction="none")
    assert np.isinf(s_loss.numpy()[0]) and np.isinf(t_loss.numpy()[0])


def test_module_form_and_errors():
    logits = RNG.standard_normal((6, 2, 3))
    lp = sg.nn.functional.log_softmax(sg.tensor(logits), -1)
    loss = sg.nn.CTCLoss(blank=0, reduction="sum")(lp, sg.tensor([[1, 2], [2, 0]]), [6, 5], [2, 1])
    want = torch.nn.CTCLoss(reduction="sum")(
        torch.log_softmax(torch.tensor(logits), -1), torch.tensor([[1, 2], [2, 0]]), [6, 5], [2, 1]
    )
    assert_close(loss, want)
    with pytest.raises(RuntimeError, match="blank must be in label range"):
        F.ctc_loss(lp, sg.tensor([[1]]), [6, 5], [1, 1], blank=3)
    with pytest.raises(RuntimeError, match="input_lengths"):
        F.ctc_loss(lp, sg.tensor([[1], [1]]), [7, 5], [1, 1])
