"""Helpers for the nn differential tests: copy a torch module's state into a shardgrad one,
then compare outputs and every gradient in float64."""

from __future__ import annotations

import numpy as np
import torch

import shardgrad as sg

RTOL, ATOL = 1e-6, 1e-9


def close(actual, expected, rtol: float = RTOL, atol: float = ATOL) -> None:
    a = (
        actual.detach().numpy()
        if isinstance(actual, (sg.Tensor, torch.Tensor))
        else np.asarray(actual)
    )
    e = expected.detach().numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def copy_state(sg_module, torch_module) -> None:
    """Load torch's state dict (as numpy arrays) into the shardgrad module."""
    state = {k: v.detach().numpy().copy() for k, v in torch_module.state_dict().items()}
    sg_module.load_state_dict(state)


def compare_module(
    sg_module,
    torch_module,
    x: np.ndarray,
    seed: int = 0,
    grad_input: bool = True,
    rtol: float = RTOL,
    atol: float = ATOL,
):
    """Run both modules on x (float64), compare outputs, input gradients, parameter gradients
    and buffers; return the two outputs."""
    sg_module.double()
    torch_module.double()
    copy_state(sg_module, torch_module)
    floating = np.asarray(x).dtype.kind == "f"
    xs = sg.tensor(x, requires_grad=grad_input and floating)
    xt = torch.tensor(x, requires_grad=grad_input and floating)
    ys, yt = sg_module(xs), torch_module(xt)
    close(ys, yt, rtol, atol)
    g = np.random.default_rng(seed).standard_normal(tuple(yt.shape))
    ys.backward(sg.tensor(g))
    yt.backward(torch.tensor(g))
    if grad_input and floating:
        close(xs.grad, xt.grad, rtol, atol)
    names_sg = [n for n, _ in sg_module.named_parameters()]
    names_t = [n for n, _ in torch_module.named_parameters()]
    assert names_sg == names_t
    for (n, ps), (_, pt) in zip(sg_module.named_parameters(), torch_module.named_parameters()):
        if pt.grad is None:
            assert ps.grad is None, n
        else:
            close(ps.grad, pt.grad, rtol, atol)
    for (_, bs), (_, bt) in zip(sg_module.named_buffers(), torch_module.named_buffers()):
        close(bs, bt, rtol, atol)
    return ys, yt


class TwoLayer(sg.nn.Module):
    """A user-defined model used by the spec tests (importable as `_nn_helpers:TwoLayer`)."""

    def __init__(self, n_in: int, hidden: int = 8, act: str = "relu", head=None) -> None:
        super().__init__()
        self.fc = sg.nn.Linear(n_in, hidden)
        self.act = sg.nn.ReLU() if act == "relu" else sg.nn.Tanh()
        self.head = head if head is not None else sg.nn.Linear(hidden, 2)

    def forward(self, x):
        return self.head(self.act(self.fc(x)))
