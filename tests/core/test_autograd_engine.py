"""The backward engine against torch: accumulation, retain_graph, higher-order gradients,
`autograd.grad`, grad modes, custom `autograd.Function`s, graph shape (diamonds, very deep
chains), requires_grad propagation, leaves and grad_fn names."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import assert_close

RNG = np.random.default_rng(5)


def _arr(*shape):
    return RNG.standard_normal(shape)


def both(fn, *arrays):
    s_in = [sg.tensor(a, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    return fn(sg, *s_in), fn(torch, *t_in), s_in, t_in


def _close_all(a, b):
    for x, y in zip(a, b):
        if y is None:
            assert x is None
        else:
            assert_close(x, y)


# ---------------------------------------------------------------- accumulation, retain_graph
def test_gradients_accumulate_over_two_backwards():
    def fn(m, x, w):
        (x * w).sum().backward()
        g = x.grad
        (x * x * w).sum().backward()
        assert x.grad is g  # accumulated into the same tensor, as torch does
        return x.grad, w.grad

    s, t, _, _ = both(fn, _arr(3), _arr(3))
    _close_all(s, t)


def test_second_backward_through_freed_graph_raises():
    for m in (torch, sg):
        x = m.tensor(_arr(3), requires_grad=True)
        y = (x * x).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="retain_graph"):
            y.backward()


def test_graph_without_saved_tensors_can_run_twice():
    for m in (torch, sg):
        x = m.tensor(_arr(3), requires_grad=True)
        y = (x + 1.0).sum()
        y.backward()
        y.backward()  # nothing was saved, nothing was freed
        np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 2.0))


def test_retain_graph_allows_a_second_backward():
    def fn(m, x):
        y = (x.exp() * x).sum()
        y.backward(retain_graph=True)
        first = x.grad.clone()
        y.backward()
        return first, x.grad

    s, t, _, _ = both(fn, _arr(4))
    _close_all(s, t)
    assert_close(s[1], 2 * s[0].numpy())


def test_autograd_grad_frees_the_graph_unless_retained():
    x = sg.tensor(_arr(3), requires_grad=True)
    y = (x * x).sum()
    sg.autograd.grad(y, x, retain_graph=True)
    sg.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match="retain_graph"):
        sg.autograd.grad(y, x)


# ---------------------------------------------------------------- higher order
def test_second_derivative_with_create_graph():
    def fn(m, x):
        y = (x**3).sum()
        (g,) = m.autograd.grad(y, x, create_graph=True)
        (h,) = m.autograd.grad(g.sum(), x)
        return g, h

    s, t, (sx,), _ = both(fn, _arr(4))
    _close_all(s, t)
    assert_close(s[1], 6 * sx.detach().numpy())


def test_hessian_vector_product():
    a = _arr(4, 4)

    def fn(m, x, v):
        mat = m.tensor(a)
        y = (m.tanh(mat @ x) ** 2).sum() + (x * x * x).sum()
        (g,) = m.autograd.grad(y, x, create_graph=True)
        (hv,) = m.autograd.grad((g * v.detach()).sum(), x)
        return g, hv

    s, t, _, _ = both(fn, _arr(4), _arr(4))
    _close_all(s, t)


def test_gradient_penalty_backward_through_a_gradient():
    def fn(m, x, w):
        out = (m.sigmoid(x * w)).sum()
        (gx,) = m.autograd.grad(out, x, create_graph=True)
        penalty = (gx * gx).sum()
        penalty.backward()
        return w.grad, x.grad

    s, t, _, _ = both(fn, _arr(5), _arr(5))
    _close_all(s, t)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_backward_with_create_graph_builds_differentiable_grads():
    def fn(m, x):
        (x**4).sum().backward(create_graph=True)
        g = x.grad
        assert g.requires_grad
        (h,) = m.autograd.grad(g.sum(), x)
        return h

    s, t, _, _ = both(fn, _arr(3))
    assert_close(s, t)


# ---------------------------------------------------------------- autograd.grad
def test_autograd_grad_does_not_touch_dot_grad():
    x = sg.tensor(_arr(3), requires_grad=True)
    (g,) = sg.autograd.grad((x * x).sum(), x)
    assert x.grad is None
    assert_close(g, 2 * x.detach().numpy())
    assert not g.requires_grad


def test_autograd_grad_allow_unused_and_materialize():
    for m in (torch, sg):
        x = m.tensor(_arr(3), requires_grad=True)
        z = m.tensor(_arr(3), requires_grad=True)
        with pytest.raises(RuntimeError, match="allow_unused"):
            m.autograd.grad((x * 2).sum(), [x, z])
        gx, gz = m.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
        assert gz is None
        _, gz = m.autograd.grad((x * 2).sum(), [x, z], materialize_grads=True)
        np.testing.assert_array_equal(gz.numpy(), np.zeros(3))


def test_autograd_grad_with_grad_outputs_and_several_outputs():
    def fn(m, x, w):
        a, b = x * w, (x * x).sum(0)
        go = (m.tensor(np.arange(6.0).reshape(2, 3)), m.tensor([1.0, -1.0, 2.0], dtype=m.float64))
        return m.autograd.grad([a, b], [x, w], grad_outputs=go)

    s, t, _, _ = both(fn, _arr(2, 3), _arr(2, 3))
    _close_all(s, t)


def test_autograd_grad_of_non_leaf_input_and_leaf_hooks():
    def fn(m, x):
        h = x * 3.0
        x.register_hook(lambda g: g * 2.0)
        y = (h * h).sum()
        gh, gx = m.autograd.grad(y, [h, x])
        return gh, gx

    s, t, _, _ = both(fn, _arr(3))
    _close_all(s, t)


def test_autograd_grad_runs_only_what_it_needs():
    ran = []

    class Tracked(sg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            ran.append(True)
            return g

    x = sg.tensor(_arr(3), requires_grad=True)
    w = sg.tensor(_arr(3), requires_grad=True)
    out = (x * 2.0).sum() + Tracked.apply(w).sum()
    (gx,) = sg.autograd.grad(out, x, retain_graph=True)
    assert_close(gx, np.full(3, 2.0))
    assert ran == []
    out.backward()
    assert ran == [True]


def test_backward_inputs_accumulates_only_into_those():
    def fn(m, x, w):
        (x * w).sum().backward(inputs=[w])
        return x.grad, w.grad

    s, t, _, _ = both(fn, _arr(3), _arr(3))
    _close_all(s, t)


BACKWARD_ERRORS = {
    "non_scalar": lambda m, x: (x * 2).backward(),
    "no_grad_tensor": lambda m, x: (x.detach() * 2).sum().backward(),
    "bad_grad_shape": lambda m, x: (x * 2).backward(m.ones(2, dtype=m.float64)),
    "grad_of_no_grad_input": lambda m, x: m.autograd.grad((x * 2).sum(), x.detach()),
    "requires_grad_int": lambda m, x: m.ones(2, dtype=m.int64).requires_grad_(),
    "requires_grad_off_non_leaf": lambda m, x: (x * 2).requires_grad_(False),
    "grad_non_scalar_output": lambda m, x: m.autograd.grad(x * 2, x),
}


@pytest.mark.parametrize("name", sorted(BACKWARD_ERRORS))
def test_backward_errors_match_torch(name):
    data = _arr(3)
    with pytest.raises(Exception) as expected:
        BACKWARD_ERRORS[name](torch, torch.tensor(data, requires_grad=True))
    with pytest.raises(expected.type):
        BACKWARD_ERRORS[name](sg, sg.tensor(data, requires_grad=True))


# ---------------------------------------------------------------- grad modes
def test_no_grad_enable_grad_and_set_grad_enabled():
    for m in (torch, sg):
        x = m.ones(2, requires_grad=True)
        with m.no_grad():
            assert not (x * 2).requires_grad
            assert not m.is_grad_enabled()
            with m.enable_grad():
                assert (x * 2).requires_grad
            assert not (x * 2).requires_grad
        assert (x * 2).requires_grad
        with m.set_grad_enabled(False):
            assert not (x * 2).requires_grad
        assert m.is_grad_enabled()
        m.set_grad_enabled(False)
        try:
            assert not (x * 2).requires_grad
        finally:
            m.set_grad_enabled(True)
        assert (x * 2).requires_grad


def test_grad_modes_as_decorators_and_inference_mode():
    for m in (torch, sg):
        x = m.ones(2, requires_grad=True)

        @m.no_grad()
        def double(t):
            return t * 2

        @m.enable_grad()
        def triple(t):
            return t * 3

        assert not double(x).requires_grad
        with m.no_grad():
            assert triple(x).requires_grad
        with m.inference_mode():
            assert not (x * 2).requires_grad
        with m.inference_mode(False):
            assert (x * 2).requires_grad


def test_grad_mode_is_thread_local():
    x = sg.ones(2, requires_grad=True)
    seen = {}

    def worker():
        seen["requires_grad"] = (x * 2).requires_grad

    with sg.no_grad():
        th = threading.Thread(target=worker)
        th.start()
        th.join(timeout=10)
    assert seen["requires_grad"] is True


# ---------------------------------------------------------------- autograd.Function
def _function_classes(m):
    class MulAdd(m.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, scale):
            ctx.save_for_backward(x, w)
            ctx.scale = scale
            ctx.flags = ctx.needs_input_grad
            return x * w * scale + x

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            gx = g * w * ctx.scale + g if ctx.needs_input_grad[0] else None
            gw = g * x * ctx.scale if ctx.needs_input_grad[1] else None
            return gx, gw, None

    class SplitSign(m.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            pos, neg = x.clamp(min=0), x.clamp(max=0)
            mask = x > 0
            ctx.mark_non_differentiable(mask)
            ctx.save_for_backward(mask)
            return pos, neg, mask

        @staticmethod
        def backward(ctx, gpos, gneg, gmask):
            (mask,) = ctx.saved_tensors
            return m.where(mask, gpos, gneg)

    class Cube(m.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x  # tensor ops: differentiable again

    return MulAdd, SplitSign, Cube


def test_function_with_ctx_and_needs_input_grad():
    def fn(m, x, w):
        MulAdd, _, _ = _function_classes(m)
        y = MulAdd.apply(x, w.detach(), 2.5)
        y.sum().backward()
        assert y.grad_fn.next_functions[1][0] is None
        return y, x.grad

    s, t, _, _ = both(fn, _arr(3), _arr(3))
    _close_all(s, t)
    assert "MulAddBackward" in s[0].grad_fn.name()


def test_function_multiple_outputs_and_non_differentiable():
    def fn(m, x):
        _, SplitSign, _ = _function_classes(m)
        pos, neg, mask = SplitSign.apply(x)
        assert not mask.requires_grad and pos.requires_grad
        (pos * 2 + neg * 3).sum().backward(retain_graph=True)
        first = x.grad.clone()
        x.grad = None
        (pos * 5).sum().backward()  # neg gets no gradient: backward sees zeros
        return first, x.grad

    s, t, _, _ = both(fn, _arr(6))
    _close_all(s, t)


def test_function_double_backward_and_gradcheck():
    def fn(m, x):
        _, _, Cube = _function_classes(m)
        y = Cube.apply(x).sum()
        (g,) = m.autograd.grad(y, x, create_graph=True)
        (h,) = m.autograd.grad(g.sum(), x)
        return g, h

    s, t, _, _ = both(fn, _arr(4))
    _close_all(s, t)
    _, _, Cube = _function_classes(sg)
    x = sg.tensor(_arr(3), requires_grad=True)
    assert sg.autograd.gradcheck(Cube.apply, (x,))
    assert sg.autograd.gradgradcheck(Cube.apply, (x,))


def test_function_saved_tensor_modified_in_place_raises():
    for m in (torch, sg):
        MulAdd, _, _ = _function_classes(m)
        x = m.tensor(_arr(3), requires_grad=True)
        w = m.tensor(_arr(3))
        y = MulAdd.apply(x, w, 1.0)
        w.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_function_without_grad_mode_records_nothing():
    for m in (torch, sg):
        MulAdd, _, _ = _function_classes(m)
        x = m.tensor(_arr(3), requires_grad=True)
        with m.no_grad():
            y = MulAdd.apply(x, x, 1.0)
        assert y.grad_fn is None and not y.requires_grad


def test_variable_is_the_legacy_spelling_of_tensor():
    v = sg.autograd.Variable(sg.tensor(_arr(3)), requires_grad=True)
    tv = torch.autograd.Variable(torch.tensor(v.detach().numpy()), requires_grad=True)
    assert isinstance(v, sg.Tensor) and v.requires_grad and v.is_leaf
    (v * v).sum().backward()
    (tv * tv).sum().backward()
    assert_close(v.grad, tv.grad)


# ---------------------------------------------------------------- graph shapes
def test_diamond_node_runs_once_with_the_summed_gradient():
    calls = []

    class Probe(sg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            calls.append(g.detach().numpy().copy())
            return g

    data = _arr(4)
    x = sg.tensor(data, requires_grad=True)
    a = Probe.apply(x)
    out = (a.exp() + a.sin() * a).sum()
    out.backward()
    t = torch.tensor(data, requires_grad=True)
    ta = t * 1.0
    ta.retain_grad()
    (ta.exp() + ta.sin() * ta).sum().backward()
    assert len(calls) == 1
    assert_close(calls[0], ta.grad)
    assert_close(x.grad, t.grad)


def test_same_tensor_used_many_times():
    def fn(m, x):
        y = x * x * x + x
        return m.autograd.grad([y.sum(), (y * x).sum()], [x])

    s, t, _, _ = both(fn, _arr(3))
    _close_all(s, t)


def test_chain_of_100000_ops_has_no_recursion_limit():
    limit = sys.getrecursionlimit()
    x = sg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y = y * 3.0
    y.sum().backward()
    assert sys.getrecursionlimit() == limit
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
    np.testing.assert_array_equal(y.detach().numpy(), [300_003.0, 300_006.0])
    del y  # freeing the long chain must not overflow the stack either


def test_deep_chain_through_autograd_grad():
    x = sg.tensor(np.array([0.5]), requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y * 1.0001
    (g,) = sg.autograd.grad(y.sum(), x)
    assert_close(g, np.array([1.0001**20_000]), rtol=1e-9)


# ---------------------------------------------------------------- flags and names
def test_requires_grad_propagation_and_is_leaf():
    for m in (torch, sg):
        a = m.ones(2, requires_grad=True)
        b = m.ones(2)
        assert a.is_leaf and b.is_leaf
        c = a * b
        assert c.requires_grad and not c.is_leaf and c.grad_fn is not None
        d = b * 2
        assert not d.requires_grad and d.is_leaf and d.grad_fn is None
        e = c.detach()
        assert not e.requires_grad and e.is_leaf
        b.requires_grad_()
        assert (b * 2).requires_grad
        f = m.ones(2).requires_grad_(True)
        assert f.is_leaf and f.requires_grad
        assert not (a > 0).requires_grad
        assert not a.argmax().requires_grad


def test_accumulate_grad_node_and_next_functions():
    for m in (torch, sg):
        x = m.ones(2, requires_grad=True)
        w = m.ones(2)
        y = x * w
        (node, nr), (none_node, _) = y.grad_fn.next_functions
        assert nr == 0 and none_node is None
        name = node.name() if m is sg else type(node).__name__
        assert name == "AccumulateGrad" and node.variable is x


NAMES = {
    "add": lambda m, x: x + x,
    "mul": lambda m, x: x * 2,
    "sub": lambda m, x: x - 1,
    "div": lambda m, x: x / 3,
    "neg": lambda m, x: -x,
    "exp": lambda m, x: x.exp(),
    "sum": lambda m, x: x.sum(),
    "mean": lambda m, x: x.mean(),
    "tanh": lambda m, x: x.tanh(),
    "select": lambda m, x: x[0],
    "slice": lambda m, x: x[1:],
    "index": lambda m, x: x[[0, 1]],
    "unsqueeze": lambda m, x: x[None],
    "view": lambda m, x: x.view(-1),
    "unsafe_view": lambda m, x: x.t().reshape(-1),
    "transpose": lambda m, x: x.transpose(0, 1),
    "t": lambda m, x: x.t(),
    "permute": lambda m, x: x.permute(1, 0),
    "expand": lambda m, x: x[:1].expand(3, 4),
    "squeeze": lambda m, x: x[None].squeeze(0),
    "cat": lambda m, x: m.cat([x, x]),
    "stack": lambda m, x: m.stack([x, x]),
    "split": lambda m, x: x.split(2)[0],
    "split_sizes": lambda m, x: x.split([1, 2])[1],
    "unbind": lambda m, x: x.unbind(1)[0],
    "gather": lambda m, x: x.gather(0, m.tensor([[0, 1, 0, 1]])),
    "index_select": lambda m, x: x.index_select(1, m.tensor([0])),
    "masked_fill": lambda m, x: x.masked_fill(x > 0, 0.0),
    "flip": lambda m, x: x.flip(0),
    "repeat": lambda m, x: x.repeat(2, 1),
    "clone": lambda m, x: x.t().contiguous(),
    "triu": lambda m, x: x.triu(),
    "diagonal": lambda m, x: x.diagonal(),
}


@pytest.mark.parametrize("name", sorted(NAMES))
def test_grad_fn_names_match_torch(name):
    data = _arr(3, 4)
    s = NAMES[name](sg, sg.tensor(data, requires_grad=True))
    t = NAMES[name](torch, torch.tensor(data, requires_grad=True))
    assert s.grad_fn.name() == t.grad_fn.name()
    assert f"grad_fn=<{t.grad_fn.name()}>" in repr(s)


def test_post_accumulate_grad_hook_runs_after_accumulation():
    for m in (torch, sg):
        p = m.ones(3, requires_grad=True)
        seen = []
        p.register_post_accumulate_grad_hook(lambda t, seen=seen: seen.append(t.grad.clone()))
        (p * 2).sum().backward()
        (p * 2).sum().backward()
        assert [s.numpy().tolist() for s in seen] == [[2.0] * 3, [4.0] * 3]
