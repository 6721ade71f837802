"""hypot, logaddexp, xlogy, trace, diff, meshgrid, repeat_interleave, cdist,
cosine_similarity and pairwise_distance against torch in float64 (values and gradients), and
multinomial, bernoulli and normal by their statistics and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

rng = np.random.default_rng(21)


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _both(fn, *arrays, grad=True):
    """fn(lib, *tensors) in both libraries; compare outputs and the float inputs' gradients."""
    results = []
    for lib in (sg, torch):
        xs = [lib.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
        out = fn(lib, *xs)
        outs = out if isinstance(out, tuple) else (out,)
        if grad and outs[0].requires_grad:
            sum(o.sum() * (i + 1) for i, o in enumerate(outs)).backward()
        results.append([_np(o) for o in outs] + [_np(x.grad) for x in xs if x.grad is not None])
    assert len(results[0]) == len(results[1])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True)


A = rng.standard_normal((3, 4))
B = rng.standard_normal((4,))
POS = rng.uniform(0.1, 3.0, (4,))


@pytest.mark.parametrize(
    "fn",
    [
        lambda lib, a, b: lib.hypot(a, b),
        lambda lib, a, b: lib.logaddexp(a * 300, b),
        lambda lib, a, b: lib.xlogy(a, b.abs()),
        lambda lib, a, b: a.xlogy(b.abs() + 1),
    ],
    ids=["hypot", "logaddexp", "xlogy", "xlogy method"],
)
def test_binary_ops_match_torch(fn):
    _both(fn, A, B)


def test_xlogy_at_zero():
    x, y = np.array([0.0, 0.0, 0.0, 2.0]), np.array([0.0, -1.0, np.nan, 3.0])
    _both(lambda lib, a, b: lib.xlogy(a, b), x, y)
    np.testing.assert_allclose(_np(sg.xlogy(2, sg.tensor([3.0]))), [2 * np.log(3.0)])


@pytest.mark.parametrize(
    "fn",
    [
        lambda lib, a: lib.trace(a),
        lambda lib, a: a.diff(),
        lambda lib, a: lib.diff(a, n=2, dim=0),
        lambda lib, a: lib.diff(a, dim=1, prepend=a[:, :1] * 2, append=a[:, -2:]),
        lambda lib, a: lib.diff(a, n=5),
        lambda lib, a: lib.meshgrid(a[0], a[1, :3], indexing="ij"),
        lambda lib, a: lib.meshgrid(a[0], a[1, :3], a[2, :2], indexing="xy"),
        lambda lib, a: lib.repeat_interleave(a, 2),
        lambda lib, a: a.repeat_interleave(3, dim=1),
        lambda lib, a: a.repeat_interleave(lib.tensor([0, 2, 1]), dim=0),
    ],
    ids=[
        "trace", "diff", "diff n=2 dim 0", "diff prepend append", "diff past its length",
        "meshgrid ij", "meshgrid xy", "repeat_interleave flat", "repeat_interleave dim",
        "repeat_interleave counts",
    ],
)  # fmt: skip
def test_compositions_match_torch(fn):
    _both(fn, A)


def test_repeat_interleave_of_counts_and_errors():
    counts = np.array([2, 0, 3])
    np.testing.assert_array_equal(
        _np(sg.repeat_interleave(sg.tensor(counts))),
        _np(torch.repeat_interleave(torch.tensor(counts))),
    )
    with pytest.raises(RuntimeError, match="repeats must have the same size"):
        sg.tensor(A).repeat_interleave(sg.tensor([1, 2]), dim=0)
    with pytest.raises(RuntimeError, match="repeats can not be negative"):
        sg.tensor(A).repeat_interleave(-1)


def test_meshgrid_warns_without_indexing_like_torch():
    with pytest.warns(UserWarning, match="required to pass the indexing"):
        sg.meshgrid(sg.arange(2), sg.arange(3))


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, float("inf")])
def test_cdist_matches_torch(p):
    x1, x2 = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 4, 3))
    x2[0, 1] = x1[0, 2]  # a zero distance: its gradient is zero, not nan
    _both(lambda lib, a, b: lib.cdist(a, b, p=p), x1, x2)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cosine_similarity_and_pairwise_distance_match_torch(dim):
    x1, x2 = rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    x1[1] = 0.0  # a zero vector: the clamped norm keeps the similarity finite
    _both(lambda lib, a, b: lib.nn.functional.cosine_similarity(a, b, dim=dim), x1, x2)
    _both(lambda lib, a, b: lib.nn.CosineSimilarity(dim=dim, eps=1e-6)(a, b), x1, x2)
    _both(lambda lib, a, b: lib.nn.functional.pairwise_distance(a, b, p=1.5), x1, x2)
    _both(lambda lib, a, b: lib.nn.PairwiseDistance(keepdim=True)(a, b), x1, x2)


