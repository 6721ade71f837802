"""Whole training steps on the GPU: the numbers match torch's, the fused kernels match the
array code they replace, and a step makes no host round trip (only `.item()` after it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import host

import shardgrad as sg
from shardgrad.ops import _cuda_kernels

RTOL, ATOL = 1e-6, 1e-9


# (id, model builder taking the nn namespace, input shape, loss name, target kind, optimizer)
MODELS = [
    ("mlp_relu_ce_sgd", lambda nn: nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 5)),
     (8, 12), "CrossEntropyLoss", "classes", ("SGD", {"lr": 0.1, "momentum": 0.9})),
    ("mlp_gelu_mse_adam", lambda nn: nn.Sequential(
        nn.Linear(12, 24), nn.GELU(), nn.LayerNorm(24), nn.Linear(24, 12), nn.GELU("tanh"),
        nn.Linear(12, 3)), (6, 12), "MSELoss", "values", ("Adam", {"lr": 0.01})),
    ("cnn_bn_pool_ce_adamw", lambda nn: nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6, 4)),
     (3, 2, 8, 8), "CrossEntropyLoss", "classes", ("AdamW", {"lr": 0.01, "weight_decay": 0.1})),
    ("mlp_sigmoid_bce_rmsprop", lambda nn: nn.Sequential(
        nn.Linear(10, 8), nn.Sigmoid(), nn.Linear(8, 4)), (7, 10), "BCEWithLogitsLoss", "probs",
     ("RMSprop", {"lr": 0.01, "momentum": 0.5})),
    ("mlp_silu_nll_adagrad", lambda nn: nn.Sequential(
        nn.Linear(9, 8), nn.SiLU(), nn.Linear(8, 5), nn.LogSoftmax(dim=1)), (6, 9), "NLLLoss",
     "classes", ("Adagrad", {"lr": 0.1})),
]  # fmt: skip
IDS = [m[0] for m in MODELS]


def _data(xshape, n_out, kind, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xshape)
    if kind == "classes":
        y = rng.integers(0, n_out, xshape[0])
    elif kind == "probs":
        y = rng.random((xshape[0], n_out))
    else:
        y = rng.standard_normal((xshape[0], n_out))
    return x, y


def _pair(case, sg_device, torch_device):
    """The same float64 model in both libraries, torch's weights copied into shardgrad's."""
    _, build, xshape, loss, kind, (opt_name, opt_kw) = case
    torch.manual_seed(0)
    tm = build(torch.nn).double().to(torch_device)
    sm = build(sg.nn).double()
    sm.load_state_dict({k: host(v) for k, v in tm.state_dict().items()})
    sm.to(sg_device)
    n_out = [m for m in tm.modules() if isinstance(m, torch.nn.Linear)][-1].out_features
    x, y = _data(xshape, n_out, kind)
    to = dict(device=torch_device)
    s = (
        sm,
        getattr(sg.nn, loss)(),
        getattr(sg.optim, opt_name)(sm.parameters(), **opt_kw),
        sg.tensor(x, device=sg_device),
        sg.tensor(y, device=sg_device),
    )
    t = (tm, getattr(torch.nn, loss)(), getattr(torch.optim, opt_name)(tm.parameters(), **opt_kw),
         torch.tensor(x, **to), torch.tensor(y, **to))  # fmt: skip
    return s, t


def _step(model, loss_fn, opt, x, y, clip: bool, lib):
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    if clip:
        lib.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    opt.step()
    return loss


@pytest.mark.parametrize("case", MODELS, ids=IDS)
def test_training_steps_match_torch(target, case):
    (sm, sl, so, sx, sy), (tm, tl, to, tx, ty) = _pair(case, "cuda", target)
    for step in range(4):
        ls = _step(sm, sl, so, sx, sy, step % 2 == 1, sg)
        lt = _step(tm, tl, to, tx, ty, step % 2 == 1, torch)
        np.testing.assert_allclose(ls.item(), lt.item(), rtol=RTOL, atol=ATOL)
    for (name, p), (_, q) in zip(sm.named_parameters(), tm.named_parameters()):
        assert p.is_cuda
        np.testing.assert_allclose(host(p), host(q), rtol=RTOL, atol=ATOL, err_msg=name)
    for (name, b), (_, c) in zip(sm.named_buffers(), tm.named_buffers()):
        np.testing.assert_allclose(host(b), host(c), rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("case", MODELS, ids=IDS)
def test_a_training_step_makes_no_host_round_trip(monkeypatch, case):
    """On the fake device every device-to-host read inside the step raises, and host arrays
    mixed into device ops raise TypeError as with cupy. Only `.item()` after it syncs."""
    import fake_cupy

    fake_cupy.install(monkeypatch)
    (sm, sl, so, sx, sy), _ = _pair(case, "cuda", "cpu")
    (cm, cl, co, cx, cy), _ = _pair(case, "cpu", "cpu")
    for step in range(3):
        fake_cupy.UPLOADS.clear()
        with fake_cupy.strict():
            loss = _step(sm, sl, so, sx, sy, step == 1, sg)
        assert fake_cupy.UPLOADS == [], "host data uploaded inside a step"
        ref = _step(cm, cl, co, cx, cy, step == 1, sg)
        np.testing.assert_allclose(loss.item(), ref.item(), rtol=RTOL, atol=ATOL)
    for (name, p), (_, q) in zip(sm.named_parameters(), cm.named_parameters()):
        np.testing.assert_allclose(host(p), q.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=name)


# ---------------------------------------------------------------- fused kernels
def _kernel_cases():
    F = sg.nn.functional
    return {
        "relu": lambda x, t: F.relu(x),
        "gelu": lambda x, t: F.gelu(x),
        "gelu_tanh": lambda x, t: F.gelu(x, approximate="tanh"),
        "sigmoid": lambda x, t: sg.sigmoid(x),
        "tanh": lambda x, t: sg.tanh(x),
        "erf": lambda x, t: sg.erf(x),
        "silu": lambda x, t: F.silu(x),
        "xent_mean": lambda x, t: F.cross_entropy(x, t),
        "xent_sum": lambda x, t: F.cross_entropy(x, t, reduction="sum"),
        "xent_none_ignore": lambda x, t: F.cross_entropy(x, t, reduction="none", ignore_index=2),
        "xent_mean_ignore": lambda x, t: F.cross_entropy(x, t, ignore_index=1),
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(_kernel_cases()))
def test_fused_kernels_match_the_array_code(target, monkeypatch, name, dtype):
    fn = _kernel_cases()[name]
    rng = np.random.default_rng(len(name))
    x = (rng.standard_normal((37, 13)) * 3).astype(dtype)
    x[0, :3] = [0.0, -0.0, 40.0]
    t = rng.integers(0, 13, 37)
    t[:4] = [2, 1, 2, 1]
    results = []
    for enabled in (True, False):
        monkeypatch.setattr(_cuda_kernels, "ENABLED", enabled)
        xs = sg.tensor(x, device="cuda", requires_grad=True)
        out = fn(xs, sg.tensor(t, device="cuda"))
        g = np.random.default_rng(7).standard_normal(tuple(out.shape)).astype(dtype)
        out.backward(sg.tensor(g, device="cuda"))
        results.append((host(out), host(xs.grad)))
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
    for a, b in zip(*results):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, b, **tol)


def test_fused_cross_entropy_differentiates_twice(target):
    """create_graph=True takes the Tensor-op backward: its gradient is differentiable."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4))
    t = np.array([0, 3, 1, 1, 2])
    grads = []
    for lib, dev in ((sg, "cuda"), (torch, target)):
        xs = lib.tensor(x, requires_grad=True, device=dev)
        loss = lib.nn.functional.cross_entropy(xs, lib.tensor(t, device=dev))
        (gx,) = lib.autograd.grad(loss, xs, create_graph=True)
        (ggx,) = lib.autograd.grad((gx * gx).sum(), xs)
        grads.append((host(gx), host(ggx)))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
