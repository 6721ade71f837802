"""Checkpoints: exact round trip, pruning, and falling back past damaged files."""

from __future__ import annotations

import numpy as np
import pytest

import shardgrad as sg
from shardgrad.service.checkpoint import CheckpointError, CheckpointManager


def _adam_state(seed: int = 0):
    rng = np.random.default_rng(seed)
    p = sg.tensor(rng.standard_normal(50).astype(np.float32), requires_grad=True)
    opt = sg.optim.Adam([p], lr=1e-2)
    sched = sg.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        p.grad = sg.tensor(rng.standard_normal(50).astype(np.float32))
        opt.step()
        sched.step()
    return p, opt, sched


def test_round_trip_is_exact(tmp_path):
    p, opt, sched = _adam_state()
    mgr = CheckpointManager(tmp_path, keep=2)
    meta = {"sampler": {"epoch": 1, "batch_in_epoch": 3}, "note": "x"}
    path = mgr.save(3, p.detach().numpy(), opt.state_dict(), sched.state_dict(), meta)
    assert path.exists() and not list(tmp_path.glob(".*.tmp"))
    ck = mgr.latest()
    assert ck.step == 3 and ck.meta == meta
    assert ck.params.tobytes() == p.detach().numpy().tobytes() and ck.params.dtype == np.float32
    assert ck.scheduler == sched.state_dict()
    # the optimizer state loads back and continues exactly like the original
    q = sg.tensor(ck.params.copy(), requires_grad=True)
    opt2 = sg.optim.Adam([q], lr=1e-2)
    opt2.load_state_dict(ck.optimizer)
    g = np.linspace(-1, 1, 50, dtype=np.float32)
    for param, o in ((p, opt), (q, opt2)):
        param.grad = sg.tensor(g)
        o.step()
    assert q.detach().numpy().tobytes() == p.detach().numpy().tobytes()


def test_safetensors_readers_can_open_it(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    p, opt, sched = _adam_state()
    path = CheckpointManager(tmp_path).save(
        1, p.detach().numpy(), opt.state_dict(), sched.state_dict()
    )
    arrays = safetensors_numpy.load_file(str(path))
    np.testing.assert_array_equal(arrays["params"], p.detach().numpy())


def test_keeps_only_the_newest(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=2)
    for step in (5, 10, 15, 20):
        mgr.save(step, np.full(4, step, np.float32), {"state": {}, "param_groups": []})
    assert mgr.steps() == [15, 20]
    assert mgr.latest().step == 20


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_damaged_newest_falls_back_to_previous(tmp_path, damage):
    mgr = CheckpointManager(tmp_path, keep=3)
    for step in (10, 20):
        mgr.save(step, np.arange(1000, dtype=np.float32) * step, {"state": {}, "param_groups": []})
    newest = mgr.path_for(20)
    data = bytearray(newest.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "flip":
        data[-17] ^= 0x40  # one bit of one parameter
    elif damage == "garbage":
        data = bytearray(b"\x00" * len(data))
    else:
        data = bytearray()
    newest.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        mgr.load_file(newest)
    ck = mgr.latest()
    assert ck.step == 10
    np.testing.assert_array_equal(ck.params, np.arange(1000, dtype=np.float32) * 10)


def test_no_intact_checkpoint(tmp_path):
    mgr = CheckpointManager(tmp_path)
    assert mgr.latest() is None
    mgr.save(1, np.zeros(3, np.float32), {"state": {}, "param_groups": []})
    mgr.path_for(1).write_bytes(b"not a checkpoint")
    assert mgr.latest() is None
