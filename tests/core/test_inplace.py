"""In-place ops against torch: values, version counters, gradients through in-place changes
(also through views), the refusals torch makes (leaves, saved tensors, no_grad views,
overlapping memory, dtype changes), and tensor hooks, `retain_grad`, `.data` and `detach`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import assert_close

RNG = np.random.default_rng(3)

MODIFIED = "modified by an inplace operation"


def _arr(*shape):
    return RNG.standard_normal(shape)


def both(fn, *arrays, grad=True):
    """`fn(module, *leaves)` in shardgrad and torch; returns results and leaves."""
    s_in = [sg.tensor(a, requires_grad=grad) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=grad) for a in arrays]
    return fn(sg, *s_in), fn(torch, *t_in), s_in, t_in


# ---------------------------------------------------------------- ops on plain tensors
OPS = {
    "add_": lambda m, x: x.add_(m.tensor([1.0, 2.0, 3.0], dtype=m.float64)),
    "add_alpha": lambda m, x: x.add_(m.ones(3, dtype=m.float64), alpha=-0.5),
    "add_scalar": lambda m, x: x.add_(2),
    "sub_": lambda m, x: x.sub_(m.ones(2, 3, dtype=m.float64), alpha=3),
    "mul_": lambda m, x: x.mul_(m.tensor([[2.0], [-1.0]], dtype=m.float64)),
    "div_": lambda m, x: x.div_(4.0),
    "div_floor": lambda m, x: x.div_(0.7, rounding_mode="floor"),
    "pow_": lambda m, x: x.pow_(2),
    "iadd": lambda m, x: x.__iadd__(1.5),
    "isub": lambda m, x: x.__isub__(m.ones(3, dtype=m.float64)),
    "imul": lambda m, x: x.__imul__(3),
    "itruediv": lambda m, x: x.__itruediv__(-2),
    "zero_": lambda m, x: x.zero_(),
    "fill_": lambda m, x: x.fill_(7.5),
    "fill_tensor": lambda m, x: x.fill_(m.tensor(2.5)),
    "copy_": lambda m, x: x.copy_(m.arange(3.0)),
    "copy_dtype": lambda m, x: x.copy_(m.ones(2, 3, dtype=m.int64)),
    "clamp_": lambda m, x: x.clamp_(-0.5, 0.5),
    "clamp_min": lambda m, x: x.clamp_(min=0.0),
    "clip_": lambda m, x: x.clip_(max=0.1),
    "exp_": lambda m, x: x.exp_(),
    "neg_": lambda m, x: x.neg_(),
    "abs_": lambda m, x: x.abs_(),
    "tanh_": lambda m, x: x.tanh_(),
    "sigmoid_": lambda m, x: x.sigmoid_(),
    "relu_": lambda m, x: x.relu_(),
    "masked_fill_": lambda m, x: x.masked_fill_(x > 0, 0.0),
    "setitem": lambda m, x: x.__setitem__((0, slice(1, None)), 9.0),
    "addcmul_": lambda m, x: x.addcmul_(x, x, value=0.5),
    "addcdiv_": lambda m, x: x.addcdiv_(x, x * x + 1, value=2.0),
    "lerp_": lambda m, x: x.lerp_(m.ones(2, 3, dtype=m.float64), 0.25),
    "triu_": lambda m, x: x.triu_(),
    "tril_": lambda m, x: x.tril_(-1),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_inplace_values_identity_and_version(name):
    data = _arr(2, 3)
    x, t = sg.tensor(data), torch.tensor(data)
    alias, t_alias = x.view(-1), t.view(-1)
    before, t_before = x._version, t._version
    r = OPS[name](sg, x)
    OPS[name](torch, t)
    assert r is None or r is x
    assert_close(x, t)
    assert_close(alias, t_alias)  # the same memory was written
    assert x._version - before == t._version - t_before


GRAD_OPS = {
    "add_": lambda m, x, w: x.add_(w),
    "add_alpha": lambda m, x, w: x.add_(w, alpha=2.0),
    "sub_": lambda m, x, w: x.sub_(w * w),
    "mul_": lambda m, x, w: x.mul_(w),
    "div_": lambda m, x, w: x.div_(w * w + 1.0),
    "pow_": lambda m, x, w: x.pow_(2),
    "imul": lambda m, x, w: x.__imul__(w),
    "zero_": lambda m, x, w: x.zero_(),
    "fill_": lambda m, x, w: x.fill_(3.0),
    "fill_tensor": lambda m, x, w: x.fill_(w.sum()),
    "copy_": lambda m, x, w: x.copy_(w * 2.0),
    "copy_broadcast": lambda m, x, w: x.copy_(w[0]),
    "clamp_": lambda m, x, w: x.clamp_(-0.3, 0.6),
    "exp_": lambda m, x, w: x.exp_(),
    "tanh_": lambda m, x, w: x.tanh_(),
    "sigmoid_": lambda m, x, w: x.sigmoid_(),
    "relu_": lambda m, x, w: x.relu_(),
    "masked_fill_": lambda m, x, w: x.masked_fill_(w > 0, 1.0),
    "addcmul_": lambda m, x, w: x.addcmul_(w, w, value=0.5),
    "addcdiv_": lambda m, x, w: x.addcdiv_(w, w * w + 1.0),
    "lerp_": lambda m, x, w: x.lerp_(w, 0.3),
    "triu_": lambda m, x, w: x.triu_(),
    "setitem": lambda m, x, w: x.__setitem__(slice(0, 1), w[1]),
}


# the nodes this family makes itself (the others come from the elementwise ops)
NAMED = {
    "zero_",
    "fill_",
    "fill_tensor",
    "copy_",
    "copy_broadcast",
    "masked_fill_",
    "setitem",
    "triu_",
}


@pytest.mark.parametrize("name", sorted(GRAD_OPS))
def test_inplace_on_non_leaf_is_differentiable(name):
    def fn(m, a, w):
        y = a * 1.5
        GRAD_OPS[name](m, y, w)
        return y

    s, t, s_in, t_in = both(fn, _arr(2, 3), _arr(2, 3))
    assert_close(s, t)
    assert not s.is_leaf
    if name in NAMED:
        assert s.grad_fn.name() == type(t.grad_fn).__name__
    g = _arr(2, 3)
    s.backward(sg.tensor(g))
    t.backward(torch.tensor(g))
    for a, b in zip(s_in, t_in):
        if b.grad is None:
            assert a.grad is None
        else:
            assert_close(a.grad, b.grad)


def test_inplace_gradcheck():
    def fn(x, w):
        y = x * 1.0
        y.mul_(w).add_(w, alpha=0.5).div_(w * w + 2.0)
        y[0] = w[1] * 3.0
        return y.exp_()

    inputs = (sg.tensor(_arr(2, 3), requires_grad=True), sg.tensor(_arr(2, 3), requires_grad=True))
    assert sg.autograd.gradcheck(fn, inputs)
    assert sg.autograd.gradgradcheck(fn, inputs)


def test_plain_buffer_becomes_part_of_the_graph():
    def fn(m, w):
        buf = m.zeros(3, dtype=m.float64)
        buf.add_(w * w)
        buf.mul_(w)
        return buf

    s, t, (sw,), (tw,) = both(fn, _arr(3))
    assert s.requires_grad and not s.is_leaf
    s.sum().backward()
    t.sum().backward()
    assert_close(sw.grad, tw.grad)


# ---------------------------------------------------------------- refusals
@pytest.mark.parametrize("name", sorted(OPS))
def test_leaf_requiring_grad_refuses(name):
    data = _arr(2, 3)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad") as ref:
        OPS[name](torch, torch.tensor(data, requires_grad=True))
    x = sg.tensor(data, requires_grad=True)
    with pytest.raises(RuntimeError) as got:
        OPS[name](sg, x)
    assert str(got.value) == str(ref.value)
    np.testing.assert_array_equal(x.detach().numpy(), data)
    assert x._version == 0


def test_inplace_under_no_grad_on_parameters_like_an_optimizer():
    data = _arr(4)

    def step(m, p):
        for _ in range(3):
            loss = (p * p).sum()
            p.grad = None
            loss.backward()
            with m.no_grad():
                p.add_(p.grad, alpha=-0.1)
                p.mul_(0.99)
                p[0] = p[0] * 0.5
                p.clamp_(-1.0, 1.0)
        return p

    s, t, _, _ = both(step, data)
    assert_close(s, t)
    assert s.is_leaf and s.requires_grad and s.grad_fn is None
    assert s._version == t._version


SAVED = {
    "mul_input": lambda m, x: (lambda y: ((y * y).sum(), y))(x * 1.0),
    "exp_output": lambda m, x: (lambda y: (y.sum(), y))(x.exp()),
    "pow_input": lambda m, x: (lambda y: ((y**3).sum(), y))(x * 1.0),
    "through_view": lambda m, x: (lambda y: ((y * y).sum(), y[0]))(x * 1.0),
    "view_saved": lambda m, x: (lambda y: ((y[0] * y[0]).sum(), y))(x * 1.0),
    "through_detach": lambda m, x: (lambda y: ((y * y).sum(), y.detach()))(x * 1.0),
}


@pytest.mark.parametrize("name", sorted(SAVED))
@pytest.mark.parametrize("grad_mode", [True, False])
def test_modifying_a_saved_tensor_is_caught(name, grad_mode):
    data = _arr(2, 3)
    for m in (torch, sg):
        x = m.tensor(data, requires_grad=True)
        loss, target = SAVED[name](m, x)
        with m.set_grad_enabled(grad_mode):
            target.add_(1.0)
        with pytest.raises(RuntimeError, match=MODIFIED):
            loss.backward()


def test_edits_through_data_are_invisible_to_autograd():
    data = _arr(3)
    s, t, (sx,), (tx,) = both(lambda m, x: (lambda y: (y, (y * y).sum()))(x * 1.0), data)
    for y, loss in (s, t):
        d = y.data
        d.add_(1.0)
        assert y._version == 0 and not d.requires_grad
        loss.backward()
    assert_close(sx.grad, tx.grad)
    assert_close(s[0], t[0])  # .data shares memory


def test_detach_shares_memory_and_version():
    x = sg.tensor(_arr(3), requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    d.zero_()
    assert x._version == d._version == 1
    np.testing.assert_array_equal(x.detach().numpy(), np.zeros(3))
    assert not x.detach()._is_view() and not x.data._is_view()


def test_no_grad_view_modified_with_grad_enabled_refuses():
    for m in (torch, sg):
        y = m.ones(3, requires_grad=True) * 1.0
        with m.no_grad():
            v = y[:2]
        with pytest.raises(RuntimeError, match="view was created in no_grad mode"):
            v.add_(1.0)
        z = m.zeros(3)
        with m.no_grad():
            u = z[:2]
        u.add_(1.0)  # nothing requires grad: allowed
        with pytest.raises(RuntimeError, match="view was created in no_grad mode"):
            u.add_(m.ones(2, requires_grad=True))


def test_view_of_leaf_refuses():
    for m in (torch, sg):
        x = m.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="a view of a leaf Variable"):
            x[:2].mul_(2.0)
        with pytest.raises(RuntimeError, match="a view of a leaf Variable"):
            x.view(3, 1)[0] = 1.0


@pytest.mark.parametrize(
    "make", [lambda m, y: y.split(2)[0], lambda m, y: y.unbind()[1], lambda m, y: y.chunk(2)[1]]
)
def test_multi_output_views_refuse_inplace_with_grad(make):
    for m in (torch, sg):
        y = m.ones(4, requires_grad=True) * 1.0
        with pytest.raises(RuntimeError, match="returns multiple views"):
            make(m, y).mul_(2.0)
        plain = m.ones(4)
        make(m, plain).mul_(2.0)
        assert float(plain.sum()) > 4.0


def test_overlapping_memory_refuses_arithmetic():
    for m in (torch, sg):
        e = m.zeros(3).expand(2, 3)
        with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
            e.add_(1.0)


INPLACE_ERRORS = {
    "int_add_float": lambda m: m.ones(3, dtype=m.int64).add_(1.5),
    "int_add_float_tensor": lambda m: m.ones(3, dtype=m.int64).add_(m.ones(3)),
    "bool_add_int": lambda m: m.ones(3, dtype=m.bool).add_(1),
    "int_div": lambda m: m.ones(3, dtype=m.int64).div_(2),
    "int_clamp_float": lambda m: m.arange(3).clamp_(0.5, 1.5),
    "broadcast_grows": lambda m: m.ones(3).add_(m.ones(2, 3)),
    "mul_grows": lambda m: m.ones(3).mul_(m.ones(2, 3)),
    "copy_bad_shape": lambda m: m.ones(2, 3).copy_(m.ones(2)),
    "copy_grows": lambda m: m.ones(3).copy_(m.ones(2, 3)),
    "fill_1d_value": lambda m: m.ones(3).fill_(m.ones(2)),
    "masked_fill_float_mask": lambda m: m.ones(3).masked_fill_(m.ones(3), 1.0),
}


@pytest.mark.parametrize("name", sorted(INPLACE_ERRORS))
def test_inplace_errors_match_torch(name):
    with pytest.raises(Exception) as expected:
        INPLACE_ERRORS[name](torch)
    with pytest.raises(expected.type):
        INPLACE_ERRORS[name](sg)


def test_int_tensors_in_place():
    for m in (torch, sg):
        x = m.arange(6).reshape(2, 3)
        x.mul_(3).add_(1).sub_(m.ones(3, dtype=m.int64)).fill_(x[0, 1])
        x.div_(2, rounding_mode="floor")
        x.fill_(2.9)
        assert x.dtype == m.int64
    np.testing.assert_array_equal(x.numpy(), np.full((2, 3), 2))


# ---------------------------------------------------------------- in place through views
VIEW_CASES = {
    "slice_mul": lambda m, y, w: y[0:2].mul_(w[0]),
    "row_setitem": lambda m, y, w: y.__setitem__(1, w[1] * w[2]),
    "t_row_add": lambda m, y, w: y.t()[0].add_(w[:, 0]),
    "diagonal_fill": lambda m, y, w: y.diagonal().fill_(5.0),
    "view_setitem": lambda m, y, w: y.view(-1)[4:6].copy_(w[0, :2]),
    "view_of_view": lambda m, y, w: y[1:].unsqueeze(0)[0, :, 1].mul_(w[2, 0]),
    "narrow_clamp": lambda m, y, w: y.narrow(1, 1, 2).clamp_(-0.2, 0.2),
    "select_zero": lambda m, y, w: y.select(1, 2).zero_(),
    "permute_exp": lambda m, y, w: y.permute(1, 0)[1:].exp_(),
    "augmented": lambda m, y, w: y.__setitem__((slice(None), 0), y[:, 0].__iadd__(w[:, 1])),
}


@pytest.mark.parametrize("name", sorted(VIEW_CASES))
def test_inplace_through_views(name):
    def fn(m, a, w):
        y = a * 2.0
        VIEW_CASES[name](m, y, w)
        return y * y

    s, t, s_in, t_in = both(fn, _arr(3, 3), _arr(3, 3))
    assert_close(s, t)
    g = _arr(3, 3)
    s.backward(sg.tensor(g))
    t.backward(torch.tensor(g))
    for a, b in zip(s_in, t_in):
        if b.grad is None:
            assert a.grad is None
        else:
            assert_close(a.grad, b.grad)


@pytest.mark.parametrize(
    "make_view",
    [
        lambda y: y[1:],
        lambda y: y.unsqueeze(0).expand(3, 4),  # repeated elements: gradients must add up
        lambda y: y.view(2, 2).t(),
    ],
)
def test_base_changed_after_view_was_taken(make_view):
    def fn(m, a):
        y = a * 2.0
        v = make_view(y)
        y.mul_(3.0)  # v sees the new values, and its history follows y's
        return v * v

    s, t, (sx,), (tx,) = both(fn, _arr(4))
    assert_close(s, t)
    g = _arr(*t.shape)
    s.backward(sg.tensor(g))
    t.backward(torch.tensor(g))
    assert_close(sx.grad, tx.grad)


def test_view_of_a_parameter_kept_across_optimizer_steps():
    def fn(m, w):
        wt = w.t()
        grads = []
        for _ in range(3):
            w.grad = None
            (wt * wt * wt).sum().backward()
            grads.append(w.grad.clone())
            with m.no_grad():
                w.sub_(w.grad, alpha=0.01)
        return grads

    s, t, _, _ = both(fn, _arr(2, 3))
    for a, b in zip(s, t):
        assert_close(a, b)


def test_root_becomes_copy_slices():
    for m in (torch, sg):
        w = m.ones(2, requires_grad=True)
        buf = m.zeros(3, 2)
        buf[1].copy_(w * 3.0)
        name = buf.grad_fn.name() if m is sg else type(buf.grad_fn).__name__
        assert name == "CopySlices" and buf.requires_grad and not buf.is_leaf


def test_view_inplace_gradcheck():
    def fn(x, w):
        y = x * 1.0
        y[:, 1:].mul_(w)
        y.t()[0].add_(w[:, 0] * w[:, 1])
        y.diagonal().clamp_(-0.5, 0.5)
        return y

    inputs = (sg.tensor(_arr(2, 3), requires_grad=True), sg.tensor(_arr(2, 2), requires_grad=True))
    assert sg.autograd.gradcheck(fn, inputs)
    assert sg.autograd.gradgradcheck(fn, inputs)


# ---------------------------------------------------------------- hooks and retain_grad
def test_retain_grad_on_non_leaf_and_leaf():
    s, t, (sx,), (tx,) = both(lambda m, x: (lambda y: (y.retain_grad(), y)[1])(x * 3.0), _arr(3))
    (s * s).sum().backward()
    (t * t).sum().backward()
    assert_close(s.grad, t.grad)
    assert s.retains_grad and not sx.retains_grad
    sx.retain_grad()  # a leaf already keeps its grad: no-op
    with pytest.raises(RuntimeError):
        sg.ones(2).retain_grad()


def test_retain_grad_accumulates_and_sees_hooked_gradient():
    def fn(m, x):
        y = x * 2.0
        y.retain_grad()
        y.register_hook(lambda g: g * 10.0)  # registered after retain_grad, still runs first
        (y * y).sum().backward(retain_graph=True)
        (y * y).sum().backward()
        return y.grad, x.grad

    (sy, sxg), (ty, txg), _, _ = both(fn, _arr(3))
    assert_close(sy, ty)
    assert_close(sxg, txg)


@pytest.mark.parametrize("leaf", [True, False])
def test_register_hook_replaces_gradient_and_can_be_removed(leaf):
    def fn(m, x):
        y = x if leaf else x * 1.0
        seen = []
        h = y.register_hook(lambda g: seen.append(g.clone()) or g * 3.0)
        (y * y).sum().backward(retain_graph=True)
        first = x.grad.clone()
        h.remove()
        x.grad = None
        (y * y).sum().backward()
        return first, x.grad, seen[0]

    s, t, _, _ = both(fn, _arr(3))
    for a, b in zip(s, t):
        assert_close(a, b)


def test_hook_returning_none_keeps_gradient_and_hooks_chain():
    def fn(m, x):
        y = x * 2.0
        y.register_hook(lambda g: None)
        y.register_hook(lambda g: g + 1.0)
        y.register_hook(lambda g: g * 2.0)
        y.sum().backward()
        return x.grad

    s, t, _, _ = both(fn, _arr(3))
    assert_close(s, t)


def test_register_hook_needs_requires_grad():
    for m in (torch, sg):
        with pytest.raises(RuntimeError):
            m.ones(2).register_hook(lambda g: g)
