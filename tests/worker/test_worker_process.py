"""`shardgrad worker` as a real process: a real step over loopback, and draining on SIGTERM
or when the coordinator's heartbeat reply asks for it."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from workertest_helpers import HERE, TOKEN, cut, make_job

import shardgrad as sg
from shardgrad import nn
from shardgrad.worker.client import WorkerClient
from shardgrad.worker.compute import GradientComputer


class WorkerProcess:
    """A `shardgrad worker` subprocess whose output lines are read without blocking."""

    def __init__(self, coordinator: str, cache_dir, extra=()) -> None:
        env = dict(os.environ, SHARDGRAD_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        cmd = [
            sys.executable,
            "-m",
            "shardgrad.client.cli",
            "worker",
            "--coordinator",
            coordinator,
            "--port",
            "0",
            "--cache-dir",
            str(cache_dir),
            "--threads",
            "1",
            *extra,
        ]
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip())

    def wait_line(self, prefix: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting {prefix!r}; output so far: {seen}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def spawn(tmp_path):
    started: list[WorkerProcess] = []

    def start(coordinator: str, extra=()) -> WorkerProcess:
        p = WorkerProcess(coordinator, tmp_path / f"cache{len(started)}", extra)
        started.append(p)
        return p

    try:
        yield start
    finally:
        for p in started:
            p.stop()


def _address(proc: WorkerProcess) -> str:
    return proc.wait_line("shardgrad worker listening on").rsplit(" ", 1)[1]


def test_worker_process_round_trips_a_real_step(spawn, fake_coordinator):
    sg.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 32), nn.GELU(), nn.Linear(32, 3))
    spec, data, flat = make_job(model, n=96, k=6)
    spec = spec.__class__(**{**spec.__dict__, "dataset_sha256": fake_coordinator.add_dataset(data)})
    proc = spawn(fake_coordinator.address)
    address = _address(proc)
    assert fake_coordinator.wait_for(lambda: len(fake_coordinator.registered) >= 1)
    assert fake_coordinator.registered[0].address == address

    with WorkerClient(address, token=TOKEN, timeout=30) as client:
        client.load_job(spec)
        shards = cut(96, 6)
        result = client.compute(spec, 0, shards, flat)
    local = GradientComputer(spec, data)
    local.set_params(flat, 0)
    expected = local.compute(0, shards)
    assert result.blocks == expected.blocks == [(3, 0)]
    assert result.grads.tobytes() == expected.grads.tobytes()
    assert [s.loss for s in result.stats] == [s.loss for s in expected.stats]


def test_sigterm_drains_the_request_in_flight_then_deregisters(spawn, fake_coordinator):
    from workertest_models import SlowMLP

    delay = 0.4
    spec, data, flat = make_job(
        SlowMLP(delay=delay),
        k=8,
        job_id="slow",
        model_source={"import_path": "workertest_models:SlowMLP", "kwargs": {"delay": delay}},
    )
    spec = spec.__class__(**{**spec.__dict__, "dataset_sha256": fake_coordinator.add_dataset(data)})
    proc = spawn(fake_coordinator.address, ["--allow-import", "workertest_models"])
    address = _address(proc)
    with WorkerClient(address, token=TOKEN, timeout=30) as client:
        client.load_job(spec)
        outcome: dict = {}

        def call() -> None:
            try:
                outcome["result"] = client.compute(spec, 0, cut(16, 8), flat)
            except grpc.RpcError as exc:  # pragma: no cover - reported by the assertion
                outcome["error"] = exc

        t = threading.Thread(target=call)
        t.start()
        time.sleep(2 * delay)  # the step (8 x 0.4 s) is under way
        proc.proc.send_signal(signal.SIGTERM)
        proc.wait_line("shardgrad worker draining", timeout=10)
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as e:
            client.compute(spec, 1, cut(8, 8), flat, timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        t.join(timeout=20)
    assert "error" not in outcome, outcome.get("error")
    assert [s.num_samples for s in outcome["result"].stats] == [2] * 8
    assert proc.proc.wait(timeout=20) == 0
    assert [d.reason for d in fake_coordinator.deregistered] == ["drained"]
    assert any(
        h.state == 3
        for h in fake_coordinator.heartbeats  # WORKER_STATE_DRAINING
    )
    np.testing.assert_equal(len(fake_coordinator.registered), 1)


def test_a_drain_asked_by_the_coordinator_finishes_the_request_in_flight_then_exits(
    spawn, fake_coordinator
):
    from workertest_models import SlowMLP

    delay = 0.3
    spec, data, flat = make_job(
        SlowMLP(delay=delay),
        k=6,
        job_id="slow",
        model_source={"import_path": "workertest_models:SlowMLP", "kwargs": {"delay": delay}},
    )
    spec = spec.__class__(**{**spec.__dict__, "dataset_sha256": fake_coordinator.add_dataset(data)})
    proc = spawn(fake_coordinator.address, ["--allow-import", "workertest_models"])
    address = _address(proc)
    assert fake_coordinator.wait_for(lambda: len(fake_coordinator.heartbeats) >= 1)
    with WorkerClient(address, token=TOKEN, timeout=30) as client:
        client.load_job(spec)
        outcome: dict = {}

        def call() -> None:
            try:
                outcome["result"] = client.compute(spec, 0, cut(12, 6), flat)
            except grpc.RpcError as exc:  # pragma: no cover - reported by the assertion
                outcome["error"] = exc

        t = threading.Thread(target=call)
        t.start()
        time.sleep(2 * delay)  # the step (6 x 0.3 s) is under way
        fake_coordinator.drain = True
        proc.wait_line("shardgrad worker draining (asked by the coordinator)", timeout=10)
        t.join(timeout=20)
    assert "error" not in outcome, outcome.get("error")
    assert [s.num_samples for s in outcome["result"].stats] == [2] * 6
    assert proc.proc.wait(timeout=20) == 0
    assert [d.reason for d in fake_coordinator.deregistered] == ["drained"]
    assert len(fake_coordinator.registered) == 1
