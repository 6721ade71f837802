"""Lazy modules against torch's: reprs before and after the first call, the inferred sizes,
the module they become, parameters that an optimizer made beforehand still holds, and the
outputs and gradients once torch's weights are copied in."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

pytestmark = pytest.mark.filterwarnings("ignore:Lazy modules are a new feature")

LAZY = [
    ("LazyLinear", (3,), {}, (4, 5)),
    ("LazyLinear", (2,), {"bias": False}, (2, 3, 6)),
    ("LazyConv1d", (4, 3), {"stride": 2, "padding": 1}, (2, 3, 9)),
    ("LazyConv2d", (4, 3), {"padding": 1}, (2, 3, 5, 5)),
    ("LazyConv2d", (2, 3), {"bias": False}, (3, 6, 6)),
    ("LazyConv3d", (2, (1, 2, 2)), {}, (1, 2, 3, 4, 4)),
    ("LazyConvTranspose1d", (2, 3), {"stride": 2}, (2, 3, 7)),
    ("LazyConvTranspose2d", (2, 3), {"stride": 2, "output_padding": 1}, (1, 3, 4, 4)),
    ("LazyConvTranspose3d", (2, 2), {"stride": (1, 2, 1)}, (1, 3, 2, 4, 3)),
    ("LazyBatchNorm1d", (), {}, (4, 3)),
    ("LazyBatchNorm2d", (), {"momentum": None}, (2, 3, 4, 4)),
    ("LazyBatchNorm3d", (), {}, (2, 3, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), {"affine": True}, (2, 3, 5)),
    ("LazyInstanceNorm2d", (), {}, (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (), {"track_running_stats": True}, (2, 3, 2, 3, 2)),
]


@pytest.mark.parametrize(
    "name, args, kwargs, shape", LAZY, ids=[f"{c[0]}-{i}" for i, c in enumerate(LAZY)]
)
def test_lazy_modules_match_torch(name, args, kwargs, shape):
    ours, theirs = getattr(sg.nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert ours.has_uninitialized_params()
    optimizer = sg.optim.SGD(ours.parameters(), lr=0.1)  # made before the sizes are known
    x = np.random.default_rng(0).standard_normal(shape)
    ours(sg.tensor(x, dtype=sg.float32))
    theirs(torch.tensor(x, dtype=torch.float32))
    assert type(ours).__name__ == type(theirs).__name__ and repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.double()
    theirs.double()
    ours.load_state_dict({k: sg.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    results = []
    for lib, layer in ((sg, ours), (torch, theirs)):
        out = layer(lib.tensor(x))
        (out * lib.tensor(np.cos(np.arange(out.numel())).reshape(out.shape))).sum().backward()
        results.append([out] + [p.grad for _, p in sorted(layer.named_parameters())])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert held == {id(p) for p in ours.parameters()}  # the optimizer trains the real weights
