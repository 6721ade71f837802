"""scatter_reduce and index_reduce against torch: every reduction with and without the
input's own values, ties for amax/amin, zeros for prod, integer means, the gradients of
both inputs, grad_fn names, in-place forms, errors, and finite-difference checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import assert_close

REDUCTIONS = ["sum", "prod", "mean", "amax", "amin"]


def _data(rng, shape, kind):
    """Small integers for ties and exact products, zeros sprinkled in for prod."""
    if kind == "ties":
        return rng.integers(-2, 3, shape).astype(np.float64)
    a = rng.standard_normal(shape)
    if kind == "zeros":
        a[rng.random(shape) < 0.3] = 0.0
    return a


def _compare(fn, x, src, *, check_name=True):
    """Value, grad_fn name and both inputs' gradients under a random upstream gradient."""
    sx, ss = (sg.tensor(a, requires_grad=True) for a in (x, src))
    tx, ts = (torch.tensor(a, requires_grad=True) for a in (x, src))
    s_out, t_out = fn(sg, sx, ss), fn(torch, tx, ts)
    assert_close(s_out, t_out)
    if check_name:
        assert s_out.grad_fn.name() == type(t_out.grad_fn).__name__
    up = np.random.default_rng(5).standard_normal(tuple(t_out.shape))
    s_out.backward(sg.tensor(up))
    t_out.backward(torch.tensor(up))
    assert_close(sx.grad, tx.grad)
    assert_close(ss.grad, ts.grad)


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("kind", ["plain", "ties", "zeros"])
def test_scatter_reduce_matches_torch(reduce, include_self, kind):
    rng = np.random.default_rng(hash((reduce, include_self, kind)) % 2**32)
    x, src = _data(rng, (4, 5), kind), _data(rng, (3, 5), kind)
    index = rng.integers(0, 4, (3, 5))

    def fn(m, a, s):
        return a.scatter_reduce(0, m.tensor(index), s, reduce, include_self=include_self)

    _compare(fn, x, src)


@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_scatter_reduce_last_dim_and_larger_src(reduce):
    """A negative dim, and a src larger than the index: only its leading block takes part
    and the rest gets a zero gradient. (torch computes the value but its backward refuses
    the larger src, so its gradient comes from the block alone.)"""
    rng = np.random.default_rng(3)
    x, src = rng.standard_normal((3, 4)), rng.standard_normal((4, 6))
    index = np.array([[0, 0, 3], [1, 2, 1], [3, 3, 3]])

    def fn(m, a, s):
        return m.scatter_reduce(a, -1, m.tensor(index), s, reduce, include_self=False)

    _compare(fn, x, src[:3, :3])
    s = sg.tensor(src, requires_grad=True)
    t = torch.tensor(src[:3, :3], requires_grad=True)
    up = np.random.default_rng(1).standard_normal((3, 4))
    fn(sg, sg.tensor(x), s).backward(sg.tensor(up))
    fn(torch, torch.tensor(x), t).backward(torch.tensor(up))
    assert_close(
        fn(sg, sg.tensor(x), sg.tensor(src)), fn(torch, torch.tensor(x), torch.tensor(src))
    )
    assert_close(s.grad[:3, :3], t.grad)
    assert not s.grad.numpy()[3:].any() and not s.grad.numpy()[:, 3:].any()


def test_scatter_reduce_several_zeros_in_one_group():
    """Two zeros meet in one product: each one's derivative holds the other zero."""
    x = np.array([2.0, 3.0, 0.0])
    src = np.array([0.0, 5.0, 0.0, 4.0, 0.0])
    index = np.array([0, 0, 0, 1, 2])

    def fn(m, a, s):
        return a.scatter_reduce(0, m.tensor(index), s, "prod")

    _compare(fn, x, src)


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
def test_index_reduce_matches_torch(reduce, include_self):
    rng = np.random.default_rng(7)
    x, src = _data(rng, (3, 5, 2), "ties"), _data(rng, (3, 4, 2), "ties")
    index = np.array([4, 0, 4, 2])

    def fn(m, a, s):
        with warnings.catch_warnings():  # torch calls index_reduce beta
            warnings.simplefilter("ignore")
            return a.index_reduce(1, m.tensor(index), s, reduce, include_self=include_self)

    _compare(fn, x, src)


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin", "prod"])
def test_integer_inputs(reduce):
    """Integers reduce exactly; their mean rounds down, as torch's does."""
    x = np.array([1, 2, 3, 4])
    src = np.array([-5, -6, -8])
    index = np.array([0, 0, 2])
    for include_self in (True, False):
        got = sg.tensor(x).scatter_reduce(
            0, sg.tensor(index), sg.tensor(src), reduce, include_self=include_self
        )
        want = torch.tensor(x).scatter_reduce(
            0, torch.tensor(index), torch.tensor(src), reduce, include_self=include_self
        )
        assert got.tolist() == want.tolist()
        assert got.dtype == sg.int64


