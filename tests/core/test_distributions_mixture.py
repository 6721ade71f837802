"""MixtureSameFamily, VonMises and LowRankMultivariateNormal against torch.distributions:
log_prob and its parameter gradients, moments, cdf, entropy, and sample statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import assert_close

RNG = np.random.default_rng(23)


def _both(build, arrays, value, rtol=1e-6):
    """Build the distribution in both libraries from the same float64 leaves; return the
    log_probs at `value` and the leaves (for gradients)."""
    s_in = [sg.tensor(a, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    s_d, t_d = build(sg.distributions, s_in), build(torch.distributions, t_in)
    s_lp, t_lp = s_d.log_prob(sg.tensor(value)), t_d.log_prob(torch.tensor(value))
    assert_close(s_lp, t_lp.detach(), rtol=rtol)
    s_lp.sum().backward()
    t_lp.sum().backward()
    for s, t in zip(s_in, t_in):
        assert_close(s.grad, t.grad, rtol=rtol)
    return s_d, t_d


def _mixture_of_normals(d, p):
    return d.MixtureSameFamily(d.Categorical(logits=p[0]), d.Normal(p[1], p[2]))


def _mixture_of_mvns(d, p):
    return d.MixtureSameFamily(
        d.Categorical(probs=p[0]), d.MultivariateNormal(p[1], scale_tril=p[2])
    )


def test_mixture_of_normals_matches_torch():
    arrays = [RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3)), RNG.uniform(0.5, 2, (2, 3))]
    s, t = _both(_mixture_of_normals, arrays, RNG.standard_normal((4, 2)))
    for name in ("mean", "variance"):
        assert_close(getattr(s, name), getattr(t, name).detach())
    x = RNG.standard_normal((4, 2))
    assert_close(s.cdf(sg.tensor(x)), t.cdf(torch.tensor(x)).detach())
    sg.manual_seed(0)
    draws = s.sample((40000,)).numpy()
    assert np.all(
        np.abs(draws.mean(0) - s.mean.detach().numpy())
        < 5 * np.sqrt(s.variance.detach().numpy() / 40000)
    )


def test_mixture_of_multivariate_normals_matches_torch():
    tril = np.tril(RNG.standard_normal((2, 3, 2, 2))) + 2 * np.eye(2)
    arrays = [RNG.dirichlet(np.ones(3), 2), RNG.standard_normal((2, 3, 2)), tril]
    s, t = _both(_mixture_of_mvns, arrays, RNG.standard_normal((5, 2, 2)))
    assert tuple(s.event_shape) == (2,) and tuple(s.batch_shape) == (2,)
    assert_close(s.variance, t.variance.detach())
    assert tuple(s.sample((7,)).shape) == (7, 2, 2)


def test_mixture_refuses_mismatched_parts():
    with pytest.raises(ValueError, match="does not equal"):
        sg.distributions.MixtureSameFamily(
            sg.distributions.Categorical(probs=sg.ones(4) / 4),
            sg.distributions.Normal(sg.zeros(3), 1.0),
        )


def test_von_mises_matches_torch_and_samples_on_the_circle():
    arrays = [np.array([0.3, -2.0, 3.0]), np.array([0.5, 30.0, 4.0])]
    # torch normalises with a polynomial fit of log I0 (about 1e-7 relative); shardgrad's
    # i0e is exact to rounding, hence the looser tolerance
    s, t = _both(lambda d, p: d.VonMises(p[0], p[1]), arrays, np.array([1.0, -1.9, -3.1]), 1e-5)
    assert_close(s.variance, t.variance.detach())
    sg.manual_seed(1)
    draws = s.sample((20000,)).numpy()
    assert (np.abs(draws) <= math.pi).all()
    circular_mean = np.angle(np.exp(1j * draws).mean(0))
    assert np.abs(np.angle(np.exp(1j * (circular_mean - arrays[0])))).max() < 0.05
    resultant = np.abs(np.exp(1j * draws).mean(0))
    assert_close(resultant, 1 - s.variance.detach().numpy(), rtol=0.03)


def test_low_rank_normal_matches_torch():
    arrays = [
        RNG.standard_normal((2, 4)),
        RNG.standard_normal((2, 4, 2)),
        RNG.uniform(0.5, 1.5, (2, 4)),
    ]
    s, t = _both(
        lambda d, p: d.LowRankMultivariateNormal(*p), arrays, RNG.standard_normal((3, 2, 4))
    )
    for name in ("variance", "covariance_matrix", "precision_matrix", "scale_tril"):
        assert_close(getattr(s, name), getattr(t, name).detach())
    assert_close(s.entropy(), t.entropy().detach())
    sg.manual_seed(2)
    draws = s.rsample((40000,)).detach().numpy()
    cov = np.einsum("sbi,sbj->bij", draws - arrays[0], draws - arrays[0]) / 40000
    assert np.abs(cov - s.covariance_matrix.detach().numpy()).max() < 0.15


def test_low_rank_rsample_carries_gradients():
    loc = sg.zeros(3, dtype=sg.float64, requires_grad=True)
    factor = sg.tensor(RNG.standard_normal((3, 1)), requires_grad=True)
    dist = sg.distributions.LowRankMultivariateNormal(loc, factor, sg.ones(3, dtype=sg.float64))
    dist.rsample((4,)).sum().backward()
    assert_close(loc.grad, np.full(3, 4.0))
    assert factor.grad is not None
