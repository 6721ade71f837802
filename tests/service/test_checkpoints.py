"""Checkpoints: exact round trip, pruning, falling back past damaged files, and removing
what interrupted writes leave behind."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import shardgrad as sg
from shardgrad.service.checkpoint import CheckpointError, CheckpointManager
from shardgrad.service.fsutil import create_temp


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


EMPTY_OPTIMIZER = {"state": {}, "param_groups": []}

# Saves a checkpoint whose write hangs halfway, so that the process can be killed mid-write.
_HANGING_WRITE = """
import sys, time
import numpy as np
import shardgrad
from shardgrad.service.checkpoint import CheckpointManager

def hang(body, fh):
    fh.write(b"half a checkpoint")
    fh.flush()
    print("writing", flush=True)
    time.sleep(120)

shardgrad.save = hang
CheckpointManager(sys.argv[1]).save(7, np.zeros(4, np.float32), {})
"""


def _kill_mid_write(folder) -> str:
    """The name of the temp file a checkpoint write left when its process was SIGKILLed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HANGING_WRITE, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    (left,) = [n for n in os.listdir(folder) if n.endswith(".tmp")]
    return left


def test_opening_the_folder_removes_what_an_interrupted_write_left(tmp_path):
    mgr = CheckpointManager(tmp_path)
    mgr.save(4, np.ones(3, np.float32), EMPTY_OPTIMIZER)
    left = _kill_mid_write(tmp_path)
    assert left.startswith(".ckpt-000000000007.safetensors.")
    fd, in_progress = create_temp(tmp_path, ".ckpt-000000000008.safetensors.")  # a live write
    (tmp_path / "notes.tmp").write_text("not a checkpoint temp file")
    try:
        reopened = CheckpointManager(tmp_path)
        names = sorted(os.listdir(tmp_path))
        assert left not in names
        assert in_progress.name in names
        assert "notes.tmp" in names and "ckpt-000000000004.safetensors" in names
        assert reopened.latest().step == 4
    finally:
        os.close(fd)
    CheckpointManager(tmp_path)  # closed, never renamed: its writer is gone, it is a leftover
    assert in_progress.name not in os.listdir(tmp_path)


def test_a_sweep_never_takes_a_write_in_progress(tmp_path):
    """Folders are opened (and swept) by the API and the dashboard while a job writes."""
    writer = CheckpointManager(tmp_path, keep=2)
    failures: list[BaseException] = []
    done = threading.Event()

    def sweep():
        while not done.is_set():
            try:
                CheckpointManager(tmp_path)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

    sweeper = threading.Thread(target=sweep)
    sweeper.start()
    try:
        for step in range(1, 41):
            writer.save(step, np.full(256, step, np.float32), EMPTY_OPTIMIZER)
    finally:
        done.set()
        sweeper.join(30)
    assert not failures
    assert writer.steps() == [39, 40]
    assert writer.latest().params[0] == 40


def test_a_coordinator_start_sweeps_every_jobs_checkpoint_folder(tmp_path):
    from shardgrad.service.jobs import JobManager
    from shardgrad.service.pools.inprocess import InProcessPool

    folders = [tmp_path / "jobs" / job / "checkpoints" for job in ("ended", "gone")]
    left = []
    for folder in folders:
        folder.mkdir(parents=True)
        left.append(_kill_mid_write(folder))
    pool = InProcessPool(1)
    mgr = JobManager(tmp_path, pool)
    try:
        assert mgr.recover() == []  # no job to resume, yet their folders are swept
        for folder, name in zip(folders, left):
            assert name not in os.listdir(folder)
    finally:
        mgr.close()
        pool.close()
