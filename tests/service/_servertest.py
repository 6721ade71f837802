"""Helpers for the server tests: coordinator and worker processes, an API client, and the
in-process reference run every distributed run must equal bit for bit."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from shardgrad import nn
from shardgrad.protos import common_pb2, coordinator_pb2, coordinator_pb2_grpc

HERE = Path(__file__).resolve().parent
pb = coordinator_pb2
TERMINAL = (pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_STOPPED)
DATASET = "synthetic:classification:n=90,features=8,classes=3,seed=3"


def mlp_config(**changes) -> dict:
    """A small job: 90 rows in batches of 20 (one short batch per epoch), K=6, 12 steps."""
    spec = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).spec()
    cfg = {
        "model": {"spec": spec},
        "dataset": DATASET,
        "optimizer": {"name": "SGD", "kwargs": {"lr": 0.05, "momentum": 0.9}},
        "batch_size": 20,
        "steps": 12,
        "micro_shards": 6,
        "seed": 11,
        "checkpoint_interval": 4,
    }
    cfg.update(changes)
    return cfg


def slow_config(delay: float = 0.02, **changes) -> dict:
    """Like mlp_config but with a model whose forward sleeps `delay` per micro-shard."""
    cfg = mlp_config(
        model={"import_path": "_slow_models:SlowMLP", "kwargs": {"delay": delay}},
        micro_shards=4,
        checkpoint_interval=3,
    )
    cfg.update(changes)
    return cfg


def api_fronts(pid: int) -> list[int]:
    """The processes serving the API of the coordinator `pid` (`serve --api-process`)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:  # gone meanwhile
            continue
        if parent == pid and b"shardgrad.service.api_front" in cmd:
            out.append(int(entry))
    return out


def child_env(token: str | None = None) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("SHARDGRAD_TOKEN", None)
    if token is not None:
        env["SHARDGRAD_TOKEN"] = token
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env


