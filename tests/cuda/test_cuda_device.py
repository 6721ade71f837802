"""Device semantics users rely on: creating and moving tensors and modules, gradients across
moves, optimizer state on the parameters' device, torch's error for mixed devices, random
draws on the GPU, and an `import shardgrad` that never needs cupy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SKIP_REASON, cuda_available, host

import shardgrad as sg
from shardgrad import nn

MIXED = "Expected all tensors to be on the same device, but found at least two devices"


def test_import_does_not_import_cupy():
    code = (
        "import sys, shardgrad, shardgrad.nn, shardgrad.optim\n"
        "x = shardgrad.ones(2, requires_grad=True); (x * 2).sum().backward()\n"
        "assert 'cupy' not in sys.modules, 'cupy imported'\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_numpy_scalars_keep_their_dtype():
    for value, name in ((np.float64(0.5), "float64"), (np.float32(0.5), "float32"),
                        (np.int32(3), "int32"), (np.bool_(True), "bool")):  # fmt: skip
        assert sg.tensor(value).dtype.name == name
        assert str(torch.tensor(value).dtype) == f"torch.{name}"
    assert sg.tensor(0.5).dtype == sg.float32 and sg.tensor(3).dtype == sg.int64


def test_device_strings_parse_like_torch():
    assert sg.device("cuda:1") == sg.device("cuda", 1)
    assert str(sg.device("cuda:0")) == "cuda:0" and repr(sg.device("cpu")) == "device(type='cpu')"
    assert sg.device("cuda").index is None and sg.device("cpu").index is None
    for bad in ("gpu", "cuda:x", "cuda:-1"):
        with pytest.raises(RuntimeError):
            sg.device(bad)


@pytest.mark.skipif(cuda_available(), reason="checks the message on machines without a GPU")
def test_cuda_tensors_need_a_gpu():
    assert not sg.cuda.is_available() and sg.cuda.device_count() == 0
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        sg.zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        sg.ones(2).to("cuda")


# ---------------------------------------------------------------- on the target device
def test_factories_and_moves(target):
    assert sg.cuda.is_available() and sg.cuda.device_count() >= 1
    for make in (
        lambda: sg.zeros(2, 3, device="cuda"),
        lambda: sg.ones(3, device="cuda:0", dtype=sg.float64),
        lambda: sg.full((2,), 1.5, device=sg.device("cuda", 0)),
        lambda: sg.arange(5, device="cuda"),
        lambda: sg.eye(3, device="cuda"),
        lambda: sg.tensor([1.0, 2.0], device="cuda"),
        lambda: sg.randn(4, device="cuda"),
        lambda: sg.rand(2, 2, device="cuda", dtype=sg.float64),
        lambda: sg.randint(0, 5, (6,), device="cuda"),
        lambda: sg.randperm(7, device="cuda"),
        lambda: sg.zeros_like(sg.ones(2, device="cuda")),
    ):
        t = make()
        assert t.device == sg.device("cuda:0") and t.is_cuda, t
        assert str(t.device) == "cuda:0"
    assert sg.ones(2).is_cuda  # the target's default device
    x = sg.arange(6.0, device="cpu").reshape(2, 3)
    assert x.device.type == "cpu"
    y = x.to("cuda")
    assert y.device.type == "cuda" and x.device.type == "cpu"
    assert y.to("cuda") is y and y.cuda() is y
    z = y.to(device="cpu", dtype=sg.float64)
    assert z.device.type == "cpu" and z.dtype == sg.float64
    np.testing.assert_array_equal(z.numpy(), np.arange(6.0).reshape(2, 3))
    assert y.cpu().tolist() == x.tolist() and y.tolist() == x.tolist()
    assert y.sum().item() == 15.0 and float(y[1, 2]) == 5.0
    with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy"):
        y.numpy()
    assert "device='cuda:0'" in repr(y)
    perm = sg.randperm(50, device="cuda").cpu().numpy()
    np.testing.assert_array_equal(np.sort(perm), np.arange(50))


def test_gradients_flow_back_across_moves(target):
    x = sg.tensor([1.0, -2.0, 3.0], dtype=sg.float64, requires_grad=True, device="cpu")
    y = (x.cuda() * sg.tensor([2.0, 3.0, 4.0], dtype=sg.float64, device="cuda")).relu()
    assert y.device.type == "cuda"
    y.sum().backward()
    assert x.grad.device.type == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 4.0])
    w = sg.ones(3, device="cuda", requires_grad=True)
    (w.cpu() * 3).sum().backward()
    assert w.grad.device.type == "cuda"
    np.testing.assert_array_equal(host(w.grad), [3.0, 3.0, 3.0])


def test_mixing_devices_raises_like_torch(target):
    gpu = sg.ones(2, 3, device="cuda")
    cpu = sg.ones(2, 3, device="cpu")
    for fn in (
        lambda a, b: a + b,
        lambda a, b: b * a,
        lambda a, b: a @ b.T,
        lambda a, b: nn.functional.linear(a, b),
        lambda a, b: sg.cat([a, b]),
        lambda a, b: sg.where(a > 0, a, b),
        lambda a, b: sg.maximum(a, b),
    ):
        with pytest.raises(RuntimeError, match=MIXED) as info:
            fn(gpu, cpu)
        assert "cuda:0 and cpu" in str(info.value)
    # a 0-d CPU tensor is a scalar to torch, on any device
    out = gpu * sg.tensor(2.0, device="cpu") + sg.tensor(1.0, device="cpu")
    assert out.device.type == "cuda" and out.sum().item() == 18.0
    if target == "cuda":  # torch's own wording, for the record
        with pytest.raises(RuntimeError, match=MIXED):
            torch.ones(2, device="cuda") + torch.ones(2, device="cpu")


def test_module_to_moves_parameters_and_buffers(target):
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
    params = list(model.parameters())
    assert model.to("cuda") is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]  # same Parameters
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        assert t.device.type == "cuda", name
    out = model(sg.randn(5, 4, device="cuda"))
    assert out.device.type == "cuda"
    state = model.state_dict()
    assert all(v.device.type == "cuda" for v in state.values())
    model.load_state_dict({k: v.cpu() for k, v in state.items()})  # CPU values load in
    assert all(p.is_cuda for p in model.parameters())
    assert all(p.device.type == "cuda" for p in model.parameters())
    model.cpu()
    assert all(p.device.type == "cpu" for p in model.parameters())
    model.cuda()
    assert all(p.device.type == "cuda" for p in model.parameters())
    model.to(sg.float64)
    assert all(p.dtype == sg.float64 and p.is_cuda for p in model.parameters())


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_optimizer_state_lives_on_the_parameter_device(target, name):
    model = nn.Linear(3, 2).to("cuda")
    opts = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    opt = getattr(sg.optim, name)(model.parameters(), lr=0.1, **opts)
    model(sg.randn(4, 3, device="cuda")).square().sum().backward()
    opt.step()
    for state in opt.state.values():
        for key, value in state.items():
            if isinstance(value, sg.Tensor):
                assert value.device.type == ("cpu" if key == "step" else "cuda"), key
    assert all(p.device.type == "cuda" for p in model.parameters())


def test_random_draws_on_the_gpu_follow_the_seed(target):
    sg.manual_seed(3)
    a = sg.randn(64, device="cuda")
    b = sg.rand(64, device="cuda")
    sg.manual_seed(3)
    np.testing.assert_array_equal(host(a), host(sg.randn(64, device="cuda")))
    np.testing.assert_array_equal(host(b), host(sg.rand(64, device="cuda")))
    u = host(sg.rand(10_000, device="cuda", dtype=sg.float64))
    assert 0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.02
    n = host(sg.randn(10_000, device="cuda", dtype=sg.float64))
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1.0) < 0.05
    drop = nn.Dropout(0.5)
    y = drop(sg.ones(1000, device="cuda"))
    vals = host(y)
    assert y.is_cuda and set(np.unique(vals)) <= {0.0, 2.0} and 300 < (vals == 0).sum() < 700
    w = sg.empty(50, 40, device="cuda")
    nn.init.kaiming_uniform_(w)
    assert w.is_cuda and np.abs(host(w)).max() <= np.sqrt(6 / 40) + 1e-6


def test_state_dict_bytes_round_trip_from_the_gpu(target):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to("cuda")
    data = sg.serialization.save_safetensors_bytes(model.state_dict())
    fresh = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to("cpu")
    fresh.load_state_dict(sg.serialization.load_safetensors_bytes(data))
    for (k, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(host(a), b.numpy(), err_msg=k)


def test_skip_reason_names_the_missing_piece():
    assert SKIP_REASON == "CUDA not available: no cupy or no GPU"


@pytest.mark.parametrize(
    "make_index",
    [
        lambda xp: (xp.asarray([0, 2, 2, 0, 1, 2]),),  # repeated rows
        lambda xp: (slice(None), xp.asarray([3, 3, 1])),  # index_add along dim 1
        lambda xp: (xp.asarray([[0], [1], [1]]), xp.asarray([2, 2, 0, 2])),  # broadcast pair
        lambda xp: (xp.asarray([[True, False, True, False]] * 3),),  # a mask
    ],
)
def test_deterministic_scatter_add_sums_in_a_fixed_order(target, make_index):
    """use_deterministic_algorithms(True): the GPU scatter-add takes the sort-and-scan path
    (no atomics) and gives numpy's add.at result; integers exactly."""
    from shardgrad.ops._view import add_at

    xp = sg.backend.cupy()
    rng = np.random.default_rng(0)
    for dtype, exact in ((np.float64, False), (np.int64, True)):
        base = rng.integers(-5, 5, (3, 4)).astype(dtype)
        index = make_index(xp)
        host_index = tuple(i.get() if hasattr(i, "get") else i for i in index)
        n_values = np.zeros((3, 4))[host_index].shape
        values = rng.integers(-9, 9, n_values).astype(dtype)
        want = base.copy()
        np.add.at(want, host_index, values)
        try:
            sg.use_deterministic_algorithms(True)
            assert sg.are_deterministic_algorithms_enabled()
            got = xp.asarray(base)
            add_at(got, index, xp.asarray(values))
        finally:
            sg.use_deterministic_algorithms(False)
        got = got.get()
        assert np.array_equal(got, want) if exact else np.allclose(got, want, rtol=1e-12)


def test_deterministic_switch_validates_its_argument():
    with pytest.raises(TypeError, match="expects a bool"):
        sg.use_deterministic_algorithms(1)
    sg.use_deterministic_algorithms(True, warn_only=True)
    try:
        assert sg.is_deterministic_algorithms_warn_only_enabled()
    finally:
        sg.use_deterministic_algorithms(False)
    assert not sg.are_deterministic_algorithms_enabled()
