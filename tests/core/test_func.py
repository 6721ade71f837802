"""shardgrad.func (functional_call, grad, grad_and_value, vjp, jvp, linearize, jacrev,
jacfwd, hessian, vmap) against torch.func in float64."""

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


# ---------------------------------------------------------------- jvp, linearize
def _f(lib, x, y):
    return (lib.sin(x) * y).sum(-1) + x.pow(3).mean(), x @ y.T


def _module_jvp(lib, model, x):
    params = {k: v.detach() for k, v in model.named_parameters()}
    direction = {k: lib.ones_like(v) for k, v in params.items()}
    return lib.func.jvp(
        lambda p: lib.func.functional_call(model, p, (x,)).pow(2).sum(), (params,), (direction,)
    )


@pytest.mark.parametrize(
    "case",
    [
        lambda lib, x, y, tx, ty: lib.func.jvp(lambda a, b: _f(lib, a, b), (x, y), (tx, ty)),
        # one output, one primal
        lambda lib, x, y, tx, ty: lib.func.jvp(lambda a: lib.tanh(a * y).sum(0), (x,), (tx,)),
        # has_aux: the aux output comes back untouched
        lambda lib, x, y, tx, ty: lib.func.jvp(
            lambda a: (lib.exp(a).sum(), a.detach() * 2), (x,), (tx,), has_aux=True
        ),
        # through a module's parameters, the direction a parameter perturbation moves the loss
        lambda lib, x, y, tx, ty: _module_jvp(lib, _model(lib), x),
    ],
    ids=["two primals two outputs", "one", "has_aux", "module parameters"],
)
def test_jvp_matches_torch(case):
    t = rng.standard_normal((5, 3))
    results = [
        case(lib, lib.tensor(X), lib.tensor(Y.repeat(3, 1)), lib.tensor(t), lib.tensor(-t))
        for lib in (sg, torch)
    ]
    ours, theirs = results
    flat_ours = [v for part in ours for v in (part if isinstance(part, tuple) else (part,))]
    flat_theirs = [v for part in theirs for v in (part if isinstance(part, tuple) else (part,))]
    assert len(flat_ours) == len(flat_theirs)
    for a, b in zip(flat_ours, flat_theirs):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-10, atol=1e-12)
        assert a.requires_grad is False  # no graph leaks out of a transform


def test_jvp_nests_inside_grad_and_linearize_reuses_one_trace():
    """d/dx of a directional derivative (a Hessian-vector product, forward-over-reverse's
    mirror), and linearize's jvp_fn against jvp for two tangents."""
    x, v = rng.standard_normal(4), rng.standard_normal(4)

    def hvp(lib):
        def directional(a):
            return lib.func.jvp(lambda b: (b.sin() * b).sum(), (a,), (lib.tensor(v),))[1]

        return _np(lib.func.grad(directional)(lib.tensor(x)))

    np.testing.assert_allclose(hvp(sg), hvp(torch), rtol=1e-10)
    value, jvp_fn = sg.func.linearize(lambda a: a.exp() * a, sg.tensor(x))
    for tangent in (v, -2 * v):
        _, expected = sg.func.jvp(lambda a: a.exp() * a, (sg.tensor(x),), (sg.tensor(tangent),))
        np.testing.assert_allclose(_np(jvp_fn(sg.tensor(tangent))), _np(expected), rtol=1e-12)
    np.testing.assert_allclose(_np(value), np.exp(x) * x)


def test_jvp_errors_and_outputs_that_ignore_the_input():
    x = sg.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="Expected primals to be a tuple"):
        sg.func.jvp(lambda a: a * 2, x, (x,))
    with pytest.raises(RuntimeError, match="same python structure"):
        sg.func.jvp(lambda a: a * 2, (x,), (x, x))
    with pytest.raises(RuntimeError, match="same shape"):
        sg.func.jvp(lambda a: a * 2, (x,), (sg.tensor([1.0]),))
    _, out = sg.func.jvp(lambda a: sg.ones(3), (x,), (x,))
    assert out.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(RuntimeError, match="does not depend"):
        sg.func.jvp(lambda a: sg.ones(3), (x,), (x,), strict=True)
