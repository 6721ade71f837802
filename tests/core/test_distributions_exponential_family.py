"""ExponentialFamily: the families torch derives from it do here too; the entropy by
Bregman divergence (autograd of the log normaliser) agrees with each family's closed form and
with torch's; a family defined by its natural parameters alone gets its entropy and KL
divergence that way."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import to_numpy

CASES = [
    ("Normal", ([0.5, -1.0], [1.0, 2.0])),
    ("Gamma", ([2.0, 0.5], [1.5, 3.0])),
    ("Chi2", ([3.0, 5.0],)),
    ("Exponential", ([0.5, 2.0],)),
    ("Bernoulli", ([0.2, 0.7],)),
    ("ContinuousBernoulli", ([0.2, 0.7],)),
    ("Wishart", (5.5, np.array([[2.0, 0.3, 0.1], [0.3, 1.5, -0.2], [0.1, -0.2, 1.0]]))),
]


def test_the_same_families_are_exponential_families():
    differ = []
    for name in torch.distributions.__all__:
        theirs, ours = getattr(torch.distributions, name), getattr(sg.distributions, name, None)
        if isinstance(theirs, type) and isinstance(ours, type):
            mine = issubclass(ours, sg.distributions.ExponentialFamily)
            if mine != issubclass(theirs, torch.distributions.ExponentialFamily):
                differ.append(name)
    assert differ == []


@pytest.mark.parametrize(("name", "args"), CASES)
def test_bregman_entropy_matches_closed_form_and_torch(name, args):
    ours = getattr(sg.distributions, name)(*(sg.tensor(a, dtype=sg.float64) for a in args))
    theirs = getattr(torch.distributions, name)(
        *(torch.tensor(a, dtype=torch.float64) for a in args)
    )
    bregman = sg.distributions.ExponentialFamily.entropy(ours)
    np.testing.assert_allclose(to_numpy(bregman), to_numpy(ours.entropy()), rtol=1e-12)
    expected = torch.distributions.ExponentialFamily.entropy(theirs).detach().numpy()
    np.testing.assert_allclose(to_numpy(bregman), expected, rtol=1e-12)


def _rayleigh_family(lib):
    """Exponential(rate) written only by its natural parameter, as a user would."""

    class ByNaturalParameter(lib.distributions.ExponentialFamily):
        arg_constraints = {}

        def __init__(self, rate):
            self.rate = rate
            super().__init__(rate.shape, validate_args=False)

        @property
        def _natural_params(self):
            return (-self.rate,)

        def _log_normalizer(self, x):
            return -(-x).log()

        @property
        def _mean_carrier_measure(self):
            return 0

    return ByNaturalParameter


def test_a_family_defined_by_natural_parameters_gets_entropy_and_kl():
    results = []
    for lib in (sg, torch):
        family = _rayleigh_family(lib)
        p_rate = lib.tensor([0.5, 2.0], dtype=lib.float64, requires_grad=True)
        p, q = family(p_rate), family(lib.tensor([1.0, 1.0], dtype=lib.float64))
        kl = lib.distributions.kl_divergence(p, q)
        # (p's natural parameters are detached in the Bregman form, in torch too)
        assert p_rate.grad is None
        results.append((p.entropy().detach(), kl.detach()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(to_numpy(ours), theirs.numpy(), rtol=1e-12)
    rate = np.array([0.5, 2.0])
    np.testing.assert_allclose(to_numpy(results[0][0]), 1 - np.log(rate), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(results[0][1]), 1 / rate - 1 - np.log(1 / rate))
    other = _rayleigh_family(sg)
    with pytest.raises(NotImplementedError, match="different exponential families"):
        sg.distributions.kl_divergence(_rayleigh_family(sg)(sg.ones(1)), other(sg.ones(1)))
    assert math.isclose(float(sg.distributions.Binomial(10, 0.3).mode), 3.0)


@pytest.mark.parametrize(
    ("name", "p_args", "q_args"),
    [
        ("Normal", ([0.5, -1.0], [1.0, 2.0]), ([0.0, 1.0], [2.0, 0.5])),
        ("Gamma", ([2.0, 0.5], [1.5, 3.0]), ([1.0, 2.0], [1.0, 1.0])),
        ("Beta", ([2.0, 0.5], [1.5, 3.0]), ([1.0, 2.0], [4.0, 1.0])),
        ("Exponential", ([0.5, 2.0],), ([1.0, 3.0],)),
        ("Bernoulli", ([0.2, 0.7],), ([0.5, 0.1],)),
        ("Poisson", ([0.5, 4.0],), ([2.0, 1.0],)),
        ("Dirichlet", ([[0.5, 2.0, 3.0]],), ([[1.0, 1.0, 1.0]],)),
    ],
)
def test_natural_parameters_give_the_closed_form_kl(name, p_args, q_args):
    """The Bregman divergence of each family's log normaliser, taken between its natural
    parameters, is the family's own closed-form KL: a check of the natural
    parameterisations themselves."""
    from shardgrad.distributions.kl import _kl_exponential_family

    family = getattr(sg.distributions, name)
    p = family(*(sg.tensor(a, dtype=sg.float64) for a in p_args))
    q = family(*(sg.tensor(a, dtype=sg.float64) for a in q_args))
    bregman = _kl_exponential_family(p, q)
    np.testing.assert_allclose(
        to_numpy(bregman), to_numpy(sg.distributions.kl_divergence(p, q)), rtol=1e-10
    )
