"""Functions of sampled data against torch: gradient (uniform, per-dimension and coordinate
spacings, both edge orders, and its own gradient), cumulative_trapezoid, histogram, and the
small aliases (chain_matmul, narrow_copy, unsafe_split/chunk, nn.utils.stateless)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import assert_close

RNG = np.random.default_rng(41)
X = RNG.standard_normal((5, 6))
COORDS = np.array([0.0, 1.0, 3.0, 4.0, 7.0])


def _spacing(kind, lib):
    if kind == "coordinates":
        return (lib.tensor(COORDS),)
    return {"scalar": 0.5, "per dim": [2.0, 0.3], "default": 1}[kind]


@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("kind", ["default", "scalar", "per dim", "coordinates"])
def test_gradient_matches_torch_and_is_differentiable(kind, edge_order):
    dim = 0 if kind == "coordinates" else None
    s_in, t_in = sg.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    s_out = sg.gradient(s_in, spacing=_spacing(kind, sg), dim=dim, edge_order=edge_order)
    t_out = torch.gradient(t_in, spacing=_spacing(kind, torch), dim=dim, edge_order=edge_order)
    assert len(s_out) == len(t_out)
    for s, t in zip(s_out, t_out):
        assert_close(s, t.detach())
    sum(o.pow(2).sum() for o in s_out).backward()
    sum(o.pow(2).sum() for o in t_out).backward()
    assert_close(s_in.grad, t_in.grad)


def test_gradient_errors_match_torch():
    for lib in (sg, torch):
        with pytest.raises(RuntimeError, match="edge_order"):
            lib.gradient(lib.ones(5), edge_order=3)
        with pytest.raises(RuntimeError, match="at least edge_order"):
            lib.gradient(lib.ones(2), edge_order=2)


def test_cumulative_trapezoid_matches_torch():
    xs = np.arange(6.0) ** 2
    for args, kwargs in (((), {}), ((), {"dx": 0.25}), (("x",), {}), ((), {"dim": 0})):
        s_in, t_in = sg.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
        s_args = [sg.tensor(xs) for _ in args]
        t_args = [torch.tensor(xs) for _ in args]
        s, t = (
            sg.cumulative_trapezoid(s_in, *s_args, **kwargs),
            torch.cumulative_trapezoid(t_in, *t_args, **kwargs),
        )
        assert_close(s, t.detach())
        (s * s).sum().backward()
        (t * t).sum().backward()
        assert_close(s_in.grad, t_in.grad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"bins": 7, "range": (-1.0, 2.0)},
        {"bins": 4, "density": True},
        {"bins": "edges"},
        {"weight": True},
    ],
)
def test_histogram_matches_torch(kwargs):
    data = RNG.standard_normal(200)

    def call(lib):
        kw = dict(kwargs)
        if kw.get("bins") == "edges":
            kw["bins"] = lib.tensor([-3.0, -1.0, 0.0, 0.5, 3.0], dtype=lib.float64)
        if kw.pop("weight", False):
            kw["weight"] = lib.tensor(np.linspace(0, 1, 200))
        return lib.histogram(lib.tensor(data), **kw)

    (s_hist, s_edges), (t_hist, t_edges) = call(sg), call(torch)
    assert_close(s_hist, t_hist)
    assert_close(s_edges, t_edges)


def test_small_aliases():
    a, b, c = (RNG.standard_normal(shape) for shape in ((3, 4), (4, 5), (5, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = torch.chain_matmul(torch.tensor(a), torch.tensor(b), torch.tensor(c))
    with pytest.warns(UserWarning, match="chain_matmul is deprecated"):
        got = sg.chain_matmul(sg.tensor(a), sg.tensor(b), sg.tensor(c))
    assert_close(got, want)
    t = sg.tensor(X)
    copy = t.narrow_copy(1, 2, 3)
    copy.fill_(0.0)
    assert (t.numpy()[:, 2:5] == X[:, 2:5]).all()  # a copy, not a view
    assert [p.shape for p in t.unsafe_split(2)] == [
        p.shape for p in torch.tensor(X).unsafe_split(2)
    ]
    assert len(t.unsafe_chunk(3, dim=1)) == 3
    layer = sg.nn.Linear(2, 1)
    out = sg.nn.utils.stateless.functional_call(
        layer, {"weight": sg.ones(1, 2), "bias": sg.zeros(1)}, (sg.tensor([[1.0, 2.0]]),)
    )
    assert out.tolist() == [[3.0]]
