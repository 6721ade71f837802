"""Shared-memory step buffers: the segments themselves, the coordinator's bookkeeping, and a
gradient computed into shared memory against the same one computed into the worker's own
buffer (bit for bit)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from workertest_helpers import cut, make_job

import shardgrad as sg
from shardgrad import nn
from shardgrad.service.pools.base import StepPayload
from shardgrad.service.pools.shared import SharedSteps
from shardgrad.worker import shm
from shardgrad.worker.compute import GradientComputer

pytestmark = pytest.mark.skipif(shm.shm_dir() is None, reason="no /dev/shm on this machine")


def _exists(name: str) -> bool:
    return (shm.shm_dir() / name).exists()


def test_a_segment_is_private_zeroed_and_shared_between_mappings():
    with shm.Segment.create(4096) as seg:
        assert os.stat(shm.shm_dir() / seg.name).st_mode & 0o777 == 0o600
        mine = seg.array(np.float32, 1024)
        assert not mine.any()
        mine[:3] = [1.0, 2.0, 3.0]
        other = shm.Segment.attach(seg.name, 4096)
        seen = other.array(np.float32, 3)
        assert seen.tolist() == [1.0, 2.0, 3.0]
        assert not seen.flags.writeable  # attached read-only unless asked
        with pytest.raises(ValueError, match="runs past"):
            other.array(np.float32, 1025)
        del seen
        other.close()
        assert _exists(seg.name)  # only the owner removes it
    assert not _exists(seg.name)


def test_attaching_what_is_not_there_or_too_small_or_foreign_is_refused():
    with pytest.raises(shm.SharedMemoryUnavailable, match="cannot open"):
        shm.Segment.attach(f"{shm.PREFIX}{os.getpid()}-{'0' * 16}", 8)
    with shm.Segment.create(64) as seg:
        with pytest.raises(shm.SharedMemoryUnavailable, match="64 bytes, 128 were announced"):
            shm.Segment.attach(seg.name, 128)
    for name in ("../etc/passwd", "shardgrad-1-zz", "other-123-0123456789abcdef"):
        with pytest.raises(shm.SharedMemoryUnavailable, match="not a shardgrad"):
            shm.Segment.attach(name, 8)
    assert not shm.can_attach("")
    assert not shm.can_attach("shardgrad-1-nothex")


def test_segments_of_a_killed_process_are_removed_and_live_ones_kept():
    code = (
        "import os; from shardgrad.worker.shm import Segment; "
        "s = Segment.create(4096); print(s.name, flush=True); os._exit(0)"  # no clean-up
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    orphan = out.stdout.strip()
    assert _exists(orphan)
    with shm.Segment.create(64) as mine:
        removed = shm.remove_stale()
        assert orphan in removed and not _exists(orphan)
        assert _exists(mine.name)


def test_a_full_shm_directory_fails_at_creation_not_mid_step(tmp_path, monkeypatch):
    monkeypatch.setenv("SHARDGRAD_SHM_DIR", str(tmp_path))
    with shm.Segment.create(64) as seg:  # any directory works as the shared directory
        assert (tmp_path / seg.name).exists()

    def no_room(fd, offset, length):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_room)
    with pytest.raises(OSError, match="No space"):
        shm.Segment.create(1 << 20)
    assert not list(tmp_path.iterdir())  # nothing half-made is left behind
    steps = SharedSteps()  # the probe itself cannot be made: the pool uses the wire
    assert steps.probe_name == ""
    payload = StepPayload("j", 0, np.zeros(4, np.float32), [])
    assert steps.params("j", payload) is None
    steps.close()


def test_shared_steps_write_params_once_per_step_and_refuse_a_second_share_of_a_step():
    steps = SharedSteps()
    probe = steps.probe_name
    try:
        assert shm.can_attach(probe)
        flat = np.arange(10, dtype=np.float32)
        first = StepPayload("job", 0, flat, [])
        name, nbytes = steps.params("job", first)
        view = shm.Segment.attach(name, nbytes).array(np.float32, 10)
        assert view.tolist() == flat.tolist()
        flat[0] = 99.0  # the same payload again (a retry): not written again
        assert steps.params("job", first) == (name, nbytes)
        assert view[0] == 0.0
        steps.params("job", StepPayload("job", 1, flat, []))  # the next step's parameters
        assert view[0] == 99.0

        g0 = steps.grads("job", "w1", step=1, nbytes=80)
        assert g0 is not None and g0[1] >= 80
        assert steps.grads("job", "w1", step=1, nbytes=80) is None  # its blocks are in use
        assert steps.grads("job", "w2", step=1, nbytes=80) not in (None, g0)
        assert steps.grads("job", "w1", step=2, nbytes=80) == g0  # reused the next step
        bigger = steps.grads("job", "w1", step=3, nbytes=800)
        assert bigger[0] != g0[0] and not _exists(g0[0])  # grown: the old one is gone

        steps.forget_worker("w1")
        assert not _exists(bigger[0])
        steps.release("job")
        assert not _exists(name)
    finally:
        steps.close()
    assert not _exists(probe) and steps.probe_name == ""


@pytest.mark.parametrize("compression", ["none", "fp16", "bf16"])
def test_gradients_computed_into_shared_memory_equal_the_worker_buffer(compression):
    sg.manual_seed(4)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    spec, data, flat = make_job(model, n=48, k=8, seed=3, compression=compression)
    shards = [s for s in cut(48, 8) if s[0] in (2, 3, 4, 5)]
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=7)
    plain = computer.compute(7, shards)

    steps = SharedSteps()
    try:
        payload = StepPayload(spec.job_id, 7, flat, [])
        pname, pbytes = steps.params(spec.job_id, payload)
        shape, dtype = computer.output_shape([k for k, _ in shards])
        gname, gbytes = steps.grads(spec.job_id, "w", 7, shape[0] * shape[1] * dtype.itemsize)
        # The worker's side: attach both by name and compute into the segment.
        held = shm.Attachments()
        src = held.get("params", pname, pbytes)
        worker = GradientComputer(spec, data)
        worker.set_params(src.array(spec.layout.dtype, spec.layout.numel), step=7)
        dst = held.get("grads", gname, gbytes, writable=True)
        out = dst.array(dtype, shape[0] * shape[1]).reshape(shape)
        result = worker.compute(7, shards, out=out)
        assert result.grads is out
        seen = steps.grads_view(spec.job_id, "w", dtype, shape)  # the coordinator's view
        assert seen.tobytes() == plain.grads.tobytes()
        assert [s.loss for s in result.stats] == [s.loss for s in plain.stats]
        with pytest.raises(ValueError, match="out must be"):
            worker.compute(7, shards, out=np.empty((1, 3), dtype))
        held.close()
    finally:
        steps.close()


def test_parameters_kept_in_the_param_buffer_reach_workers_without_a_copy():
    steps = SharedSteps()
    try:
        flat = steps.param_buffer("job", 6, np.float32)
        assert flat.flags.writeable and not flat.any()
        flat[:] = [1, 2, 3, 4, 5, 6]
        name, nbytes = steps.params("job", StepPayload("job", 0, flat[:], []))
        seen = shm.Segment.attach(name, nbytes).array(np.float32, 6)
        assert seen.tolist() == [1, 2, 3, 4, 5, 6]
        flat *= 2  # the optimizer's in-place update is what the next step's workers read
        assert steps.params("job", StepPayload("job", 1, flat[:], [])) == (name, nbytes)
        assert seen.tolist() == [2, 4, 6, 8, 10, 12]
    finally:
        steps.close()


@pytest.mark.cuda
@pytest.mark.skipif(not sg.backend.cuda_is_available(), reason="needs a CUDA GPU and cupy")
@pytest.mark.parametrize("compression", ["none", "bf16"])
def test_a_cuda_worker_computes_into_shared_memory(compression):
    """A GPU worker on the coordinator's machine: parameters from the host segment reach the
    device, and the gradients come back into the grads segment equal to its own buffer."""
    sg.manual_seed(6)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    spec, data, flat = make_job(model, n=48, k=8, seed=1, compression=compression)
    shards = cut(48, 8)[:5]
    gpu = GradientComputer(spec, data, device="cuda")
    gpu.set_params(flat, step=2)
    plain = gpu.compute(2, shards)
    steps = SharedSteps()
    try:
        pname, pbytes = steps.params(spec.job_id, StepPayload(spec.job_id, 2, flat, []))
        shape, dtype = gpu.output_shape([k for k, _ in shards])
        gname, gbytes = steps.grads(spec.job_id, "w", 2, shape[0] * shape[1] * dtype.itemsize)
        held = shm.Attachments()
        worker = GradientComputer(spec, data, device="cuda")
        src = held.get("params", pname, pbytes)
        worker.set_params(src.array(spec.layout.dtype, spec.layout.numel), step=2)
        out = held.get("grads", gname, gbytes, writable=True).array(dtype, shape[0] * shape[1])
        worker.compute(2, shards, out=out.reshape(shape))
        seen = steps.grads_view(spec.job_id, "w", dtype, shape)
        assert seen.tobytes() == plain.grads.tobytes()
        held.close()
    finally:
        steps.close()
