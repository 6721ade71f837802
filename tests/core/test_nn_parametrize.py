"""nn.utils.parametrize, parametrizations.weight_norm / spectral_norm and the older
nn.utils.weight_norm against torch in float64: state-dict keys, forward values, gradients of
the originals, assignment through right_inverse, and removal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

pytestmark = pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")
X = np.random.default_rng(3).standard_normal((4, 3))


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _pair(make):
    """The same layer in both libraries, shardgrad's loaded with torch's state."""
    torch.manual_seed(0)
    theirs = make(torch).double()
    ours = make(sg).double()
    ours.load_state_dict({k: sg.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return ours, theirs


def _compare_steps(ours, theirs, steps: int = 3):
    for step in range(steps):
        results = []
        for lib, layer in ((sg, ours), (torch, theirs)):
            layer.zero_grad()
            out = layer(lib.tensor(X * (step + 1)))
            (
                out * lib.tensor(np.arange(out.numel(), dtype=np.float64).reshape(out.shape))
            ).sum().backward()
            results.append([out] + [p.grad for _, p in sorted(layer.named_parameters())])
        for a, b in zip(*results, strict=True):
            np.testing.assert_allclose(_np(a), b.detach().numpy(), rtol=1e-10, atol=1e-12)


class Symmetric:
    """A parametrization (plain class, given the right Module base per library)."""

    def forward(self, x):
        return x.triu() + x.triu(1).mT

    def right_inverse(self, x):
        return x.triu()


def _symmetric(lib):
    return type("Symmetric", (Symmetric, lib.nn.Module), {})()


def test_weight_norm_parametrization_matches_torch():
    def make(lib):
        return lib.nn.utils.parametrizations.weight_norm(lib.nn.Linear(3, 5))

    ours, theirs = _pair(make)
    assert type(ours).__name__ == type(theirs).__name__ == "ParametrizedLinear"
    _compare_steps(ours, theirs)


@pytest.mark.parametrize("dim", [0, 1, None])
def test_old_weight_norm_matches_torch(dim):
    ours, theirs = _pair(lambda lib: lib.nn.utils.weight_norm(lib.nn.Linear(3, 5), dim=dim))
    _compare_steps(ours, theirs)
    for lib, layer in ((sg, ours), (torch, theirs)):
        lib.nn.utils.remove_weight_norm(layer)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(_np(ours.weight), theirs.weight.detach().numpy(), rtol=1e-12)


def test_spectral_norm_matches_torch_including_its_power_iteration():
    ours, theirs = _pair(
        lambda lib: lib.nn.utils.parametrizations.spectral_norm(lib.nn.Linear(3, 5))
    )
    _compare_steps(ours, theirs)  # training: _u and _v move each call, identically
    np.testing.assert_allclose(
        _np(ours.parametrizations.weight[0]._u),
        theirs.parametrizations.weight[0]._u.numpy(),
        rtol=1e-10,
    )
    ours.eval()
    theirs.eval()
    _compare_steps(ours, theirs, steps=1)


@pytest.mark.parametrize(
    "make",
    [
        lambda lib: lib.nn.utils.spectral_norm(lib.nn.Linear(3, 5)),
        lambda lib: lib.nn.utils.spectral_norm(lib.nn.Linear(3, 5), n_power_iterations=3, dim=1),
    ],
)
def test_old_spectral_norm_matches_torch(make):
    """The hook-based form: weight_orig, weight_u, weight_v in the state dict; u and v move on
    every training forward as torch's do; eval and remove_spectral_norm as torch's."""
    ours, theirs = _pair(make)
    assert list(ours.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    _compare_steps(ours, theirs)
    for name in ("weight_u", "weight_v"):
        np.testing.assert_allclose(
            _np(getattr(ours, name)), getattr(theirs, name).numpy(), rtol=1e-10
        )
    ours.eval()
    theirs.eval()
    _compare_steps(ours, theirs, steps=1)
    for lib, layer in ((sg, ours), (torch, theirs)):
        lib.nn.utils.remove_spectral_norm(layer)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(_np(ours.weight), theirs.weight.detach().numpy(), rtol=1e-10)


def test_old_spectral_norm_on_a_transposed_convolution_uses_dim_1():
    layer = sg.nn.utils.spectral_norm(sg.nn.ConvTranspose2d(2, 6, 3))
    assert tuple(layer.weight_u.shape) == (6,) and tuple(layer.weight_v.shape) == (2 * 9,)
    with pytest.raises(RuntimeError, match="two spectral_norm hooks"):
        sg.nn.utils.spectral_norm(layer)


def test_custom_parametrization_assignment_cache_and_removal_match_torch():
    def make(lib):
        layer = lib.nn.Linear(3, 3)
        lib.nn.utils.parametrize.register_parametrization(layer, "weight", _symmetric(lib))
        return layer

    ours, theirs = _pair(make)
    _compare_steps(ours, theirs)
    w = np.arange(9.0).reshape(3, 3)
    for lib, layer in ((sg, ours), (torch, theirs)):
        with lib.no_grad():
            layer.weight = lib.tensor(w)  # through right_inverse
        with lib.nn.utils.parametrize.cached():
            assert layer.weight is layer.weight
        assert lib.nn.utils.parametrize.is_parametrized(layer, "weight")
    np.testing.assert_allclose(_np(ours.weight), theirs.weight.detach().numpy())
    for lib, layer in ((sg, ours), (torch, theirs)):
        lib.nn.utils.parametrize.remove_parametrizations(layer, "weight")
        assert not lib.nn.utils.parametrize.is_parametrized(layer)
    assert type(ours) is sg.nn.Linear
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(_np(ours.weight), theirs.weight.detach().numpy())


def _orthogonal_pair(shape, **kwargs):
    """torch's and shardgrad's layer from the same initial weight, then made orthogonal."""
    torch.manual_seed(0)
    theirs = torch.nn.Linear(shape[1], shape[0]).double()
    ours = sg.nn.Linear(shape[1], shape[0]).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    torch.nn.utils.parametrizations.orthogonal(theirs, **kwargs)
    sg.nn.utils.parametrizations.orthogonal(ours, **kwargs)
    return ours, theirs


@pytest.mark.parametrize(
    "shape, kwargs",
    [
        ((4, 4), {}),
        ((4, 4), {"orthogonal_map": "cayley"}),
        ((4, 4), {"orthogonal_map": "householder"}),
        ((5, 3), {"orthogonal_map": "householder", "use_trivialization": False}),
        ((3, 5), {"orthogonal_map": "householder", "use_trivialization": False}),
    ],
)
def test_orthogonal_matches_torch_while_training(shape, kwargs):
    ours, theirs = _orthogonal_pair(shape, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(_np(ours.weight), theirs.weight.detach().numpy(), atol=1e-12)
    for lib, layer in ((sg, ours), (torch, theirs)):
        opt = lib.optim.SGD(layer.parameters(), lr=0.1)
        for step in range(3):
            opt.zero_grad()
            x = lib.tensor(np.random.default_rng(step).standard_normal((6, shape[1])))
            layer(x).pow(3).sum().backward()
            opt.step()
    np.testing.assert_allclose(_np(ours.weight), theirs.weight.detach().numpy(), atol=1e-10)
    w = _np(ours.weight)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-12)  # still orthonormal


def test_orthogonal_rectangular_with_trivialization_and_assignment():
    layer = sg.nn.utils.parametrizations.orthogonal(sg.nn.Linear(3, 5).double())
    w = _np(layer.weight)
    np.testing.assert_allclose(w.T @ w, np.eye(3), atol=1e-12)
    target = np.linalg.qr(np.random.default_rng(0).standard_normal((5, 3)))[0]
    layer.weight = sg.tensor(target)  # right_inverse: the weight becomes this matrix
    np.testing.assert_allclose(_np(layer.weight), target, atol=1e-12)
    with pytest.raises(ValueError, match="orthogonal_map has to be one of"):
        sg.nn.utils.parametrizations.orthogonal(sg.nn.Linear(2, 2), orthogonal_map="polar")
    with pytest.raises(ValueError, match="Expected a matrix"):
        sg.nn.utils.parametrizations.orthogonal(sg.nn.Linear(2, 2), "bias")
    with pytest.raises(NotImplementedError, match="not possible to assign"):
        sg.nn.utils.parametrizations.orthogonal(
            sg.nn.Linear(2, 2), orthogonal_map="cayley", use_trivialization=False
        )
