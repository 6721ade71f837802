"""ContinuousBernoulli, LKJCholesky and Wishart against torch: densities, entropies and
moments with gradients, and draws checked by their moments (the draws themselves come from
shardgrad's generators)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import assert_close, to_numpy

# df = 3.5 for 3 x 3 matrices is allowed but warned about (by torch's sampler too)
pytestmark = [
    pytest.mark.filterwarnings("ignore:Singular sample:UserWarning"),
    pytest.mark.filterwarnings("ignore:Low df:UserWarning"),
]
RNG = np.random.default_rng(11)
A = RNG.standard_normal((3, 3))
COV = A @ A.T + 3 * np.eye(3)


@pytest.mark.parametrize("param", ["probs", "logits"])
def test_continuous_bernoulli_matches_torch(param):
    """Both sides of the unstable region around 1/2 (Taylor expansions inside it)."""
    p = np.array([0.01, 0.2, 0.4995, 0.5, 0.5004, 0.7, 0.999])
    given = p if param == "probs" else np.log(p / (1 - p))
    v = np.array([0.0, 0.3, 0.5, 0.9, 1.0, 0.2, 0.7])
    results = []
    for lib in (sg, torch):
        leaf = lib.tensor(given, requires_grad=True)
        d = lib.distributions.ContinuousBernoulli(**{param: leaf})
        x = lib.tensor(v)
        values = [d.log_prob(x), d.mean, d.variance, d.entropy(), d.cdf(x), d.icdf(x)]
        sum(t.sum() for t in values).backward()
        results.append([*values, leaf.grad])
    for ours, theirs in zip(*results):
        assert_close(ours, theirs, rtol=1e-9, atol=1e-12)


def test_continuous_bernoulli_rsample_has_its_mean_and_gradient():
    # (inside lims around 1/2 a draw is the uniform itself, as in torch: no gradient there)
    probs = sg.tensor([0.1, 0.3, 0.8], dtype=sg.float64, requires_grad=True)
    d = sg.distributions.ContinuousBernoulli(probs)
    sg.manual_seed(0)
    draws = d.rsample((100_000,))
    assert float(draws.min()) >= 0 and float(draws.max()) <= 1
    np.testing.assert_allclose(to_numpy(draws.mean(0)), to_numpy(d.mean), atol=5e-3)
    draws.mean(0).sum().backward()
    fresh = sg.distributions.ContinuousBernoulli(probs)
    mean_grad = sg.autograd.grad(fresh.mean.sum(), probs)[0]
    np.testing.assert_allclose(to_numpy(probs.grad), to_numpy(mean_grad), rtol=0.05)
    with pytest.raises(ValueError, match="probs"):
        sg.distributions.ContinuousBernoulli(sg.tensor([1.5]))  # validated before clamping


@pytest.mark.parametrize(("dim", "concentration"), [(2, 0.5), (3, 1.0), (4, [0.7, 2.5])])
def test_lkj_cholesky_matches_torch_and_draws_correlations(dim, concentration):
    tc = torch.tensor(concentration, dtype=torch.float64, requires_grad=True)
    sc = sg.tensor(concentration, dtype=sg.float64, requires_grad=True)
    theirs = torch.distributions.LKJCholesky(dim, tc)
    ours = sg.distributions.LKJCholesky(dim, sc)
    torch.manual_seed(0)
    factors = theirs.sample((5,))
    lp_s, lp_t = ours.log_prob(sg.tensor(factors.numpy())), theirs.log_prob(factors)
    assert_close(lp_s, lp_t, rtol=1e-12)
    lp_s.sum().backward()
    lp_t.sum().backward()
    assert_close(sc.grad, tc.grad, rtol=1e-10)
    sg.manual_seed(1)
    low = to_numpy(ours.sample((4000,)))
    assert low.shape == (4000, *np.shape(concentration), dim, dim)
    corr = low @ np.swapaxes(low, -1, -2)
    np.testing.assert_allclose(np.diagonal(corr, axis1=-2, axis2=-1), 1.0, atol=1e-12)
    # an off-diagonal correlation has mean 0 and variance 1 / (2 concentration + dim - 1)
    expected = 1 / (2 * np.asarray(concentration) + dim - 1)
    np.testing.assert_allclose(corr[..., 1, 0].var(0), expected, rtol=0.08)
    assert np.all(np.abs(corr[..., 1, 0].mean(0)) < 0.05)
    with pytest.raises(ValueError, match="greater than or equal to 2"):
        sg.distributions.LKJCholesky(1)


@pytest.mark.parametrize("given", ["covariance_matrix", "precision_matrix", "scale_tril"])
@pytest.mark.parametrize("df", [4.5, [3.5, 7.0]])
def test_wishart_matches_torch(given, df):
    matrix = {
        "covariance_matrix": COV,
        "precision_matrix": np.linalg.inv(COV),
        "scale_tril": np.linalg.cholesky(COV),
    }[given]
    torch.manual_seed(0)
    df_t = torch.tensor(df, dtype=torch.float64) if isinstance(df, list) else df
    values = torch.distributions.Wishart(df_t, covariance_matrix=torch.tensor(COV)).sample((4,))
    results = []
    for lib in (sg, torch):
        leaf = lib.tensor(matrix, requires_grad=True)
        d = lib.distributions.Wishart(
            lib.tensor(df) if isinstance(df, list) else df, **{given: leaf}
        )
        out = [d.log_prob(lib.tensor(values.numpy())), d.entropy(), d.mean, d.variance, d.mode]
        (out[0].sum() + out[1].sum()).backward()
        results.append([*out, leaf.grad])
    if given == "scale_tril":  # torch's cholesky_solve also sends gradient to the upper
        results[1][-1] = results[1][-1].tril()  # triangle, which no formula reads
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-9, atol=1e-10)


def test_wishart_rsample_has_its_mean_and_reaches_df():
    """E[X] = df * covariance, so d E[sum X] / d df = sum(covariance): the draws reach df
    through the chi-squared diagonal of the Bartlett factor."""
    df = sg.tensor(6.0, dtype=sg.float64, requires_grad=True)
    d = sg.distributions.Wishart(df, covariance_matrix=sg.tensor(COV))
    sg.manual_seed(2)
    draws = d.rsample((40_000,))
    np.testing.assert_allclose(to_numpy(draws.mean(0)), 6 * COV, rtol=0.02, atol=0.1)
    draws.sum((1, 2)).mean().backward()
    np.testing.assert_allclose(float(df.grad), COV.sum(), rtol=0.03)
    with pytest.raises(ValueError, match="greater than ndim - 1"):
        sg.distributions.Wishart(1.5, covariance_matrix=sg.tensor(COV))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sg.distributions.Wishart(2.5, covariance_matrix=sg.tensor(COV))
    assert any("Low df" in str(w.message) for w in caught)
