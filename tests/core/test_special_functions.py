"""The gamma family (lgamma, digamma, polygamma, mvlgamma) and shardgrad.special against
torch in float64, and against mpmath where torch's own trigamma is the less accurate one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

X = np.concatenate([np.linspace(-4.7, 12.0, 61), [1e-7, 0.5, 1.0, 2.0, 3.0, 171.5, 1e5]])
POLES = np.array([0.0, -1.0, -3.0])


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _compare(fn, x, rtol=1e-12, atol=1e-12, grad=True):
    results = []
    for lib in (sg, torch):
        t = lib.tensor(x, requires_grad=grad)
        out = fn(lib, t)
        if grad:
            out.sum().backward()
        results.append((_np(out), _np(t.grad) if grad else None))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=rtol, atol=atol)
    if grad:
        np.testing.assert_allclose(results[0][1], results[1][1], rtol=rtol, atol=atol)


@pytest.mark.parametrize(
    "fn",
    [
        lambda lib, t: lib.lgamma(t),
        lambda lib, t: t.digamma(),
        lambda lib, t: lib.polygamma(2, t),
        lambda lib, t: t.polygamma(3),
        lambda lib, t: lib.special.gammaln(t),
        lambda lib, t: lib.special.psi(t),
    ],
    ids=["lgamma", "digamma", "polygamma 2", "polygamma 3", "gammaln", "psi"],
)
def test_gamma_family_matches_torch(fn):
    """Values and first derivatives; the derivative of digamma is trigamma, torch's own
    implementation of which is accurate to ~1e-9, hence that tolerance for the gradients."""
    _compare(fn, X, rtol=1e-9, atol=1e-9)
    _compare(fn, X, rtol=1e-12, atol=1e-12, grad=False)


def test_values_at_the_poles_match_torch():
    for fn in (
        lambda lib, t: lib.lgamma(t),
        lambda lib, t: lib.digamma(t),
        lambda lib, t: lib.polygamma(1, t[:1]),
        lambda lib, t: lib.polygamma(2, t),
    ):
        np.testing.assert_array_equal(
            _np(fn(sg, sg.tensor(POLES))), fn(torch, torch.tensor(POLES)).numpy()
        )


def test_trigamma_is_accurate_to_double_precision():
    mpmath = pytest.importorskip("mpmath")
    points = [0.3, 1.1428571428571423, 2.5, 7.7, -0.49, 40.0]
    ours = _np(sg.polygamma(1, sg.tensor(points, dtype=sg.float64)))
    exact = [float(mpmath.polygamma(1, x)) for x in points]
    np.testing.assert_allclose(ours, exact, rtol=2e-15)


def test_second_derivatives_match_torch():
    for lib in (sg, torch):
        t = lib.tensor(X[X > 0], requires_grad=True)
        (g,) = lib.autograd.grad(lib.lgamma(t).sum(), t, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), t)
        if lib is sg:
            ours = (_np(g), _np(h))
        else:
            np.testing.assert_allclose(ours[0], g.detach().numpy(), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(ours[1], h.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "fn, x",
    [
        (lambda lib, t: lib.mvlgamma(t, 3), X[X > 1.5]),
        (lambda lib, t: lib.special.multigammaln(t, 2), X[X > 1.5]),
        (lambda lib, t: lib.special.xlog1py(t, t * 0.5), np.array([0.0, 0.3, 2.0, -0.5])),
        (lambda lib, t: lib.special.xlog1py(t, 3.0), np.array([0.0, 0.3, 2.0])),
        (lambda lib, t: lib.special.entr(t), np.array([0.0, 0.3, 2.0, -0.5])),
        (lambda lib, t: lib.special.ndtr(t), np.linspace(-8, 8, 17)),
        (lambda lib, t: lib.special.expit(t), np.linspace(-8, 8, 17)),
        (lambda lib, t: lib.special.logit(t, eps=1e-3), np.linspace(0, 1, 11)),
        (lambda lib, t: lib.special.erfinv(t), np.linspace(-0.99, 0.99, 11)),
        (lambda lib, t: lib.special.exp2(t) + lib.special.expm1(t) + lib.special.log1p(t), X[X > -0.9][:20]),
        (lambda lib, t: lib.special.sinc(t), np.linspace(-3, 3, 13)),
        (lambda lib, t: lib.special.xlogy(t, t + 1), np.array([0.0, 0.5, 3.0])),
        (lambda lib, t: lib.special.logsumexp(t, 0), X[:10]),
        (lambda lib, t: lib.special.softmax(t, 0) * lib.special.log_softmax(t, 0), X[:10]),
        (lambda lib, t: lib.special.round(t, decimals=1), np.array([0.123, -2.47])),
    ],
    ids=[
        "mvlgamma", "multigammaln", "xlog1py", "xlog1py number", "entr", "ndtr", "expit",
        "logit", "erfinv", "exp2 expm1 log1p", "sinc", "xlogy", "logsumexp", "softmax",
        "round",
    ],
)  # fmt: skip
def test_special_namespace_matches_torch(fn, x):
    _compare(fn, x, rtol=1e-10, atol=1e-12)


def test_mvlgamma_outside_its_domain_matches_torch():
    """torch no longer refuses x <= (p - 1) / 2; both give the formula's value there."""
    x = np.array([0.4, 3.0])
    np.testing.assert_allclose(
        _np(sg.mvlgamma(sg.tensor(x), 2)), torch.mvlgamma(torch.tensor(x), 2).numpy()
    )
    for lib in (sg, torch):
        with pytest.raises(RuntimeError, match="p has to be greater than or equal to 1"):
            lib.mvlgamma(lib.tensor(x), 0)
