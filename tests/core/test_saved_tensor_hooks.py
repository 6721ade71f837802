"""autograd.graph.saved_tensors_hooks and save_on_cpu: the saved tensors go through pack
and come back through unpack, gradients (first and second order) are unchanged, in-place
changes are still caught, hooks nest and stay in their thread, and disable works."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import shardgrad as sg
from shardgrad.autograd import graph
from tests.conftest import assert_close

RNG = np.random.default_rng(51)


def _model_grads(hooks=None):
    sg.manual_seed(0)
    model = sg.nn.Sequential(
        sg.nn.Conv2d(1, 3, 3, padding=1), sg.nn.Tanh(), sg.nn.Flatten(), sg.nn.Linear(48, 2)
    ).double()
    x = sg.tensor(np.random.default_rng(5).standard_normal((2, 1, 4, 4)))
    if hooks is None:
        out = model(x)
    else:
        with hooks:
            out = model(x)
    out.pow(2).sum().backward()
    return [p.grad.numpy().copy() for p in model.parameters()]


def test_hooks_see_every_saved_tensor_and_leave_gradients_unchanged():
    packed, unpacked = [], []

    def pack(t):
        packed.append(tuple(t.shape))
        return t.detach().numpy().copy()  # stored as a plain array: an "offload"

    def unpack(array):
        unpacked.append(array.shape)
        return sg.tensor(array)

    plain = _model_grads()
    hooked = _model_grads(graph.saved_tensors_hooks(pack, unpack))
    for a, b in zip(plain, hooked):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert packed and sorted(packed) == sorted(unpacked)


def test_save_on_cpu_and_second_derivatives():
    x = sg.tensor([0.5, 1.5], dtype=sg.float64, requires_grad=True)
    with graph.save_on_cpu():
        y = (x.sin() * x.exp()).sum()
    (g,) = sg.autograd.grad(y, x, create_graph=True)
    (h,) = sg.autograd.grad(g.sum(), x)
    t = torch.tensor([0.5, 1.5], dtype=torch.float64, requires_grad=True)
    with torch.autograd.graph.save_on_cpu():
        ty = (t.sin() * t.exp()).sum()
    (tg,) = torch.autograd.grad(ty, t, create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), t)
    assert_close(g, tg.detach())
    assert_close(h, th)


def test_in_place_changes_are_still_caught():
    x = sg.tensor([1.0, 2.0], requires_grad=True)
    with graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        h = x * 1.0
        y = (h * h).sum()
    h.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_hooks_nest_and_stay_in_their_thread():
    outer, inner, other = [], [], []
    x = sg.tensor([1.0, 2.0], requires_grad=True)

    def elsewhere():
        (x * x).sum().backward()  # no hooks open in this thread
        other.append("done")

    with graph.saved_tensors_hooks(lambda t: outer.append(1) or t, lambda t: t):
        with graph.saved_tensors_hooks(lambda t: inner.append(1) or t, lambda t: t):
            y = x.exp().sum()
        worker = threading.Thread(target=elsewhere)
        worker.start()
        worker.join()
    y.backward()
    assert inner and not outer and other == ["done"]


def test_custom_functions_pack_too_and_unpack_must_give_a_tensor():
    class Square(sg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return 2 * a * g

    seen = []
    x = sg.tensor([3.0], requires_grad=True)
    with graph.saved_tensors_hooks(lambda t: seen.append(1) or t, lambda t: t):
        Square.apply(x).sum().backward()
    assert seen and x.grad.tolist() == [6.0]
    with graph.saved_tensors_hooks(lambda t: 1, lambda v: v):
        y = (x * x).sum()
    with pytest.raises(TypeError, match="unpack_hook expected to be a Tensor"):
        y.backward()


def test_disable_saved_tensors_hooks():
    with graph.disable_saved_tensors_hooks("no hooks in here"):
        with pytest.raises(RuntimeError, match="no hooks in here"):
            with graph.saved_tensors_hooks(lambda t: t, lambda t: t):
                pass
    with graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        pass  # allowed again outside