# ------------------------------------------------------------------ sampling
def test_multinomial_frequencies_and_seed():
    weights = sg.tensor([[0.0, 1.0, 3.0], [5.0, 0.0, 5.0]])
    sg.manual_seed(3)
    draws = _np(sg.multinomial(weights, 20000, replacement=True))
    np.testing.assert_allclose(
        np.bincount(draws[0], minlength=3) / 20000, [0, 0.25, 0.75], atol=0.015
    )
    np.testing.assert_allclose(
        np.bincount(draws[1], minlength=3) / 20000, [0.5, 0, 0.5], atol=0.015
    )
    sg.manual_seed(3)
    assert (_np(sg.multinomial(weights, 20000, replacement=True)) == draws).all()

    firsts = [int(sg.multinomial(sg.tensor([1.0, 2.0, 5.0]), 1).item()) for _ in range(3000)]
    np.testing.assert_allclose(np.bincount(firsts) / 3000, [1 / 8, 2 / 8, 5 / 8], atol=0.03)
    for _ in range(20):  # without replacement: distinct, and never a zero weight
        picked = _np(sg.tensor([1.0, 0.0, 2.0, 3.0]).multinomial(3))
        assert sorted(picked) == [0, 2, 3]


def test_multinomial_errors_match_torch():
    for lib in (sg, torch):
        with pytest.raises(RuntimeError, match="cannot sample n_sample > prob_dist"):
            lib.multinomial(lib.tensor([0.2, 0.8]), 3)
        with pytest.raises(RuntimeError, match="probability tensor contains"):
            lib.multinomial(lib.tensor([0.2, -0.1]), 1)


def test_bernoulli_and_normal_statistics():
    sg.manual_seed(4)
    coins = sg.bernoulli(sg.full((200000,), 0.3))
    assert coins.dtype == sg.float32 and set(np.unique(_np(coins))) <= {0.0, 1.0}
    assert abs(float(coins.mean()) - 0.3) < 0.005
    assert abs(float(sg.zeros(100000).bernoulli(0.8).mean()) - 0.8) < 0.005
    draws = sg.normal(sg.full((200000,), 2.0), sg.full((200000,), 3.0))
    assert abs(float(draws.mean()) - 2.0) < 0.03 and abs(float(draws.std()) - 3.0) < 0.03
    fixed = sg.normal(1.0, 0.5, size=(4, 5))
    assert tuple(fixed.shape) == (4, 5) and fixed.dtype == sg.float32
    with pytest.raises(RuntimeError, match="std >= 0.0"):
        sg.normal(sg.zeros(3), sg.tensor([1.0, -1.0, 1.0]))


NANS = np.array([[0.1, np.nan, 0.5, 0.3], [0.9, 0.2, np.nan, np.nan], [0.4, 0.6, 0.7, 0.05]])


@pytest.mark.parametrize(
    "fn",
    [
        lambda lib, a: lib.nanmean(a),
        lambda lib, a: a.nanmean(dim=1, keepdim=True),
        lambda lib, a: a.nan_to_num(0.5).logit(),
        lambda lib, a: lib.logit(a.nan_to_num(0.0), eps=1e-3),
        lambda lib, a: lib.sinc(a.nan_to_num(0.0) - 0.1),
        lambda lib, a: lib.sinc(lib.zeros_like(a)) * a.nan_to_num(1.0),
        lambda lib, a: a.deg2rad().nan_to_num(),
        lambda lib, a: lib.rad2deg(a).nan_to_num(),
    ],
    ids=["nanmean", "nanmean dim", "logit", "logit eps", "sinc", "sinc at 0", "deg2rad", "rad2deg"],
)
def test_nan_aware_and_elementwise_compositions_match_torch(fn):
    _both(fn, NANS)


def test_new_tensor_methods_take_the_tensors_dtype_and_device():
    for lib in (sg, torch):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64)
        made = [
            x.new_zeros(2, 3), x.new_ones((2,)), x.new_empty(4), x.new_full((2,), 7),
            x.new_tensor([1, 2]),
        ]  # fmt: skip
        assert all(t.dtype == lib.float64 for t in made)
        assert [tuple(t.shape) for t in made] == [(2, 3), (2,), (4,), (2,), (2,)]
        assert x.new_zeros(2, dtype=lib.int64).dtype == lib.int64
        assert x.new_ones(2, requires_grad=True).requires_grad
        np.testing.assert_array_equal(_np(made[3]), [7.0, 7.0])
