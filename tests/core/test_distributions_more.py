"""GeneralizedPareto, OneHotCategoricalStraightThrough and the remaining constraints
(one_hot, multinomial, positive_integer, dependent) against torch, and torch's
top-level names of the package."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import to_numpy

F32 = np.float32


def test_generalized_pareto_matches_torch():
    """xi = 0 (the exponential case), a bounded xi < 0, and xi > 0 with an infinite
    variance; float32, where torch's own implementation works."""
    loc, scale = np.array([0.0, 1.0, -1.0, 0.5], F32), np.array([1.0, 2.0, 0.5, 1.5], F32)
    xi = np.array([0.0, -0.5, 0.3, 0.8], F32)
    v, u = np.array([0.5, 2.0, 0.0, 3.0], F32), np.array([0.1, 0.5, 0.9, 0.99], F32)
    results = []
    for lib in (sg, torch):
        params = [lib.tensor(a, requires_grad=True) for a in (loc, scale, xi)]
        d = lib.distributions.GeneralizedPareto(*params)
        outs = [d.log_prob(lib.tensor(v)), d.cdf(lib.tensor(v)), d.icdf(lib.tensor(u))]
        outs += [d.mean, d.variance, d.entropy(), d.mode]
        sum(o.nan_to_num().sum() for o in outs).backward()
        results.append([*outs, *(p.grad for p in params), d.support.upper_bound])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(to_numpy(ours), theirs.detach().numpy(), rtol=2e-6, atol=1e-6)


def test_generalized_pareto_draws():
    d = sg.distributions.GeneralizedPareto(1.0, 2.0, sg.tensor([0.0, 0.2, -0.4]))
    sg.manual_seed(0)
    draws = to_numpy(d.rsample((200_000,)))
    np.testing.assert_allclose(draws.mean(0), to_numpy(d.mean), rtol=0.02)
    assert draws.min() >= 1.0 and draws[:, 2].max() <= 1.0 + 2.0 / 0.4


def test_one_hot_straight_through_matches_torch_gradient():
    """The value is a one-hot draw, the gradient that of the probabilities, so with the
    same logits the gradient of a linear function of the draws is torch's exactly."""
    w = [1.0, 2.0, 3.0]
    grads = []
    for lib in (sg, torch):
        logits = lib.tensor([[0.5, -1.0, 2.0]], requires_grad=True)
        d = lib.distributions.OneHotCategoricalStraightThrough(logits=logits)
        x = d.rsample((100,))
        assert d.has_rsample and bool(((x == 0) | (x == 1)).all())
        (x * lib.tensor(w)).sum(-1).mean().backward()
        grads.append(logits.grad)
    np.testing.assert_allclose(to_numpy(grads[0]), grads[1].numpy(), rtol=1e-5)


def test_remaining_constraints_match_torch():
    c_s, c_t = sg.distributions.constraints, torch.distributions.constraints
    cases = [
        (c_s.one_hot, c_t.one_hot, [[0.0, 1, 0], [1, 1, 0], [0, 0, 0]]),
        (c_s.multinomial(3), c_t.multinomial(3), [[1.0, 1, 1], [2, 2, 0], [0, 0, 0]]),
        (c_s.positive_integer, c_t.positive_integer, [0.0, 1.0, 2.5, 7.0]),
        (c_s.integer_interval(1, 3), c_t.integer_interval(1, 3), [0.0, 1.0, 3.0, 4.0]),
    ]
    for ours, theirs, values in cases:
        assert repr(ours) == repr(theirs)
        assert ours.event_dim == theirs.event_dim and ours.is_discrete == theirs.is_discrete
        expected = theirs.check(torch.tensor(values)).tolist()
        assert np.asarray(ours.check(np.asarray(values))).tolist() == expected
    assert c_s.is_dependent(c_s.dependent) and not c_s.is_dependent(c_s.real)
    with pytest.raises(ValueError, match="dependent constraint"):
        c_s.dependent.check(np.zeros(2))
    assert isinstance(c_s.real, c_s.Constraint)
    assert repr(sg.distributions.OneHotCategorical(sg.tensor([0.2, 0.8])).support) == "OneHot()"


def test_package_names_match_torch():
    """Every public name of torch.distributions."""
    missing = [n for n in torch.distributions.__all__ if not hasattr(sg.distributions, n)]
    assert missing == []