def test_max_and_min_aliases():
    x, i, s = sg.tensor([1.0, 2.0]), sg.tensor([0, 0]), sg.tensor([5.0, -1.0])
    assert x.scatter_reduce(0, i, s, "max").tolist() == [5.0, 2.0]
    assert x.scatter_reduce(0, i, s, "min").tolist() == [-1.0, 2.0]


def test_zero_dim_input():
    def fn(m, a, s):
        return a.scatter_reduce(0, m.tensor(0), s, "prod")

    _compare(fn, np.array(3.0), np.array(2.0), check_name=False)


def test_empty_index_leaves_input():
    x = sg.tensor([1.0, 2.0], requires_grad=True)
    out = x.scatter_reduce(0, sg.tensor([], dtype=sg.int64), sg.tensor([]), "amax")
    out.sum().backward()
    assert out.tolist() == [1.0, 2.0] and x.grad.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("method", ["scatter_reduce_", "index_reduce_"])
def test_inplace_forms(method):
    rng = np.random.default_rng(2)
    data, src = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    index = [[2, 0, 0, 1], [0, 0, 2, 2]] if method == "scatter_reduce_" else [2, 0]
    reduce = "amax"
    x, t = sg.tensor(data), torch.tensor(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert getattr(x, method)(0, sg.tensor(index), sg.tensor(src), reduce) is x
        getattr(t, method)(0, torch.tensor(index), torch.tensor(src), reduce)
    assert_close(x, t)
    assert x._version == t._version

    # through the graph: the in-place result's gradient reaches the leaf and the source
    def fn(m, a, s):
        y = a * 2.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            getattr(y, method)(0, m.tensor(index), s, "mean", include_self=False)
        return y

    sx, ss = sg.tensor(data, requires_grad=True), sg.tensor(src, requires_grad=True)
    tx, ts = torch.tensor(data, requires_grad=True), torch.tensor(src, requires_grad=True)
    (fn(sg, sx, ss) ** 2).sum().backward()
    (fn(torch, tx, ts) ** 2).sum().backward()
    assert_close(sx.grad, tx.grad)
    assert_close(ss.grad, ts.grad)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, x, i, s: x.scatter_reduce(0, i, s, "add"), "reduce argument must be either"),
        (lambda m, x, i, s: x.scatter_reduce(0, i, s.float(), "sum"), "Expected self.dtype"),
        (lambda m, x, i, s: x.index_reduce(0, i[0], s, "sum"), "Expected reduce to be one of"),
        (lambda m, x, i, s: x.scatter_reduce(0, i + 5, s, "sum"), "out of bounds"),
        (lambda m, x, i, s: x.scatter_reduce(0, i.float(), s, "sum"), "int"),
    ],
)
def test_errors_match_torch(call, match):
    args = dict(x=np.zeros((3, 2)), i=np.array([[0, 1], [2, 0]]), s=np.ones((2, 2)))
    for m in (sg, torch):
        x, i, s = (m.tensor(args[k]) for k in ("x", "i", "s"))
        with pytest.raises(RuntimeError, match=match), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call(m, x, i, s)


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_gradcheck(reduce, include_self):
    """Second derivatives too (no ties or zeros, where the derivative jumps)."""
    rng = np.random.default_rng(9)
    x = sg.tensor(rng.uniform(0.5, 2.0, (3, 4)), requires_grad=True)
    s = sg.tensor(rng.uniform(0.5, 2.0, (2, 4)), requires_grad=True)
    index = sg.tensor([[0, 2, 2, 1], [0, 0, 2, 1]])

    def fn(a, b):
        return a.scatter_reduce(0, index, b, reduce, include_self=include_self)

    assert sg.autograd.gradcheck(fn, (x, s))
    assert sg.autograd.gradgradcheck(fn, (x, s))
