"""kl_divergence for every pair of families torch registers (except its generic
ExponentialFamily Bregman form): values, including the infinite
ones where p has mass outside q's support, and gradients, against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import kl as torch_kl

import shardgrad as sg
from tests.conftest import to_numpy

P = {  # parameters of batch shape (3,), some putting p outside q's support
    "Bernoulli": lambda L, t: L.distributions.Bernoulli(t([0.2, 0.5, 0.9])),
    "Beta": lambda L, t: L.distributions.Beta(t([0.5, 2.0, 3.0]), t([1.5, 0.7, 3.0])),
    "ContinuousBernoulli": lambda L, t: L.distributions.ContinuousBernoulli(t([0.2, 0.5, 0.8])),
    "Exponential": lambda L, t: L.distributions.Exponential(t([0.5, 1.0, 3.0])),
    "Gamma": lambda L, t: L.distributions.Gamma(t([0.8, 2.0, 5.0]), t([1.0, 0.5, 2.0])),
    "Gumbel": lambda L, t: L.distributions.Gumbel(t([0.0, 1.0, -2.0]), t([1.0, 0.5, 2.0])),
    "Laplace": lambda L, t: L.distributions.Laplace(t([0.0, 1.0, -2.0]), t([1.0, 0.5, 2.0])),
    "Normal": lambda L, t: L.distributions.Normal(t([0.0, 1.0, -2.0]), t([1.0, 0.5, 2.0])),
    "Pareto": lambda L, t: L.distributions.Pareto(t([1.0, 0.5, 2.0]), t([3.0, 1.5, 0.8])),
    "Poisson": lambda L, t: L.distributions.Poisson(t([0.5, 2.0, 4.0])),
    "Binomial": lambda L, t: L.distributions.Binomial(5, t([0.2, 0.5, 0.7])),
    "Uniform": lambda L, t: L.distributions.Uniform(t([0.1, -1.0, 0.5]), t([0.8, 0.5, 3.0])),
}
PAIRS = sorted(
    (p.__name__, q.__name__)
    for p, q in torch_kl._KL_REGISTRY
    if p.__name__ in P and q.__name__ in P and p.__name__ != q.__name__
)


@pytest.mark.parametrize(("p_name", "q_name"), PAIRS)
def test_cross_family_kl_matches_torch(p_name, q_name):
    results = []
    for lib in (sg, torch):
        leaves = []

        def t(values, lib=lib, leaves=leaves):
            leaf = lib.tensor(values, dtype=lib.float64, requires_grad=True)
            leaves.append(leaf)
            return leaf

        p = P[p_name](lib, t)
        q = P[q_name](lib, t)
        kl = lib.distributions.kl_divergence(p, q)
        finite = kl.detach().isfinite()
        if bool(finite.any()):
            kl[finite].sum().backward()
        results.append((kl.detach(), [leaf.grad for leaf in leaves]))
    (ours, our_grads), (theirs, their_grads) = results
    np.testing.assert_allclose(to_numpy(ours), theirs.numpy(), rtol=1e-9, atol=1e-12)
    for a, b in zip(our_grads, their_grads):
        if b is None:
            continue
        a = np.zeros_like(b.numpy()) if a is None else to_numpy(a)
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-8, atol=1e-10, equal_nan=True)


def _normal(lib, kind: str, seed: int, leaves: list, n: int = 5, rank: int = 2):
    g = np.random.default_rng(seed)

    def t(values):
        leaf = lib.tensor(values, requires_grad=True)
        leaves.append(leaf)
        return leaf

    if kind == "low rank":
        return lib.distributions.LowRankMultivariateNormal(
            t(g.standard_normal((3, n))),
            t(g.standard_normal((3, n, rank))),
            t(g.random((3, n)) + 0.5),
        )
    a = g.standard_normal((n, n))
    return lib.distributions.MultivariateNormal(
        t(g.standard_normal((3, n))), covariance_matrix=t(a @ a.T + n * np.eye(n))
    )


@pytest.mark.parametrize(
    ("p_kind", "q_kind"), [("low rank", "low rank"), ("full", "low rank"), ("low rank", "full")]
)
def test_low_rank_normal_kl_matches_torch(p_kind, q_kind):
    results = []
    for lib in (sg, torch):
        leaves = []
        p, q = _normal(lib, p_kind, 1, leaves), _normal(lib, q_kind, 2, leaves)
        kl = lib.distributions.kl_divergence(p, q)
        kl.sum().backward()
        results.append((kl.detach(), [leaf.grad for leaf in leaves]))
    (ours, our_grads), (theirs, their_grads) = results
    np.testing.assert_allclose(to_numpy(ours), theirs.numpy(), rtol=1e-10)
    for a, b in zip(our_grads, their_grads):
        np.testing.assert_allclose(to_numpy(a), b.numpy(), rtol=1e-8, atol=1e-12)
    with pytest.raises(ValueError, match="different event shapes"):
        sg.distributions.kl_divergence(
            _normal(sg, p_kind, 1, [], n=5), _normal(sg, q_kind, 2, [], n=4)
        )
