"""Activation checkpointing (shardgrad.utils.checkpoint): the gradients equal an ordinary
run's and torch's, the region's saved values are really dropped and come back on backward,
dropout draws repeat, autograd.grad and second derivatives work, and misuse is caught."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.utils.checkpoint as tcp

import shardgrad as sg
import shardgrad.nn as nn
from shardgrad.utils.checkpoint import CheckpointError, checkpoint, checkpoint_sequential
from tests.conftest import assert_close

RNG = np.random.default_rng(8)


def _models():
    """The same small conv net in both libraries."""
    torch.manual_seed(0)
    t = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 3),
        torch.nn.Tanh(),
    ).double()
    s = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 3),
        nn.Tanh(),
    ).double()
    s.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    return s, t


def _grads(model, x):
    return [p.grad for p in model.parameters()] + [x.grad]


def test_gradients_match_an_ordinary_run_and_torch():
    s, t = _models()
    data = RNG.standard_normal((3, 2, 4, 4))
    sx = sg.tensor(data, requires_grad=True)
    tx = torch.tensor(data, requires_grad=True)
    (checkpoint(s, sx, use_reentrant=False) ** 2).sum().backward()
    (tcp.checkpoint(t, tx, use_reentrant=False) ** 2).sum().backward()
    for a, b in zip(_grads(s, sx), _grads(t, tx)):
        assert_close(a, b)
    plain_x = sg.tensor(data, requires_grad=True)
    checkpointed = [g.clone() for g in _grads(s, sx)]
    s.zero_grad()
    (s(plain_x) ** 2).sum().backward()
    for a, b in zip(checkpointed, _grads(s, plain_x)):
        assert np.array_equal(a.numpy(), b.numpy())  # the same arithmetic: bit for bit


def test_the_region_keeps_nothing_until_backward():
    s, _ = _models()
    x = sg.tensor(RNG.standard_normal((2, 2, 4, 4)), requires_grad=True)
    y = checkpoint(s, x, use_reentrant=False)
    conv_node = y.grad_fn
    while "Conv" not in conv_node.name():
        conv_node = conv_node.next_functions[0][0]
    assert conv_node._saved == () and conv_node.extras is None  # input and patches dropped
    assert conv_node._recompute is not None
    y.sum().backward(retain_graph=True)
    assert conv_node._recompute is None and len(conv_node._saved) == 2
    first = x.grad.clone()
    y.sum().backward()  # the recomputed values serve a second backward too
    assert_close(x.grad, first.numpy() * 2)


def test_dropout_draws_repeat_in_the_recomputation():
    model = nn.Sequential(nn.Linear(6, 32), nn.Dropout(0.5), nn.Linear(32, 2)).double()
    data = RNG.standard_normal((4, 6))
    sg.manual_seed(5)
    x = sg.tensor(data, requires_grad=True)
    checkpoint(model, x, use_reentrant=True).sum().backward()
    with_checkpoint = [g.clone() for g in _grads(model, x)]
    model.zero_grad()
    sg.manual_seed(5)
    x2 = sg.tensor(data, requires_grad=True)
    model(x2).sum().backward()
    for a, b in zip(with_checkpoint, _grads(model, x2)):
        assert np.array_equal(a.numpy(), b.numpy())


def test_autograd_grad_and_second_derivatives():
    w = sg.tensor(RNG.standard_normal(4), requires_grad=True)
    x = sg.tensor(RNG.standard_normal(4), requires_grad=True)

    def f(a):
        return (a * w).sin().sum() * (a**2).sum()

    def derivatives(y):
        gx, gw = sg.autograd.grad(y, (x, w), create_graph=True)
        (hx,) = sg.autograd.grad(gx.sum() + gw.sum(), (x,))
        return gx, gw, hx

    plain = derivatives(f(x))
    checkpointed = derivatives(checkpoint(f, x, use_reentrant=False))
    for a, b in zip(checkpointed, plain):
        assert_close(a, b.detach())


def test_several_outputs_kwargs_and_nesting():
    lin = nn.Linear(3, 3).double()
    x = sg.tensor(RNG.standard_normal((2, 3)), requires_grad=True)

    def f(a, *, scale):
        inner = checkpoint(lin, a, use_reentrant=False)  # nested: runs inside the region
        return inner * scale, inner.exp()

    a, b = checkpoint(f, x, scale=3.0, use_reentrant=False)
    (a.sum() + b.sum()).backward()
    got = x.grad.clone()
    x.grad = None
    a, b = f(x, scale=3.0)
    (a.sum() + b.sum()).backward()
    assert_close(got, x.grad)


def test_checkpoint_sequential_matches_torch():
    s, t = _models()
    data = RNG.standard_normal((2, 2, 4, 4))
    sx = sg.tensor(data, requires_grad=True)
    tx = torch.tensor(data, requires_grad=True)
    checkpoint_sequential(s, 3, sx, use_reentrant=False).sum().backward()
    tcp.checkpoint_sequential(t, 3, tx, use_reentrant=False).sum().backward()
    for a, b in zip(_grads(s, sx), _grads(t, tx)):
        assert_close(a, b)


def test_an_input_changed_in_place_before_backward_is_refused():
    x = sg.tensor(RNG.standard_normal(3), requires_grad=True)
    h = x * 1.0
    y = checkpoint(lambda a: (a * a).sum(), h, use_reentrant=False)
    h.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_a_function_that_runs_other_operations_the_second_time_is_caught():
    calls = []

    def moody(a):
        calls.append(1)
        return a.exp() if len(calls) == 1 else a.sin().cos()

    x = sg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(CheckpointError, match="same operations"):
        checkpoint(moody, x, use_reentrant=False).sum().backward()


def test_without_grad_it_is_a_plain_call():
    with sg.no_grad():
        y = checkpoint(lambda a: a * 2, sg.ones(2, requires_grad=True), use_reentrant=False)
    assert y.grad_fn is None and y.tolist() == [2.0, 2.0]


def test_other_threads_nodes_are_not_taken():
    w = sg.tensor([1.0, 2.0], requires_grad=True)
    made = {}

    def f(a):
        worker = threading.Thread(target=lambda: made.setdefault("z", (w * w).exp()))
        worker.start()
        worker.join()
        return a * 2

    checkpoint(f, sg.ones(2, requires_grad=True), use_reentrant=False)
    made["z"].sum().backward()  # its nodes kept what they saved
    assert_close(w.grad, (2 * np.array([1.0, 2.0]) * np.exp([1.0, 4.0])))
