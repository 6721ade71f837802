"""Reparameterized sampling of Gamma and the distributions built on it (Beta, Dirichlet,
Chi2, StudentT, FisherSnedecor, InverseGamma).

A Gamma draw reaches its concentration through the implicit gradient dx/da =
-(dF/da) / f(x; a). That derivative is checked against a 40-digit reference (mpmath),
against torch's `_standard_gamma_grad` (a fitted approximation, good to a few parts in
10^3), and, through whole distributions, by unbiasedness: the mean of d(draw)/d(parameter)
over many draws is the derivative of the distribution's mean.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch

import shardgrad as sg
from shardgrad.ops._special_more import gamma_sample_grad
from tests.conftest import to_numpy

sd = sg.distributions


def _reference(a: float, x: float) -> float:
    """-(dP/da) / p(x; a) in 40 digits, through Q where P is close to 1."""
    with mpmath.workdps(40):
        a_, x_ = mpmath.mpf(a), mpmath.mpf(x)
        upper = mpmath.diff(lambda t: mpmath.gammainc(t, x_, mpmath.inf, regularized=True), a_)
        density = mpmath.exp(-x_ + (a_ - 1) * mpmath.log(x_) - mpmath.loggamma(a_))
        return float(upper / density)


@pytest.mark.parametrize(
    ("a", "x"),
    [
        (0.01, 1e-200),  # a small concentration's draws sit near 0
        (0.01, 3.0),
        (0.3, 0.2),
        (1.0, 0.5),
        (1.0, 12.0),  # far in the upper tail
        (2.5, 3.49),  # either side of the switch from series to continued fraction
        (2.5, 3.51),
        (10.0, 4.0),
        (10.0, 25.0),
        (80.0, 80.9),
        (500.0, 520.0),
        (5000.0, 4800.0),
        (5000.0, 5250.0),
        (1e5, 1e5 - 10),
        (0.5, 700.0),  # Q(a, x) ~ 1e-305
    ],
)
def test_gamma_sample_gradient_matches_a_high_precision_reference(a, x):
    ours = gamma_sample_grad(np.array([a]), np.array([x]))[0]
    np.testing.assert_allclose(ours, _reference(a, x), rtol=1e-12)


def test_gamma_sample_gradient_is_close_to_torchs_approximation():
    rng = np.random.default_rng(0)
    for a in (0.2, 1.0, 3.0, 10.0, 100.0):
        x = rng.gamma(a, size=2000)
        alpha = np.full_like(x, a)
        theirs = torch._standard_gamma_grad(torch.tensor(alpha), torch.tensor(x)).numpy()
        np.testing.assert_allclose(gamma_sample_grad(alpha, x), theirs, rtol=3e-3)


def test_gamma_sample_gradient_edges():
    out = gamma_sample_grad(
        np.array([1.0, 1.0, -1.0, np.nan, 2.0]), np.array([0, np.nan, 1, 1, np.inf])
    )
    assert out[0] == 0.0 and np.isnan(out[1:]).all()
    assert gamma_sample_grad(np.array(2), np.array(3)).dtype == np.float64  # integers promote
    assert gamma_sample_grad(np.float32([2]), np.float32([3])).dtype == np.float32


def _mean_gradient(make, params: dict, n: int = 200_000, seed: int = 0) -> dict:
    """The mean over n draws of d(draw)/d(each parameter)."""
    sg.manual_seed(seed)
    leaves = {k: sg.tensor(v, dtype=sg.float64, requires_grad=True) for k, v in params.items()}
    draws = make(**leaves).rsample((n,))
    draws.sum().backward()
    return {k: to_numpy(v.grad) / n for k, v in leaves.items()}


def test_gamma_rsample_is_unbiased():
    """E[x] = a / rate: d/da = 1 / rate and d/drate = -a / rate^2, and E[x^2] = a (a + 1) /
    rate^2."""
    a, rate = np.array([0.3, 2.0, 40.0]), np.array([2.0, 0.5, 3.0])
    got = _mean_gradient(lambda a, rate: sd.Gamma(a, rate), {"a": a, "rate": rate})
    np.testing.assert_allclose(got["a"], 1 / rate, rtol=0.02)
    np.testing.assert_allclose(got["rate"], -a / rate**2, rtol=0.02)
    sg.manual_seed(1)
    leaf = sg.tensor(a, requires_grad=True)
    (sd.Gamma(leaf, 1.0).rsample((200_000,)) ** 2).mean(0).sum().backward()
    np.testing.assert_allclose(to_numpy(leaf.grad), 2 * a + 1, rtol=0.03)


def test_beta_and_dirichlet_rsample_are_unbiased():
    """E[x] = c1 / (c1 + c0): d/dc1 = c0 / (c1 + c0)^2, d/dc0 = -c1 / (c1 + c0)^2; the
    Dirichlet's first coordinate likewise."""
    c1, c0 = np.array([0.5, 3.0]), np.array([2.0, 1.5])
    got = _mean_gradient(lambda c1, c0: sd.Beta(c1, c0), {"c1": c1, "c0": c0})
    total = c1 + c0
    np.testing.assert_allclose(got["c1"], c0 / total**2, rtol=0.03)
    np.testing.assert_allclose(got["c0"], -c1 / total**2, rtol=0.03)
    alpha = np.array([0.7, 2.0, 4.0])
    sg.manual_seed(2)
    leaf = sg.tensor(alpha, requires_grad=True)
    sd.Dirichlet(leaf).rsample((200_000,))[:, 0].mean().backward()
    expected = -alpha[0] / alpha.sum() ** 2 * np.ones(3)
    expected[0] += 1 / alpha.sum()
    np.testing.assert_allclose(to_numpy(leaf.grad), expected, rtol=0.03, atol=2e-3)


