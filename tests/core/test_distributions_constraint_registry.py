"""biject_to and transform_to against torch: for each constraint, the same transform (by
repr), the same values, inverses and log-determinants on random unconstrained inputs, and
values that satisfy the constraint. Also the new constraints' checks and transforms'
shapes, and a registration of one's own."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import assert_close, to_numpy

RNG = np.random.default_rng(4)


def _constraints(lib):
    c = lib.distributions.constraints
    return {
        "real": (c.real, (3, 4)),
        "positive": (c.positive, (3, 4)),
        "nonnegative": (c.nonnegative, (3, 4)),
        "greater_than": (c.greater_than(3.0), (3, 4)),
        "greater_than_eq": (c.greater_than_eq(-2.0), (5,)),
        "less_than": (c.less_than(1.5), (3, 4)),
        "unit_interval": (c.unit_interval, (3, 4)),
        "interval": (c.interval(-2.0, 5.0), (3, 4)),
        "half_open_interval": (c.half_open_interval(0.0, 2.0), (6,)),
        "simplex": (c.simplex, (3, 4)),
        "real_vector": (c.real_vector, (3, 4)),
        "independent": (c.independent(c.positive, 2), (2, 3, 4)),
        "lower_cholesky": (c.lower_cholesky, (2, 3, 3)),
        "positive_definite": (c.positive_definite, (2, 3, 3)),
        "corr_cholesky": (c.corr_cholesky, (2, 6)),
        "cat": (c.cat([c.positive, c.real, c.unit_interval], 0, [2, 1, 2]), (5, 3)),
        "stack": (c.stack([c.positive, c.interval(-1.0, 1.0)], 1), (3, 2)),
    }


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("registry", ["biject_to", "transform_to"])
@pytest.mark.parametrize("name", list(_constraints(torch)))
def test_registry_matches_torch(registry, name):
    theirs_c, shape = _constraints(torch)[name]
    ours_c, _ = _constraints(sg)[name]
    try:
        t_transform = getattr(torch.distributions, registry)(theirs_c)
    except NotImplementedError as exc:
        with pytest.raises(NotImplementedError, match=re.escape(str(exc))):
            getattr(sg.distributions, registry)(ours_c)
        return
    s_transform = getattr(sg.distributions, registry)(ours_c)
    assert _squash(repr(s_transform)) == _squash(repr(t_transform))
    assert (s_transform.domain.event_dim, s_transform.codomain.event_dim) == (
        t_transform.domain.event_dim,
        t_transform.codomain.event_dim,
    )
    assert s_transform.bijective == t_transform.bijective
    x = RNG.standard_normal(shape)
    sx = sg.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    sy, ty = s_transform(sx), t_transform(tx)
    assert_close(sy, ty, rtol=1e-10)
    assert bool(np.all(ours_c.check(sy.detach()._data)))
    if t_transform.bijective:
        assert_close(s_transform.inv(sy), t_transform.inv(ty), rtol=1e-8)
        assert_close(s_transform.inv(sy), x, rtol=1e-7, atol=1e-9)  # a round trip
    try:
        t_ladj = t_transform.log_abs_det_jacobian(tx, ty)
    except NotImplementedError:
        return
    s_ladj = s_transform.log_abs_det_jacobian(sx, sy)
    assert_close(s_ladj, t_ladj, rtol=1e-10)
    if t_ladj.requires_grad:  # (the identity's is a constant)
        s_ladj.sum().backward()
        t_ladj.sum().backward()
        assert_close(sx.grad, tx.grad, rtol=1e-8)


def test_constraint_checks_match_torch():
    c_s, c_t = sg.distributions.constraints, torch.distributions.constraints
    spd = np.array([[2.0, 0.5], [0.5, 1.0]])
    cases = [
        ("lower_cholesky", [np.linalg.cholesky(spd), spd, -np.linalg.cholesky(spd)]),
        ("lower_triangular", [np.tril(spd), spd]),
        ("positive_definite", [spd, -spd, np.array([[1.0, 2.0], [0.0, 1.0]])]),
        ("positive_semidefinite", [spd, np.zeros((2, 2)), -spd]),
        ("symmetric", [spd, np.array([[1.0, 2.0], [0.0, 1.0]])]),
        ("corr_cholesky", [np.linalg.cholesky(np.array([[1.0, 0.3], [0.3, 1.0]])), np.eye(2) * 2]),
    ]
    for name, values in cases:
        for value in values:
            ours = getattr(c_s, name).check(value)
            theirs = getattr(c_t, name).check(torch.tensor(value))
            assert bool(np.all(ours)) == bool(theirs.all()), (name, value)
            assert repr(getattr(c_s, name)) == repr(getattr(c_t, name))
    independent = c_s.independent(c_s.positive, 1)
    assert independent.check(np.array([[1.0, 2.0], [1.0, -1.0]])).tolist() == [True, False]
    assert independent.event_dim == 1 and repr(independent) == repr(
        c_t.independent(c_t.positive, 1)
    )


def test_corr_cholesky_gives_correlation_matrices_and_shapes():
    t = sg.distributions.transforms.CorrCholeskyTransform()
    x = sg.tensor(RNG.standard_normal((4, 10)) * 3)
    low = t(x)
    assert tuple(low.shape) == (4, 5, 5) == t.forward_shape((4, 10))
    corr = to_numpy(low @ low.mT)
    np.testing.assert_allclose(np.diagonal(corr, axis1=-2, axis2=-1), 1.0, rtol=1e-12)
    assert (np.linalg.eigvalsh(corr) > 0).all()
    assert t.inverse_shape((4, 5, 5)) == (4, 10)
    with pytest.raises(ValueError, match="lower-diagonal"):
        t.forward_shape((4, 7))


def test_register_a_constraint_of_ones_own():
    class Odd(sg.distributions.distribution.Constraint):
        pass

    registry = sg.distributions.constraint_registry.ConstraintRegistry()
    with pytest.raises(NotImplementedError, match="Cannot transform Odd constraints"):
        registry(Odd())

    @registry.register(Odd)
    def _(constraint):
        return sg.distributions.transforms.ExpTransform()

    assert isinstance(registry(Odd()), sg.distributions.transforms.ExpTransform)
    with pytest.raises(TypeError, match="Constraint subclass or instance"):
        registry.register(int, lambda c: None)


def test_structural_transforms():
    tr = sg.distributions.transforms
    x = sg.tensor(RNG.standard_normal((2, 3, 4)))
    reshape = tr.ReshapeTransform((3, 4), (12,))
    assert tuple(reshape(x).shape) == (2, 12) and reshape.forward_shape((2, 3, 4)) == (2, 12)
    assert_close(reshape.inv(reshape(x)), x)
    assert tuple(reshape.log_abs_det_jacobian(x, reshape(x)).shape) == (2,)
    assert_close(tr.AbsTransform()(x), np.abs(to_numpy(x)))
    normal = sg.distributions.Normal(0.0, 1.0)
    cdf = tr.CumulativeDistributionTransform(normal)
    u = cdf(x)
    assert_close(cdf.inv(u), x, rtol=1e-7)
    assert_close(cdf.log_abs_det_jacobian(x, u), normal.log_prob(x))
