"""shardgrad.func (functional_call, grad, grad_and_value, vjp, jacrev, jacfwd, hessian,
vmap) against torch.func in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

# torch.func scripts a helper with the deprecated torch.jit
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
rng = np.random.default_rng(2)
X, Y = rng.standard_normal((5, 3)), rng.standard_normal((5, 1))
torch.manual_seed(0)
W = {k: v.detach().numpy().copy() for k, v in torch.nn.Linear(3, 1).double().state_dict().items()}


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _model(lib):
    m = lib.nn.Linear(3, 1).double()
    m.load_state_dict({k: lib.tensor(v) for k, v in W.items()})
    return m


def _per_sample_grads(lib):
    m = _model(lib)
    params = {k: v.detach() for k, v in m.named_parameters()}

    def loss(p, xi, yi):
        return ((lib.func.functional_call(m, p, (xi.unsqueeze(0),)) - yi) ** 2).sum()

    grads = lib.func.vmap(lib.func.grad(loss), in_dims=(None, 0, 0))(
        params, lib.tensor(X), lib.tensor(Y)
    )
    return {k: _np(v) for k, v in grads.items()}


def test_per_sample_gradients_match_torch():
    ours, theirs = _per_sample_grads(sg), _per_sample_grads(torch)
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert ours[k].shape == theirs[k].shape
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "call",
    [
        lambda lib, t: lib.func.hessian(lambda x: (x**3).sum() * x[0])(t),
        lambda lib, t: lib.func.jacrev(lambda x: x.sin() * x[0])(t),
        lambda lib, t: lib.func.jacfwd(lambda x: x.exp().cumsum(0))(t),
        lambda lib, t: lib.func.grad(lambda x, y: (x * y).sum() ** 2, argnums=(0, 1))(t, t * 2),
        lambda lib, t: lib.func.grad(lib.func.grad(lambda x: x.sin()))(t[0]),
        lambda lib, t: lib.func.grad_and_value(lambda x: ((x**2).sum(), x.mean()), has_aux=True)(t),
        lambda lib, t: lib.func.vjp(lambda x: x.exp() * x, t)[1](t + 1),
        lambda lib, t: lib.func.vmap(lambda x: (x.sum(), x * 2), out_dims=(0, 1))(t.reshape(2, 1)),
        lambda lib, t: lib.func.vmap(lib.func.vmap(lambda a, b: a * b), in_dims=(0, None))(
            t.reshape(2, 1), t[:1]
        ),
    ],
    ids=[
        "hessian", "jacrev", "jacfwd", "grad argnums", "grad of grad", "grad_and_value aux",
        "vjp", "vmap tuple out_dims", "nested vmap",
    ],
)  # fmt: skip
def test_transforms_match_torch(call):
    def flat(result):
        if isinstance(result, (tuple, list)):
            return [x for r in result for x in flat(r)]
        return [result]

    ours = flat(call(sg, sg.tensor([0.5, 1.5], dtype=sg.float64)))
    theirs = flat(call(torch, torch.tensor([0.5, 1.5], dtype=torch.float64)))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(_np(a), b.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_functional_call_leaves_the_module_alone_and_checks_names():
    for lib in (sg, torch):
        m = _model(lib)
        zeros = {k: lib.zeros_like(v) for k, v in m.named_parameters()}
        out = lib.func.functional_call(m, zeros, (lib.tensor(X),))
        assert not out.detach().numpy().any()
        np.testing.assert_allclose(
            _np(m.weight) if lib is sg else m.weight.detach().numpy(), W["weight"]
        )
        with pytest.raises(RuntimeError, match="Missing key"):
            lib.func.functional_call(m, {"weight": zeros["weight"]}, (lib.tensor(X),), strict=True)
        both = lib.func.functional_call(
            m, ({"weight": zeros["weight"]}, {"bias": zeros["bias"]}), lib.tensor(X)
        )
        assert not both.detach().numpy().any()


def test_vmap_errors():
    with pytest.raises(ValueError, match="same size in the mapped dimension"):
        sg.func.vmap(lambda a, b: a + b)(sg.zeros(2), sg.zeros(3))
    with pytest.raises(RuntimeError, match="scalar"):
        sg.func.grad(lambda x: x * 2)(sg.zeros(2))
