"""shardgrad.distributions against torch.distributions in float64: log_prob, cdf, entropy,
mean, variance and kl_divergence (values and gradients with respect to the parameters),
shapes, validation errors, and the draws by their statistics (the streams are not torch's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

rng = np.random.default_rng(9)


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


POS = rng.uniform(0.5, 2.0, (3,))
POS2 = rng.uniform(0.5, 3.0, (3,))
REAL = rng.standard_normal(3)
PROBS = rng.uniform(0.1, 0.9, (3,))
SIMPLEX = rng.dirichlet(np.ones(4), size=2)
SPD = (lambda m: m @ m.T + 3 * np.eye(3))(rng.standard_normal((3, 3)))


def _cholesky(t):
    return (torch if isinstance(t, torch.Tensor) else sg).linalg.cholesky(t)


# name -> (constructor taking (lib, *params), params, a valid value)
CASES = {
    "Normal": (lambda d, a, b: d.Normal(a, b), (REAL, POS), REAL + 0.3),
    "Uniform": (lambda d, a, b: d.Uniform(a, a + b), (REAL, POS), REAL + 0.25),
    "Exponential": (lambda d, a: d.Exponential(a), (POS,), POS2),
    "Laplace": (lambda d, a, b: d.Laplace(a, b), (REAL, POS), REAL - 0.7),
    "Gamma": (lambda d, a, b: d.Gamma(a, b), (POS, POS2), POS2),
    "Beta": (lambda d, a, b: d.Beta(a, b), (POS, POS2), PROBS),
    "Bernoulli": (lambda d, p: d.Bernoulli(probs=p), (PROBS,), np.array([0.0, 1.0, 1.0])),
    "Bernoulli-logits": (lambda d, l: d.Bernoulli(logits=l), (REAL,), np.array([1.0, 0.0, 1.0])),
    "Categorical": (lambda d, p: d.Categorical(probs=p), (SIMPLEX,), np.array([3, 0])),
    "Categorical-logits": (
        lambda d, l: d.Categorical(logits=l),
        (np.log(SIMPLEX),),
        np.array([1, 2]),
    ),
    "Poisson": (lambda d, r: d.Poisson(r), (POS2,), np.array([0.0, 2.0, 5.0])),
    "Dirichlet": (lambda d, c: d.Dirichlet(c), (POS2,), SIMPLEX[0, :3] / SIMPLEX[0, :3].sum()),
    "MultivariateNormal-cov": (
        lambda d, m, c: d.MultivariateNormal(m, covariance_matrix=c),
        (REAL, SPD),
        REAL * 0.5,
    ),
    "MultivariateNormal-tril": (
        lambda d, m, c: d.MultivariateNormal(m, scale_tril=_cholesky(c)),
        (REAL, SPD),
        REAL + 1,
    ),
    "MultivariateNormal-precision": (
        lambda d, m, c: d.MultivariateNormal(m, precision_matrix=c),
        (REAL, SPD),
        REAL - 1,
    ),
    "Independent": (
        lambda d, a, b: d.Independent(d.Normal(a.reshape(1, 3), b), 1),
        (REAL, POS),
        REAL,
    ),
    "LogNormal": (lambda d, a, b: d.LogNormal(a, b), (REAL, POS), POS2),
    "HalfNormal": (lambda d, b: d.HalfNormal(b), (POS,), POS2),
    "Cauchy": (lambda d, a, b: d.Cauchy(a, b), (REAL, POS), REAL * 2),
    "StudentT": (lambda d, df, a, b: d.StudentT(df * 2, a, b), (POS2, REAL, POS), REAL - 0.2),
    "Chi2": (lambda d, df: d.Chi2(df), (POS2,), POS),
    "Geometric": (lambda d, p: d.Geometric(probs=p), (PROBS,), np.array([0.0, 3.0, 1.0])),
    "Geometric-logits": (lambda d, l: d.Geometric(logits=l), (REAL,), np.array([2.0, 0.0, 5.0])),
    "Binomial": (lambda d, p: d.Binomial(10, probs=p), (PROBS,), np.array([0.0, 3.0, 10.0])),
    "Binomial-logits": (
        lambda d, l: d.Binomial(d_t(d, [4.0, 5.0, 6.0]), logits=l),
        (REAL,),
        np.array([1.0, 5.0, 2.0]),
    ),
    "OneHotCategorical": (lambda d, p: d.OneHotCategorical(probs=p), (SIMPLEX,), np.eye(4)[[3, 0]]),
    "Multinomial": (
        lambda d, p: d.Multinomial(6, probs=p),
        (SIMPLEX,),
        np.array([[1.0, 2, 0, 3], [0, 0, 6, 0]]),
    ),
}
_STATS = ("mean", "variance", "entropy")
_NO_STAT = {
    ("Categorical", "mean"), ("Categorical-logits", "mean"), ("Poisson", "entropy"),
    ("Uniform", "entropy-grad"), ("Binomial", "entropy"), ("Binomial-logits", "entropy"),
    ("Multinomial", "entropy"),
}  # fmt: skip


def _evaluate(lib, name: str, what: str):
    make, params, value = CASES[name]
    ps = [lib.tensor(p, requires_grad=True) for p in params]
    dist = make(lib.distributions, *ps)
    if what == "log_prob":
        out = dist.log_prob(lib.tensor(value))
    elif what == "cdf":
        out = dist.cdf(lib.tensor(value))
    elif what == "entropy":
        out = dist.entropy()
    else:
        out = getattr(dist, what)
    grads = []
    if out.requires_grad:
        w = np.random.default_rng(1).standard_normal(tuple(out.shape))
        (out * lib.tensor(w)).sum().backward()
        grads = [_np(p.grad) if p.grad is not None else np.zeros(p.shape) for p in ps]
    return _np(out), grads, tuple(dist.batch_shape), tuple(dist.event_shape)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("what", ["log_prob", *_STATS])
def test_matches_torch(name: str, what: str):
    if (name, what) in _NO_STAT:
        pytest.skip(f"torch's {name} has no {what}")
    ours, theirs = _evaluate(sg, name, what), _evaluate(torch, name, what)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-9, atol=1e-12)
    assert ours[2:] == theirs[2:]  # batch and event shapes
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["Normal", "Uniform", "Exponential", "Laplace"])
def test_cdf_matches_torch(name):
    ours, theirs = _evaluate(sg, name, "cdf"), _evaluate(torch, name, "cdf")
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-10)
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


KL_PAIRS = [
    (lambda d: d.Normal(0.3, 1.2), lambda d: d.Normal(-0.5, 0.7)),
    (lambda d: d.Bernoulli(0.3), lambda d: d.Bernoulli(logits=1.5)),
    (lambda d: d.Categorical(d_t(d, SIMPLEX[0])), lambda d: d.Categorical(d_t(d, SIMPLEX[1]))),
    (lambda d: d.Uniform(0.0, 1.0), lambda d: d.Uniform(-1.0, 2.0)),
    (lambda d: d.Exponential(0.5), lambda d: d.Exponential(2.0)),
    (lambda d: d.Laplace(0.1, 1.0), lambda d: d.Laplace(0.5, 2.0)),
    (lambda d: d.Gamma(d_t(d, 2.0), 3.0), lambda d: d.Gamma(d_t(d, 0.7), 1.5)),
    (lambda d: d.Beta(d_t(d, 2.0), 3.0), lambda d: d.Beta(d_t(d, 0.7), 1.5)),
    (lambda d: d.Poisson(2.0), lambda d: d.Poisson(3.5)),
    (lambda d: d.Dirichlet(d_t(d, POS)), lambda d: d.Dirichlet(d_t(d, POS2))),
    (
        lambda d: d.MultivariateNormal(d_t(d, REAL), covariance_matrix=d_t(d, SPD)),
        lambda d: d.MultivariateNormal(d_t(d, REAL * 0), covariance_matrix=d_t(d, SPD * 2)),
    ),
    (
        lambda d: d.Independent(d.Normal(d_t(d, REAL), d_t(d, POS)), 1),
        lambda d: d.Independent(d.Normal(d_t(d, POS), d_t(d, POS2)), 1),
    ),
]


def d_t(d, array):
    """A float64 tensor of the library `d` (torch.distributions or shardgrad.distributions)."""
    lib = torch if d is torch.distributions else sg
    return lib.tensor(array, dtype=lib.float64)


@pytest.mark.parametrize("make_p, make_q", KL_PAIRS, ids=[f"pair{i}" for i in range(len(KL_PAIRS))])
def test_kl_divergence_matches_torch(make_p, make_q):
    ours = sg.distributions.kl_divergence(make_p(sg.distributions), make_q(sg.distributions))
    theirs = torch.distributions.kl_divergence(
        make_p(torch.distributions), make_q(torch.distributions)
    )
    np.testing.assert_allclose(_np(ours), _np(theirs), rtol=1e-9, atol=1e-12)


def test_kl_gradients_and_unknown_pairs():
    for lib in (sg, torch):
        loc = lib.tensor(0.3, dtype=lib.float64, requires_grad=True)
        kl = lib.distributions.kl_divergence(
            lib.distributions.Normal(loc, 1.5), lib.distributions.Normal(-1.0, 0.5)
        )
        kl.backward()
        if lib is sg:
            ours = float(loc.grad)
        else:
            assert ours == pytest.approx(float(loc.grad), rel=1e-12)
    with pytest.raises(NotImplementedError):
        sg.distributions.kl_divergence(
            sg.distributions.Normal(0.0, 1.0), sg.distributions.Bernoulli(0.5)
        )


@pytest.mark.parametrize(
    "make, mean, var",
    [
        (lambda d: d.Normal(1.5, 2.0), 1.5, 4.0),
        (lambda d: d.Uniform(-1.0, 3.0), 1.0, 16 / 12),
        (lambda d: d.Exponential(2.0), 0.5, 0.25),
        (lambda d: d.Laplace(0.5, 1.5), 0.5, 4.5),
        (lambda d: d.Gamma(3.0, 2.0), 1.5, 0.75),
        (lambda d: d.Beta(2.0, 3.0), 0.4, 0.04),
        (lambda d: d.Bernoulli(0.3), 0.3, 0.21),
        (lambda d: d.Poisson(3.0), 3.0, 3.0),
        (lambda d: d.LogNormal(0.2, 0.4), np.exp(0.28), (np.exp(0.16) - 1) * np.exp(0.56)),
        (lambda d: d.HalfNormal(2.0), 2.0 * np.sqrt(2 / np.pi), 4.0 * (1 - 2 / np.pi)),
        (lambda d: d.StudentT(6.0, 1.0, 0.5), 1.0, 0.25 * 6 / 4),
        (lambda d: d.Chi2(5.0), 5.0, 10.0),
        (lambda d: d.Geometric(0.3), 1 / 0.3 - 1, (1 / 0.3 - 1) / 0.3),
        (lambda d: d.Binomial(12, probs=0.35), 12 * 0.35, 12 * 0.35 * 0.65),
    ],
    ids=[
        "normal",
        "uniform",
        "exponential",
        "laplace",
        "gamma",
        "beta",
        "bernoulli",
        "poisson",
        "lognormal",
        "halfnormal",
        "student-t",
        "chi2",
        "geometric",
        "binomial",
    ],
)
def test_draws_have_the_distribution_s_moments(make, mean, var):
    sg.manual_seed(0)
    draws = _np(make(sg.distributions).sample((100_000,)))
    assert draws.shape == (100_000,)
    assert abs(draws.mean() - mean) < 6 * np.sqrt(var / draws.size)
    assert abs(draws.var() - var) < 0.03 * var


def test_vector_draws_and_categorical_frequencies():
    sg.manual_seed(1)
    mvn = sg.distributions.MultivariateNormal(sg.tensor(REAL), covariance_matrix=sg.tensor(SPD))
    x = _np(mvn.sample((50_000,)))
    assert x.shape == (50_000, 3)
    np.testing.assert_allclose(np.cov(x.T), SPD, atol=0.15)
    cat = sg.distributions.Categorical(sg.tensor(SIMPLEX))
    s = _np(cat.sample((40_000,)))
    assert s.shape == (40_000, 2)
    for row in range(2):
        freq = np.bincount(s[:, row], minlength=4) / s.shape[0]
        np.testing.assert_allclose(freq, SIMPLEX[row], atol=0.01)
    d = _np(sg.distributions.Dirichlet(sg.tensor(POS2)).sample((20_000,)))
    np.testing.assert_allclose(d.sum(-1), 1.0)
    np.testing.assert_allclose(d.mean(0), POS2 / POS2.sum(), atol=0.01)


def test_rsample_carries_gradients_to_the_parameters():
    loc = sg.tensor([0.5, -1.0], dtype=sg.float64, requires_grad=True)
    scale = sg.tensor([1.0, 2.0], dtype=sg.float64, requires_grad=True)
    draws = sg.distributions.Normal(loc, scale).rsample((1000,))
    draws.mean().backward()
    np.testing.assert_allclose(_np(loc.grad), [0.5, 0.5])  # d mean / d loc
    assert sg.distributions.Normal(loc, scale).sample((3,)).requires_grad is False
    with pytest.raises(NotImplementedError, match="rsample"):
        sg.distributions.Poisson(1.0).rsample()


@pytest.mark.parametrize(
    "call",
    [
        lambda lib: lib.distributions.Normal(0.0, -1.0),
        lambda lib: lib.distributions.Uniform(1.0, 0.0),
        lambda lib: lib.distributions.Bernoulli(probs=0.3, logits=0.2),
        lambda lib: lib.distributions.Bernoulli(probs=0.3).log_prob(lib.tensor(2.0)),
        lambda lib: lib.distributions.Categorical(probs=lib.tensor([0.2, 0.8])).log_prob(
            lib.tensor(3)
        ),
        lambda lib: lib.distributions.MultivariateNormal(lib.zeros(2)),
    ],
    ids=["scale", "bounds", "probs and logits", "bernoulli support", "categorical support", "mvn"],
)
def test_validation_errors_match_torch(call):
    messages = []
    for lib in (sg, torch):
        with pytest.raises(ValueError) as info:
            call(lib)
        messages.append(str(info.value).replace("torch.Size", "shardgrad.Size"))
    assert messages[0] == messages[1]


def test_reprs_match_torch():
    for make in (
        lambda lib: lib.distributions.Normal(lib.zeros(2), 1.0),
        lambda lib: lib.distributions.Categorical(logits=lib.zeros(3)),
        lambda lib: lib.distributions.MultivariateNormal(lib.zeros(2), lib.eye(2)),
    ):
        assert repr(make(sg)).replace("shardgrad.Size", "torch.Size") == repr(make(torch))


def test_multinomial_and_one_hot_draws():
    sg.manual_seed(2)
    counts = _np(sg.distributions.Multinomial(6, sg.tensor(SIMPLEX)).sample((20_000,)))
    assert counts.shape == (20_000, 2, 4) and (counts.sum(-1) == 6).all()
    np.testing.assert_allclose(counts.mean(0), 6 * SIMPLEX, atol=0.05)
    hot = _np(sg.distributions.OneHotCategorical(sg.tensor(SIMPLEX)).sample((10_000,)))
    assert hot.shape == (10_000, 2, 4) and (hot.sum(-1) == 1).all()
    np.testing.assert_allclose(hot.mean(0), SIMPLEX, atol=0.02)
    cauchy = _np(sg.distributions.Cauchy(1.0, 0.5).sample((20_001,)))
    assert abs(np.median(cauchy) - 1.0) < 0.03
