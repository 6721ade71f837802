"""Adafactor and Muon against torch.optim: Adafactor's trajectory and state exactly; Muon's
to bfloat16's precision (torch orthogonalises in bfloat16, shardgrad in float32), with its
Newton-Schulz step checked against a float64 run of the same iteration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg
from shardgrad.optim.muon import zeropower_via_newtonschulz

RNG = np.random.default_rng(0)
SHAPES = [(4, 5), (3,), (2, 3, 4)]
INIT = [RNG.standard_normal(s) for s in SHAPES]
GRADS = [[RNG.standard_normal(s) for s in SHAPES] for _ in range(6)]


def _run(lib, cls, init, grads, **kw):
    params = [lib.tensor(a.copy(), requires_grad=True) for a in init]
    opt = getattr(lib.optim, cls)(params, **kw)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = lib.tensor(g)
        opt.step()
    return params, opt


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"weight_decay": 0.1, "lr": 0.05},
        {"maximize": True, "d": 2.0, "eps": (1e-30, 1e-3)},
        {"beta2_decay": -0.5},
    ],
)
def test_adafactor_matches_torch(kw):
    (ours, s_opt), (theirs, t_opt) = (
        _run(lib, "Adafactor", INIT, GRADS, **kw) for lib in (sg, torch)
    )
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)
    s_state, t_state = s_opt.state_dict()["state"], t_opt.state_dict()["state"]
    for i in t_state:
        assert sorted(s_state[i]) == sorted(t_state[i])
        for key in t_state[i]:
            np.testing.assert_allclose(
                np.asarray(s_state[i][key].numpy()), t_state[i][key].numpy(), rtol=1e-12
            )


def test_adafactor_argument_checks():
    p = [sg.zeros(2, requires_grad=True)]
    for kw, message in [
        ({"lr": -1.0}, "Learning rate"), ({"beta2_decay": 0.5}, "beta2_decay"),
        ({"eps": (-1.0, 1e-3)}, "epsilon1"), ({"d": 0.5}, "Clipping threshold"),
        ({"weight_decay": -0.1}, "weight_decay"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            sg.optim.Adafactor(p, **kw)


def _newton_schulz_float64(g, coefficients=(3.4445, -4.7750, 2.0315), steps=5):
    a, b, c = coefficients
    x = g.T if g.shape[0] > g.shape[1] else g
    x = x / max(np.linalg.norm(x), 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if g.shape[0] > g.shape[1] else x


def test_newton_schulz_orthogonalises():
    g = RNG.standard_normal((6, 4)).astype(np.float32)
    ours = zeropower_via_newtonschulz(g, (3.4445, -4.7750, 2.0315), 5, 1e-7)
    np.testing.assert_allclose(ours, _newton_schulz_float64(g.astype(np.float64)), atol=2e-5)
    singular = np.linalg.svd(ours, compute_uv=False)
    assert singular.min() > 0.5 and singular.max() < 1.5  # US'V^T, S' near 1


@pytest.mark.parametrize(
    "kw", [{}, {"nesterov": False, "adjust_lr_fn": "match_rms_adamw", "lr": 0.02}]
)
def test_muon_follows_torch_to_bfloat16_precision(kw):
    init = [
        RNG.standard_normal((6, 4)).astype(np.float32),
        RNG.standard_normal((3, 5)).astype(np.float32),
    ]
    grads = [[RNG.standard_normal(a.shape).astype(np.float32) for a in init] for _ in range(5)]
    (ours, _), (theirs, _) = (_run(lib, "Muon", init, grads, **kw) for lib in (sg, torch))
    for start, a, b in zip(init, ours, theirs):
        moved = np.abs(b.detach().numpy() - start).max()
        assert np.abs(a.detach().numpy() - b.detach().numpy()).max() < 0.03 * moved


def test_muon_argument_checks():
    with pytest.raises(ValueError, match="only supports 2D parameters"):
        sg.optim.Muon([sg.zeros(3, requires_grad=True)])
    with pytest.raises(ValueError, match="not supported"):
        sg.optim.Muon([sg.zeros(2, 2, requires_grad=True)], adjust_lr_fn="other")
    with pytest.raises(ValueError, match="momentum"):
        sg.optim.Muon([sg.zeros(2, 2, requires_grad=True)], momentum=-1.0)