class Process:
    """A `shardgrad ...` subprocess in its own process group, its output read by a thread."""

    def __init__(self, args: list[str], env: dict, log_path: Path) -> None:
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shardgrad.client.cli", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its local workers share the group: one kill stops all
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        with open(self.log_path, "a") as log:
            for line in self.proc.stdout:
                log.write(line)
                self.lines.put(line.rstrip())

    def wait_line(self, prefix: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line {prefix!r} within {timeout} s; see {self.log_path}")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Kill the process and everything it started (its process group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - reported by the test's timeout
            pass


class Processes:
    """Every process a test starts; `stop_all()` runs at teardown, failure or not."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Process] = []

    def coordinator(self, state_dir: Path, *extra: str, port: int = 0) -> Coordinator:
        c = Coordinator(self, state_dir, list(extra), port)
        return c

    def worker(self, coordinator: str, token: str, *extra: str) -> Process:
        n = len(self.started)
        args = [
            "worker",
            "--coordinator",
            coordinator,
            "--port",
            "0",
            "--threads",
            "1",
            "--cache-dir",
            str(self.tmp_path / f"cache-{n}"),
            "--allow-import",
            "_slow_models",
            *extra,
        ]
        p = Process(args, child_env(token), self.tmp_path / f"worker-{n}.log")
        self.started.append(p)
        p.wait_line("shardgrad worker listening on")
        return p

    def serve(self, state_dir: Path, extra: list[str], port: int) -> Process:
        n = len(self.started)
        args = [
            "serve",
            "--state-dir",
            str(state_dir),
            "--port",
            str(port),
            "--heartbeat-interval",
            "0.25",
            "--allow-import",
            "_slow_models",
            *extra,
        ]
        p = Process(args, child_env(), self.tmp_path / f"serve-{n}.log")
        self.started.append(p)
        return p

    def stop_all(self) -> None:
        for p in reversed(self.started):
            p.stop()


class Coordinator:
    """A `shardgrad serve` process and an authenticated client of its API."""

    def __init__(self, procs: Processes, state_dir: Path, extra: list[str], port: int) -> None:
        self.procs, self.state_dir, self.extra = procs, state_dir, extra
        self.process = procs.serve(state_dir, extra, port)
        line = self.process.wait_line("shardgrad coordinator listening on", timeout=60)
        self.address = line.rsplit(" ", 1)[1]
        self.port = int(self.address.rsplit(":", 1)[1])
        self.token = (state_dir / "token").read_text().strip()
        self.metadata = (("authorization", f"Bearer {self.token}"),)
        self.channel = grpc.insecure_channel(self.address)
        self.stub = coordinator_pb2_grpc.CoordinatorStub(self.channel)

    def restart(self) -> Coordinator:
        """A new coordinator on the same state directory and port."""
        self.channel.close()
        return Coordinator(self.procs, self.state_dir, self.extra, self.port)

    def close(self) -> None:
        self.channel.close()

    # ------------------------------------------------------------------ API calls
    def call(self, method: str, request, timeout: float = 30.0):
        return getattr(self.stub, method)(request, metadata=self.metadata, timeout=timeout)

    def submit(self, config: dict, initial_weights: bytes = b"") -> pb.Job:
        return self.call(
            "SubmitJob",
            pb.SubmitJobRequest(config_json=json.dumps(config), initial_weights=initial_weights),
            timeout=60,
        )

    def job(self, job_id: str) -> pb.Job:
        return self.call("GetJob", pb.GetJobRequest(job_id=job_id))

    def wait_until(self, job_id: str, predicate, timeout: float = 60.0) -> pb.Job:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if predicate(job):
                return job
            if job.state in TERMINAL or time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job_id} is {pb.JobState.Name(job.state)} at step {job.step} "
                    f"({job.error}); the condition was not met within {timeout} s"
                )
            time.sleep(0.05)

    def wait_done(self, job_id: str, timeout: float = 90.0) -> pb.Job:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job.state in TERMINAL:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} did not end within {timeout} s")
            time.sleep(0.05)

    def wait_succeeded(self, job_id: str, timeout: float = 90.0) -> pb.Job:
        job = self.wait_done(job_id, timeout)
        assert job.state == pb.JOB_STATE_SUCCEEDED, (pb.JobState.Name(job.state), job.error)
        return job

    def model(self, job_id: str) -> bytes:
        parts = list(
            self.stub.FetchModel(
                pb.FetchModelRequest(job_id=job_id), metadata=self.metadata, timeout=30
            )
        )
        info = parts[0].info
        data = b"".join(p.chunk.data for p in parts[1:])
        assert len(data) == info.nbytes
        return data

    def metrics(self, job_id: str, kind: str = "train") -> list:
        events = list(
            self.stub.StreamMetrics(
                pb.StreamMetricsRequest(job_id=job_id), metadata=self.metadata, timeout=30
            )
        )
        if kind == "train":
            return [e for e in events if not any(k.startswith("eval_") for k in e.values)]
        return events

    def workers(self) -> list:
        return list(self.call("ListWorkers", pb.ListWorkersRequest()).workers)

    def wait_workers(self, count: int, timeout: float = 30.0) -> list:
        deadline = time.monotonic() + timeout
        while True:
            live = [
                w for w in self.workers() if w.state in (pb.WORKER_STATE_IDLE, pb.WORKER_STATE_BUSY)
            ]
            if len(live) == count:
                return live
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(live)} live workers, not {count}, after {timeout} s")
            time.sleep(0.05)

    def upload(self, data: bytes, name: str = "", chunk: int = 1 << 16, sha256: str = ""):
        def requests():
            yield pb.UploadDatasetRequest(
                header=pb.UploadDatasetHeader(name=name, nbytes=len(data), sha256=sha256)
            )
            for a in range(0, len(data), chunk):
                yield pb.UploadDatasetRequest(
                    chunk=common_pb2.Chunk(offset=a, data=data[a : a + chunk])
                )

        return self.stub.UploadDataset(requests(), metadata=self.metadata, timeout=60)


def reference_model(tmp_path: Path, config: dict) -> bytes:
    """The trained state_dict of `config` run in this process on one in-process worker."""
    from shardgrad.service.config import JobConfig
    from shardgrad.service.jobs import JobManager
    from shardgrad.service.pools.inprocess import InProcessPool
    from shardgrad.service.store import JobState
    from shardgrad.service.trainer import TrainerOptions

    pool = InProcessPool(1, allowed_import_prefixes=["_slow_models"])
    mgr = JobManager(tmp_path, pool, TrainerOptions(allowed_import_prefixes=("_slow_models",)))
    try:
        rec = mgr.submit(JobConfig.from_dict(config))
        done = mgr.wait(rec.id, 120)
        assert done.state is JobState.SUCCEEDED, done.reason
        return mgr.model_bytes(rec.id)
    finally:
        mgr.close()
        pool.close()


def reference_models(tmp_path_factory) -> Callable[[dict], bytes]:
    """`reference_model` for a test module's fixture: each config trained once, then kept."""
    cache: dict[str, bytes] = {}

    def get(config: dict) -> bytes:
        key = json.dumps(config, sort_keys=True)
        if key not in cache:
            cache[key] = reference_model(tmp_path_factory.mktemp("ref"), config)
        return cache[key]

    return get


@contextlib.contextmanager
def embedded_coordinator(tmp_path: Path, workers: int = 2) -> Iterator:
    """A coordinator in this process (service.server.Coordinator, 0.1 s heartbeats) with
    `workers` in-process gRPC workers registered with it; everything stops afterwards."""
    from shardgrad.service.server import Coordinator, ServeOptions  # noqa: PLC0415
    from shardgrad.worker.grpc_server import WorkerServer  # noqa: PLC0415

    coordinator = Coordinator(
        ServeOptions(state_dir=tmp_path / "state", heartbeat_interval=0.1)
    ).start()
    started = []
    try:
        for i in range(workers):
            started.append(
                WorkerServer(
                    coordinator.dial_address,
                    token=coordinator.token,
                    cache_dir=tmp_path / f"cache{i}",
                    threads_share=1,
                ).start()
            )
        pool = coordinator.pool
        until(lambda: len(pool.live_workers()) == workers, what="workers registered")
        yield coordinator
    finally:
        for w in started:
            w.stop(grace=None)
        coordinator.stop()


def until(predicate, timeout: float = 10.0, what: str = "condition"):
    """Poll `predicate` until it returns something true (returned), failing after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.02)
    return value
