"""TransformedDistribution and its transforms, and Gumbel, Weibull, Pareto, HalfCauchy,
NegativeBinomial, the relaxed Bernoulli and one-hot categorical, against
torch.distributions: log_prob (with gradients to the parameters), cdf/icdf, moments,
entropy, support checks, and sample statistics (the draws differ: another generator)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.distributions.transforms  # noqa: F401 - reached as torch.distributions.transforms

import shardgrad as sg
import shardgrad.distributions as sd
from tests.conftest import assert_close

RNG = np.random.default_rng(17)


def _params(*arrays):
    s = [sg.tensor(a, requires_grad=True) for a in arrays]
    t = [torch.tensor(a, requires_grad=True) for a in arrays]
    return s, t


CASES = {
    "gumbel": (
        lambda lib, p: lib.distributions.Gumbel(*p),
        [RNG.standard_normal(4), RNG.uniform(0.5, 2, 4)],
        lambda: RNG.standard_normal(4),
    ),
    "weibull": (
        lambda lib, p: lib.distributions.Weibull(*p),
        [RNG.uniform(0.5, 2, 4), RNG.uniform(0.5, 3, 4)],
        lambda: RNG.uniform(0.1, 3, 4),
    ),
    "pareto": (
        lambda lib, p: lib.distributions.Pareto(*p),
        [RNG.uniform(0.5, 1, 4), RNG.uniform(0.5, 4, 4)],
        lambda: RNG.uniform(1.0, 5, 4),
    ),
    "halfcauchy": (
        lambda lib, p: lib.distributions.HalfCauchy(*p),
        [RNG.uniform(0.5, 2, 4)],
        lambda: RNG.uniform(0.0, 5, 4),
    ),
    "negbinomial probs": (
        lambda lib, p: lib.distributions.NegativeBinomial(p[0], probs=p[1]),
        [RNG.uniform(0.5, 5, 4), RNG.uniform(0.1, 0.9, 4)],
        lambda: RNG.integers(0, 8, 4).astype(np.float64),
    ),
    "negbinomial logits": (
        lambda lib, p: lib.distributions.NegativeBinomial(p[0], logits=p[1]),
        [RNG.uniform(0.5, 5, 4), RNG.standard_normal(4)],
        lambda: RNG.integers(0, 8, 4).astype(np.float64),
    ),
    "kumaraswamy": (
        lambda lib, p: lib.distributions.Kumaraswamy(*p),
        [RNG.uniform(0.5, 3, 4), RNG.uniform(0.5, 3, 4)],
        lambda: RNG.uniform(0.05, 0.95, 4),
    ),
    "inverse gamma": (
        lambda lib, p: lib.distributions.InverseGamma(*p),
        [RNG.uniform(0.5, 3, 4), RNG.uniform(0.5, 3, 4)],
        lambda: RNG.uniform(0.2, 3, 4),
    ),
    "gamma": (
        lambda lib, p: lib.distributions.Gamma(*p),
        [RNG.uniform(0.5, 3, 4), RNG.uniform(0.5, 3, 4)],
        lambda: RNG.uniform(0.2, 3, 4),
    ),
    "fisher snedecor": (
        lambda lib, p: lib.distributions.FisherSnedecor(*p),
        [RNG.uniform(1, 8, 4), RNG.uniform(5, 12, 4)],
        lambda: RNG.uniform(0.1, 4, 4),
    ),
    "logistic normal": (
        lambda lib, p: lib.distributions.LogisticNormal(*p),
        [RNG.standard_normal((2, 3)), RNG.uniform(0.5, 1.5, (2, 3))],
        lambda: RNG.dirichlet(np.ones(4), 2),
    ),
    "relaxed bernoulli": (
        lambda lib, p: lib.distributions.RelaxedBernoulli(p[0], logits=p[1]),
        [np.array(0.7), RNG.standard_normal(4)],
        lambda: RNG.uniform(0.05, 0.95, 4),
    ),
    "relaxed one-hot": (
        lambda lib, p: lib.distributions.RelaxedOneHotCategorical(p[0], probs=p[1]),
        [np.array(0.5), RNG.dirichlet(np.ones(3), 2)],
        lambda: RNG.dirichlet(np.ones(3), 2),
    ),
    "tanh-squashed normal": (
        lambda lib, p: lib.distributions.TransformedDistribution(
            lib.distributions.Normal(p[0], p[1]),
            [
                lib.distributions.transforms.TanhTransform(),
                lib.distributions.transforms.AffineTransform(0.5, 2.0),
            ],
        ),
        [RNG.standard_normal(4), RNG.uniform(0.5, 1.5, 4)],
        lambda: RNG.uniform(-1.4, 2.4, 4),
    ),
    "exp-sigmoid chain": (
        lambda lib, p: lib.distributions.TransformedDistribution(
            lib.distributions.Normal(p[0], p[1]),
            lib.distributions.transforms.ComposeTransform(
                [
                    lib.distributions.transforms.SigmoidTransform(),
                    lib.distributions.transforms.PowerTransform(2.0),
                ]
            ),
        ),
        [RNG.standard_normal(3), RNG.uniform(0.5, 1.5, 3)],
        lambda: RNG.uniform(0.05, 0.9, 3),
    ),
    "softplus-exp": (
        lambda lib, p: lib.distributions.TransformedDistribution(
            lib.distributions.Normal(p[0], p[1]),
            [
                lib.distributions.transforms.SoftplusTransform(),
                lib.distributions.transforms.ExpTransform().inv,
            ],
        ),
        [RNG.standard_normal(3), RNG.uniform(0.5, 1.5, 3)],
        lambda: RNG.uniform(-2.0, 1.0, 3),
    ),
    "vector affine": (
        lambda lib, p: lib.distributions.TransformedDistribution(
            lib.distributions.Independent(lib.distributions.Normal(p[0], p[1]), 1),
            lib.distributions.transforms.AffineTransform(p[0], p[1], event_dim=1),
        ),
        [RNG.standard_normal((2, 3)), RNG.uniform(0.5, 1.5, (2, 3))],
        lambda: RNG.standard_normal((2, 3)),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_log_prob_and_gradients_match_torch(name):
    make, arrays, draw = CASES[name]
    s_params, t_params = _params(*arrays)
    s_dist, t_dist = make(sg, s_params), make(torch, t_params)
    assert tuple(s_dist.batch_shape) == tuple(t_dist.batch_shape)
    assert tuple(s_dist.event_shape) == tuple(t_dist.event_shape)
    value = draw()
    s_lp, t_lp = s_dist.log_prob(sg.tensor(value)), t_dist.log_prob(torch.tensor(value))
    assert_close(s_lp, t_lp.detach())
    s_lp.sum().backward()
    t_lp.sum().backward()
    for s, t in zip(s_params, t_params):
        if t.grad is not None:
            assert_close(s.grad, t.grad)


MOMENTS = ["mean", "variance", "mode", "entropy", "stddev"]


@pytest.mark.parametrize(
    "name",
    [
        "gumbel", "weibull", "pareto", "halfcauchy", "negbinomial probs", "negbinomial logits",
        "kumaraswamy", "inverse gamma", "gamma", "fisher snedecor",
    ],
)  # fmt: skip
def test_moments_and_cdf_match_torch(name):
    make, arrays, draw = CASES[name]
    s_params, t_params = _params(*arrays)
    s_dist, t_dist = make(sg, s_params), make(torch, t_params)
    for attr in MOMENTS:
        try:
            want = getattr(t_dist, attr)
            want = want() if callable(want) else want
        except NotImplementedError:
            continue
        got = getattr(s_dist, attr)
        assert_close(got() if callable(got) else got, want.detach())
    if name.startswith("negbinomial") or name == "fisher snedecor":  # no cdf in torch
        return
    value = draw()
    assert_close(s_dist.cdf(sg.tensor(value)), t_dist.cdf(torch.tensor(value)).detach())
    if name not in ("weibull", "inverse gamma", "gamma"):  # torch has no icdf for these
        q = RNG.uniform(0.05, 0.95, 4)
        assert_close(s_dist.icdf(sg.tensor(q)), t_dist.icdf(torch.tensor(q)).detach())


@pytest.mark.parametrize(
    "name", ["gumbel", "weibull", "pareto", "negbinomial probs", "kumaraswamy", "fisher snedecor"]
)
def test_sample_statistics(name):
    make, arrays, _ = CASES[name]
    dist = make(sg, [sg.tensor(a) for a in arrays])
    sg.manual_seed(0)
    draws = dist.sample((40000,)).numpy()
    mean = dist.mean.numpy()
    spread = dist.stddev.numpy()
    finite = np.isfinite(mean) & np.isfinite(spread)
    assert np.all(np.abs(draws.mean(0) - mean)[finite] < 5 * spread[finite] / math.sqrt(40000))


def test_rsample_carries_gradients_through_transforms():
    loc = sg.tensor([0.3, -0.2], requires_grad=True)
    dist = sd.TransformedDistribution(sd.Normal(loc, 1.0), [sd.transforms.TanhTransform()])
    assert dist.has_rsample
    x = dist.rsample((5,))
    assert (x.abs() < 1).numpy().all()
    x.sum().backward()
    assert loc.grad is not None and (loc.grad.numpy() > 0).all()


def test_relaxed_draws_live_where_they_should():
    sg.manual_seed(1)
    onehot = sd.RelaxedOneHotCategorical(0.1, logits=sg.tensor([[2.0, 0.0, -1.0]])).rsample((200,))
    assert_close(onehot.sum(-1), np.ones((200, 1)))
    bern = sd.RelaxedBernoulli(0.1, probs=sg.tensor([0.8])).sample((2000,)).numpy()
    assert ((bern > 0) & (bern < 1)).all() and abs((bern > 0.5).mean() - 0.8) < 0.03


def test_support_is_checked():
    with pytest.raises(ValueError, match="support"):
        sd.Pareto(sg.tensor(1.0), sg.tensor(2.0)).log_prob(sg.tensor(0.5))
    with pytest.raises(ValueError, match="support"):
        sd.NegativeBinomial(sg.tensor(3.0), probs=sg.tensor(0.5)).log_prob(sg.tensor(1.5))
    assert math.isinf(
        float(sd.HalfCauchy(sg.tensor(1.0), validate_args=False).log_prob(sg.tensor(-1.0)))
    )


KL_PAIRS = {
    "gumbel": lambda d, a, b, c, e: (d.Gumbel(a, b), d.Gumbel(c, e)),
    "halfnormal": lambda d, a, b, c, e: (d.HalfNormal(a), d.HalfNormal(b)),
    "pareto": lambda d, a, b, c, e: (d.Pareto(a, b), d.Pareto(a * 0.5, e)),
    "pareto outside": lambda d, a, b, c, e: (d.Pareto(a * 0.5, b), d.Pareto(a, e)),
    "cauchy": lambda d, a, b, c, e: (d.Cauchy(a, b), d.Cauchy(c, e)),
    "geometric": lambda d, a, b, c, e: (d.Geometric(a / 3), d.Geometric(b / 3)),
    "binomial": lambda d, a, b, c, e: (d.Binomial(5, a / 3), d.Binomial(5, b / 3)),
    "exponential-gamma": lambda d, a, b, c, e: (d.Exponential(a), d.Gamma(b, c)),
    "transformed": lambda d, a, b, c, e: (
        d.TransformedDistribution(d.Normal(a, b), [d.transforms.ExpTransform()]),
        d.TransformedDistribution(d.Normal(c, e), [d.transforms.ExpTransform()]),
    ),
}


@pytest.mark.parametrize("name", list(KL_PAIRS))
def test_kl_divergences_match_torch_with_gradients(name):
    arrays = [RNG.uniform(0.5, 2.0, 3) for _ in range(4)]
    s_in = [sg.tensor(a, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    s_kl = sg.distributions.kl_divergence(*KL_PAIRS[name](sg.distributions, *s_in))
    t_kl = torch.distributions.kl_divergence(*KL_PAIRS[name](torch.distributions, *t_in))
    assert_close(s_kl, t_kl.detach(), rtol=1e-10)
    if np.isfinite(t_kl.detach().numpy()).all():
        s_kl.sum().backward()
        t_kl.sum().backward()
        for s, t in zip(s_in, t_in):
            if t.grad is not None:
                assert_close(s.grad, t.grad, rtol=1e-10)


def test_kl_of_differently_transformed_distributions_is_refused():
    d = sg.distributions
    p = d.TransformedDistribution(d.Normal(0.0, 1.0), [d.transforms.ExpTransform()])
    q = d.TransformedDistribution(d.Normal(0.0, 1.0), [d.transforms.AffineTransform(0.0, 2.0)])
    with pytest.raises(NotImplementedError, match="same transforms"):
        d.kl_divergence(p, q)
    assert d.transforms.AffineTransform(1.0, 2.0) == d.transforms.AffineTransform(1.0, 2.0)
    assert d.transforms.AffineTransform(1.0, 2.0) != d.transforms.AffineTransform(1.0, 3.0)


def test_stick_breaking_and_softmax_transforms_match_torch():
    x = RNG.standard_normal((3, 4))
    ours, theirs = sg.distributions.transforms, torch.distributions.transforms
    sb_s, sb_t = ours.StickBreakingTransform(), theirs.StickBreakingTransform()
    y_s, y_t = sb_s(sg.tensor(x)), sb_t(torch.tensor(x))
    assert_close(y_s, y_t)
    assert_close(y_s.sum(-1), np.ones(3))
    assert_close(sb_s.inv(y_s), x, rtol=1e-9)
    assert_close(
        sb_s.log_abs_det_jacobian(sg.tensor(x), y_s),
        sb_t.log_abs_det_jacobian(torch.tensor(x), y_t),
    )
    assert sb_s.forward_shape((2, 4)) == (2, 5) and sb_s.inverse_shape((2, 5)) == (2, 4)
    assert_close(ours.SoftmaxTransform()(sg.tensor(x)), theirs.SoftmaxTransform()(torch.tensor(x)))


def test_distribution_utils_match_torch():
    p = np.array([0.0, 0.2, 0.8, 1.0])
    for binary in (False, True):
        assert_close(
            sg.distributions.utils.probs_to_logits(sg.tensor(p), is_binary=binary),
            torch.distributions.utils.probs_to_logits(torch.tensor(p), is_binary=binary),
        )
        logits = np.array([[0.5, -1.0, 2.0]])
        assert_close(
            sg.distributions.utils.logits_to_probs(sg.tensor(logits), is_binary=binary),
            torch.distributions.utils.logits_to_probs(torch.tensor(logits), is_binary=binary),
        )