def test_derived_rsamples_carry_gradients():
    """StudentT's variance df / (df - 2), InverseGamma's mean rate / (c - 1), Chi2's mean
    df, and FisherSnedecor's mean df2 / (df2 - 2), each by its mean gradient."""
    got = _mean_gradient(lambda df: sd.Chi2(df), {"df": np.array([0.8, 5.0])})
    np.testing.assert_allclose(got["df"], [1.0, 1.0], rtol=0.02)
    got = _mean_gradient(lambda rate: sd.InverseGamma(6.0, rate), {"rate": np.array(2.0)})
    np.testing.assert_allclose(got["rate"], 1 / 5.0, rtol=0.02)
    got = _mean_gradient(lambda df2: sd.FisherSnedecor(5.0, df2), {"df2": np.array(9.0)})
    np.testing.assert_allclose(got["df2"], -2 / 7.0**2, rtol=0.1)
    sg.manual_seed(3)
    df = sg.tensor(9.0, dtype=sg.float64, requires_grad=True)
    (sd.StudentT(df, 1.0, 2.0).rsample((400_000,)) - 1.0).pow(2).mean().backward()
    np.testing.assert_allclose(to_numpy(df.grad), 4.0 * -2 / 7.0**2, rtol=0.1)


def test_sample_is_rsample_without_the_graph():
    a = sg.tensor([0.5, 4.0], requires_grad=True)
    sg.manual_seed(7)
    r = sd.Beta(a, 2.0).rsample((5,))
    sg.manual_seed(7)
    s = sd.Beta(a, 2.0).sample((5,))
    assert r.requires_grad and not s.requires_grad
    np.testing.assert_array_equal(to_numpy(r), to_numpy(s))
    names = ["Gamma", "Beta", "Dirichlet", "Chi2", "StudentT", "FisherSnedecor", "InverseGamma"]
    for name in names:
        assert getattr(sd, name).has_rsample == getattr(torch.distributions, name).has_rsample


def test_draws_clamped_away_from_zero_keep_their_gradient():
    """A tiny concentration's draws underflow; torch clamps the value to the smallest normal
    number and keeps the gradient path, and so does shardgrad."""
    a = sg.tensor([0.002], dtype=sg.float32, requires_grad=True)
    sg.manual_seed(0)
    x = sd.Gamma(a, 1.0).rsample((2000,))
    assert float(x.min()) >= np.finfo(np.float32).tiny
    x.sum().backward()
    assert np.isfinite(to_numpy(a.grad)).all()
