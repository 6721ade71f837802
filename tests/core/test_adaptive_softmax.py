"""AdaptiveLogSoftmaxWithLoss against torch with the same weights: the per-row log
probabilities and loss with their gradients, log_prob over every class, predict, unbatched
input, and the argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import assert_close

RNG = np.random.default_rng(71)


def _pair(**kwargs):
    torch.manual_seed(0)
    theirs = torch.nn.AdaptiveLogSoftmaxWithLoss(16, 20, [4, 10], **kwargs).double()
    ours = sg.nn.AdaptiveLogSoftmaxWithLoss(16, 20, [4, 10], **kwargs).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return ours, theirs


@pytest.mark.parametrize("head_bias", [False, True])
def test_output_loss_and_gradients_match_torch(head_bias):
    ours, theirs = _pair(head_bias=head_bias)
    x = RNG.standard_normal((12, 16))
    target = np.array([0, 3, 4, 9, 10, 19, 2, 5, 15, 1, 12, 7])  # every cluster
    sx, tx = sg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    s_out, s_loss = ours(sx, sg.tensor(target))
    t_out, t_loss = theirs(tx, torch.tensor(target))
    assert_close(s_out, t_out.detach())
    assert_close(s_loss, t_loss.detach())
    (s_loss + s_out[3]).backward()
    (t_loss + t_out[3]).backward()
    assert_close(sx.grad, tx.grad)
    for (s_name, p), (t_name, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert s_name == t_name
        assert_close(p.grad, q.grad)


def test_log_prob_predict_and_unbatched_match_torch():
    ours, theirs = _pair()
    x = RNG.standard_normal((6, 16)) * 3
    assert_close(ours.log_prob(sg.tensor(x)), theirs.log_prob(torch.tensor(x)).detach())
    assert_close(ours.log_prob(sg.tensor(x)).exp().sum(1), np.ones(6))
    assert ours.predict(sg.tensor(x)).tolist() == theirs.predict(torch.tensor(x)).tolist()
    one_s, loss_s = ours(sg.tensor(x[0]), sg.tensor(13))
    one_t, loss_t = theirs(torch.tensor(x[0]), torch.tensor(13))
    assert_close(one_s, one_t.detach())
    assert_close(loss_s, loss_t.detach())


def test_checks_match_torch():
    for lib in (sg, torch):
        with pytest.raises(ValueError, match="cutoffs should be a sequence of unique"):
            lib.nn.AdaptiveLogSoftmaxWithLoss(8, 20, [10, 4])
        layer = lib.nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4])
        with pytest.raises(RuntimeError, match="Target values should be in"):
            layer(lib.zeros(2, 8), lib.tensor([1, 25]))
        with pytest.raises(RuntimeError, match="same size in the batch dimension"):
            layer(lib.zeros(3, 8), lib.tensor([1, 2]))
