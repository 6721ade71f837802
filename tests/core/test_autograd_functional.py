"""autograd.functional (vjp, jvp, jacobian, hessian, vhp, hvp) against torch's in float64:
results for single and tuple inputs and outputs, create_graph, strict mode and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

# torch.autograd.functional scripts a helper with the deprecated torch.jit
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
rng = np.random.default_rng(4)
A = rng.standard_normal((3, 4))
X, Y, V, W = (rng.standard_normal(n) for n in (4, 3, 4, 3))


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _flat(result) -> list:
    if isinstance(result, tuple):
        return [x for item in result for x in _flat(item)]
    return [result]


def _both(call):
    ours, theirs = call(sg), call(torch)
    ours, theirs = _flat(ours), _flat(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(_np(a), b.detach().numpy(), rtol=1e-10, atol=1e-12)


def two_in_two_out(lib):
    def fn(x, y):
        return (lib.tensor(A) @ x).tanh() * y, (x**3).sum() + (y * x[:3]).sum()

    return fn


def scalar(lib):
    return lambda x: (x.sin() * x).sum() + (x[0] * x[1]) ** 2


def vector(lib):
    return lambda x: (lib.tensor(A) @ x).exp()


@pytest.mark.parametrize(
    "call",
    [
        lambda lib: lib.autograd.functional.jacobian(vector(lib), lib.tensor(X)),
        lambda lib: lib.autograd.functional.jacobian(
            two_in_two_out(lib), (lib.tensor(X), lib.tensor(Y))
        ),
        lambda lib: lib.autograd.functional.jacobian(
            vector(lib), lib.tensor(X), strategy="forward-mode", vectorize=True
        ),
        lambda lib: lib.autograd.functional.hessian(scalar(lib), lib.tensor(X)),
        lambda lib: lib.autograd.functional.hessian(
            lambda x, y: (x[:3] * y).sum() ** 2 + x.pow(4).sum(), (lib.tensor(X), lib.tensor(Y))
        ),
        lambda lib: lib.autograd.functional.vjp(vector(lib), lib.tensor(X), lib.tensor(W)),
        lambda lib: lib.autograd.functional.vjp(scalar(lib), lib.tensor(X)),
        lambda lib: lib.autograd.functional.jvp(vector(lib), lib.tensor(X), lib.tensor(V)),
        lambda lib: lib.autograd.functional.jvp(
            two_in_two_out(lib), (lib.tensor(X), lib.tensor(Y)), (lib.tensor(V), lib.tensor(W))
        ),
        lambda lib: lib.autograd.functional.hvp(scalar(lib), lib.tensor(X), lib.tensor(V)),
        lambda lib: lib.autograd.functional.vhp(scalar(lib), lib.tensor(X), lib.tensor(V)),
    ],
    ids=[
        "jacobian", "jacobian tuples", "jacobian forward-mode", "hessian", "hessian tuples",
        "vjp", "vjp scalar", "jvp", "jvp tuples", "hvp", "vhp",
    ],
)  # fmt: skip
def test_matches_torch(call):
    _both(call)


def test_create_graph_lets_the_result_be_differentiated_again():
    for lib in (sg, torch):
        x = lib.tensor(X, requires_grad=True)
        h = lib.autograd.functional.hessian(scalar(lib), x, create_graph=True)
        h.trace().backward()
        if lib is sg:
            ours = _np(x.grad)
        else:
            np.testing.assert_allclose(ours, x.grad.numpy(), rtol=1e-10)
    plain = sg.autograd.functional.jacobian(vector(sg), sg.tensor(X))
    assert not plain.requires_grad


def test_strict_mode_and_unused_inputs():
    def ignores_y(x, y):
        return x * 2

    for lib in (sg, torch):
        jac = lib.autograd.functional.jacobian(ignores_y, (lib.tensor(X), lib.tensor(Y)))
        assert not jac[1].detach().numpy().any()
        with pytest.raises(RuntimeError, match="independent of input 1"):
            lib.autograd.functional.jacobian(ignores_y, (lib.tensor(X), lib.tensor(Y)), strict=True)


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda lib: lib.autograd.functional.vjp(vector(lib), lib.tensor(X)), RuntimeError),
        (lambda lib: lib.autograd.functional.jacobian(vector(lib), [lib.tensor(X)]), TypeError),
        (
            lambda lib: lib.autograd.functional.hessian(vector(lib), lib.tensor(X)),
            RuntimeError,
        ),
        (
            lambda lib: lib.autograd.functional.vjp(vector(lib), lib.tensor(X), lib.tensor(V)),
            RuntimeError,
        ),
    ],
    ids=["v needed", "inputs type", "hessian of a vector", "v shape"],
)
def test_errors_match_torch(call, error):
    messages = []
    for lib in (sg, torch):
        with pytest.raises(error) as info:
            call(lib)
        messages.append(str(info.value).replace("torch.Size", "shardgrad.Size"))
    assert messages[0] == messages[1]
