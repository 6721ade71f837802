"""Real processes failing and changing under a running job: the final parameters are the same
bytes as one in-process worker's, whatever the number of gRPC workers, when a worker is
SIGKILLed mid-job, when the pool is scaled mid-job, and when the coordinator itself is
SIGKILLed (or stopped with SIGTERM) and started again."""

from __future__ import annotations

import signal
import time

import pytest
from _servertest import pb, reference_models, slow_config

SHORT = slow_config(delay=0.06)  # 12 steps, K=4: 0.24 s a step on one worker
LONG = slow_config(delay=0.05, steps=30)  # 0.2 s a step on one worker, 0.1 s on two


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    return reference_models(tmp_path_factory)


def _workers_per_step(server, job_id: str) -> list[int]:
    return [e.workers for e in server.metrics(job_id)]


def test_one_two_and_three_workers_with_one_killed_give_the_same_bytes(procs, tmp_path, references):
    server = procs.coordinator(tmp_path / "state")
    first = procs.worker(server.address, server.token)
    server.wait_workers(1)
    one = server.submit(SHORT)
    server.wait_succeeded(one.job_id)
    assert set(_workers_per_step(server, one.job_id)) == {1}

    second = procs.worker(server.address, server.token)
    server.wait_workers(2)
    two = server.submit(SHORT)
    server.wait_succeeded(two.job_id)
    assert set(_workers_per_step(server, two.job_id)) == {2}

    procs.worker(server.address, server.token)
    server.wait_workers(3)
    three = server.submit(SHORT)
    server.wait_until(three.job_id, lambda j: j.step >= 3)
    second.signal(signal.SIGKILL)  # mid-job, without a word to the coordinator
    server.wait_succeeded(three.job_id)
    per_step = _workers_per_step(server, three.job_id)
    assert per_step[0] == 3 and per_step[-1] == 2

    expected = references(SHORT)
    for job in (one, two, three):
        assert server.model(job.job_id) == expected
    assert first.proc.poll() is None
    # The workers share the coordinator's machine: gradients came through shared memory.
    events = server.metrics(two.job_id)
    assert {e.values["bytes_received"] for e in events} == {0}
    assert min(e.values["bytes_shared"] for e in events) > 0


def test_without_shared_memory_the_wire_gives_the_same_bytes(procs, tmp_path, references):
    server = procs.coordinator(tmp_path / "state", "--no-shared-memory")
    procs.worker(server.address, server.token)
    procs.worker(server.address, server.token)
    server.wait_workers(2)
    job = server.submit(SHORT)
    server.wait_succeeded(job.job_id)
    events = server.metrics(job.job_id)
    assert min(e.values["bytes_received"] for e in events) > 0
    assert {e.values["bytes_shared"] for e in events} == {0}
    assert server.model(job.job_id) == references(SHORT)


def test_a_silent_worker_is_dropped_then_rejoins(procs, tmp_path):
    server = procs.coordinator(tmp_path / "state", "--heartbeat-timeout", "1.5")
    worker = procs.worker(server.address, server.token)
    (live,) = server.wait_workers(1)
    worker.signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 10
        while True:
            states = {w.worker_id: w.state for w in server.workers()}
            if states.get(live.worker_id) == pb.WORKER_STATE_LOST:
                break
            assert time.monotonic() < deadline, f"not dropped: {states}"
            time.sleep(0.1)
    finally:
        worker.signal(signal.SIGCONT)
    (back,) = server.wait_workers(1, timeout=15)
    assert back.worker_id == live.worker_id  # registered again under its old id


def test_scaling_up_and_down_mid_job_takes_effect_at_step_boundaries(procs, tmp_path, references):
    server = procs.coordinator(tmp_path / "state", "--local-workers", "1")
    server.wait_workers(1)
    job = server.submit(LONG)
    server.wait_until(job.job_id, lambda j: j.step >= 2)
    reply = server.call("ScaleWorkers", pb.ScaleWorkersRequest(count=2))
    assert reply.count == 2

    deadline = time.monotonic() + 30
    while 2 not in _workers_per_step(server, job.job_id):
        assert time.monotonic() < deadline, "the second worker never computed a step"
        assert server.job(job.job_id).state == pb.JOB_STATE_RUNNING, "the job ended first"
        time.sleep(0.05)
    server.call("ScaleWorkers", pb.ScaleWorkersRequest(pool="grpc", count=1))
    done = server.wait_succeeded(job.job_id)
    assert done.step == 30

    per_step = _workers_per_step(server, job.job_id)
    changes = [n for i, n in enumerate(per_step) if i == 0 or n != per_step[i - 1]]
    assert changes == [1, 2, 1], per_step
    assert server.model(job.job_id) == references(LONG)
    server.wait_workers(1)


def test_coordinator_killed_then_stopped_resumes_bit_for_bit(procs, tmp_path, references):
    server = procs.coordinator(tmp_path / "state")
    for _ in range(2):
        procs.worker(server.address, server.token)
    server.wait_workers(2)
    job = server.submit(LONG)
    server.wait_until(job.job_id, lambda j: j.step >= 5)

    server.process.signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    server = server.restart()  # same state directory, same port: the workers come back
    resumed = server.job(job.job_id)
    assert resumed.state in (pb.JOB_STATE_PENDING, pb.JOB_STATE_RUNNING)
    # From its last checkpoint (every 3 steps), not from scratch.
    assert resumed.step >= 3 and resumed.step % 3 == 0 and resumed.step < 30
    server.wait_until(job.job_id, lambda j: j.step >= 14)

    server.process.signal(signal.SIGTERM)  # a clean stop: checkpoint, keep the job RUNNING
    assert server.process.wait(timeout=30) == 0
    server = server.restart()
    assert server.job(job.job_id).step >= 14  # a clean stop loses no step
    done = server.wait_succeeded(job.job_id)
    assert done.step == 30

    assert [e.step for e in server.metrics(job.job_id)] == list(range(1, 31))
    assert server.model(job.job_id) == references(LONG)
