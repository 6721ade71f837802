"""What the SDK sends, checked without a coordinator: canonical dataset bytes, and core
objects turned into the job configuration's JSON parts."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from shardgrad import nn, optim
from shardgrad.client import convert
from shardgrad.client.datasets import encode_npz, sha256_hex
from shardgrad.serialization import load_safetensors_bytes


def test_npz_bytes_are_canonical_and_readable():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 4, 2)).astype(np.float32)
    y = rng.integers(0, 5, 30)
    first = encode_npz(x, y)
    assert encode_npz(x.copy(), y.copy()) == first  # no timestamps: same arrays, same hash
    assert sha256_hex(encode_npz(x, y + 1)) != sha256_hex(first)
    with np.load(io.BytesIO(first), allow_pickle=False) as z:
        assert sorted(z.files) == ["x", "y"]
        np.testing.assert_array_equal(z["x"], x)
        np.testing.assert_array_equal(z["y"], y)
    big_endian = encode_npz(x.astype(">f4"), y)
    with np.load(io.BytesIO(big_endian)) as z:
        assert z["x"].dtype == np.dtype("<f4")


@pytest.mark.parametrize(
    "x, y, message",
    [
        (np.zeros((3, 2)), np.zeros(4), "rows"),
        (np.zeros((0, 2)), np.zeros(0), "empty"),
        (np.float32(1.0), np.zeros(1), "first axis"),
        (np.array([object()] * 2), np.zeros(2), "object"),
    ],
)
def test_bad_arrays_are_refused_before_upload(x, y, message):
    with pytest.raises((ValueError, TypeError), match=message):
        encode_npz(x, y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_module_travels_as_spec_and_weights(dtype):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    if dtype == "float64":
        model.double()
    source, weights, got = convert.model_source(model)
    assert got == dtype
    rebuilt = nn.from_spec(json.loads(json.dumps(source["spec"])))
    state = load_safetensors_bytes(weights)
    if dtype == "float64":
        rebuilt.double()
    rebuilt.load_state_dict(state)
    for (k, a), (_, b) in zip(model.state_dict().items(), rebuilt.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)


def test_model_sources_other_than_modules():
    spec = nn.Linear(2, 2).spec()
    assert convert.model_source(spec)[0] == {"spec": spec}
    assert convert.model_source("pkg.mod:Net")[0] == {"import_path": "pkg.mod:Net", "kwargs": {}}
    with pytest.raises(ValueError, match="pkg.module:Class"):
        convert.model_source("not an import path")
    with pytest.raises(TypeError):
        convert.model_source(42)


def test_optimizer_objects_are_read_back_into_their_arguments():
    params = nn.Linear(2, 2).parameters()
    assert convert.optimizer_config(
        optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    ) == {
        "name": "SGD",
        "kwargs": {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
    }
    adam = convert.optimizer_config(optim.AdamW(nn.Linear(2, 2).parameters(), betas=(0.8, 0.9)))
    assert adam["name"] == "AdamW" and adam["kwargs"]["betas"] == [0.8, 0.9]
    assert "lr" in adam["kwargs"]  # always sent, even at the class default
    assert convert.optimizer_config("Adam") == {"name": "Adam", "kwargs": {}}
    assert convert.optimizer_config(optim.RMSprop) == {"name": "RMSprop", "kwargs": {}}


def test_per_group_hyperparameters_are_refused():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    opt = optim.SGD([{"params": a.parameters()}, {"params": b.parameters(), "lr": 1.0}], lr=0.1)
    with pytest.raises(ValueError, match="per-group"):
        convert.optimizer_config(opt)


def test_losses_and_schedulers():
    assert convert.loss_config(nn.CrossEntropyLoss(label_smoothing=0.1)) == {
        "name": "CrossEntropyLoss",
        "kwargs": {"label_smoothing": 0.1},
    }
    assert convert.loss_config(nn.MSELoss) == {"name": "MSELoss", "kwargs": {}}
    with pytest.raises(ValueError, match="reduction"):
        convert.loss_config(nn.MSELoss(reduction="sum"))
    opt = optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    assert convert.scheduler_config(optim.lr_scheduler.StepLR(opt, 5, gamma=0.5)) == {
        "name": "StepLR",
        "kwargs": {"step_size": 5, "gamma": 0.5},
    }
    with pytest.raises(ValueError, match="as an object"):
        convert.scheduler_config(optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0))
