"""Load: concurrent clients submitting, polling and streaming metrics against one coordinator
that trains several jobs. p50/p99 API latency are measured, every request is answered, every
submitted job finishes, and training throughput drops by no more than the share of the CPU
the clients take, counting what serving them costs the coordinator and its API process, plus
an allowance stated in the figures for noise between windows on a shared machine (see
docs/reliability.md)."""

from __future__ import annotations

import functools
import json
import os
import random
import threading
import time

import grpc
import numpy as np
from _reliability import dashboard_of
from _servertest import TERMINAL, api_fronts, mlp_config, pb, slow_config

from shardgrad import nn

FULL = os.environ.get("SHARDGRAD_RELIABILITY_FULL", "") not in ("", "0")
CLIENTS = 20 if FULL else 6
WINDOW_S = 12.0 if FULL else 4.0
# Noise between windows on a shared machine (more in the short ones) and what serving still
# costs beyond its CPU share (about 4 points measured with the API process).
NOISE = 0.15 if FULL else 0.30

TRAIN = mlp_config(
    model={
        "spec": nn.Sequential(
            nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
        ).spec()
    },
    dataset="synthetic:classification:n=8000,features=64,classes=10,seed=5",
    batch_size=1024,
    steps=1_000_000,
    micro_shards=4,
    checkpoint_interval=50,
)
TINY = mlp_config(steps=2, checkpoint_interval=0)
# A gRPC worker holds at most 4 jobs; a fifth makes it drop an idle one, to be loaded again
# later (see test_more_jobs_than_a_worker_holds_all_finish). The 2 training jobs plus at most
# 2 client jobs at a time stay within that, so the throughput measured is not that of reloads.
SUBMIT_SLOTS = threading.BoundedSemaphore(2)


def _steps(server, job_ids) -> int:
    return sum(server.job(j).step for j in job_ids)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _throughput(server, job_ids, seconds: float) -> tuple[float, float]:
    """(steps per second of `job_ids`, the CPU share of the coordinator and its API process)
    over `seconds`."""
    pid = server.process.proc.pid
    pids = [pid, *api_fronts(pid)]
    a, t0 = _steps(server, job_ids), time.monotonic()
    c = sum(_cpu_seconds(p) for p in pids)
    time.sleep(seconds)
    wall = time.monotonic() - t0
    cpus = os.cpu_count() or 1
    used = sum(_cpu_seconds(p) for p in pids) - c
    return (_steps(server, job_ids) - a) / wall, used / (wall * cpus)


class Client(threading.Thread):
    """One user: submits a small job, then polls jobs, lists, and streams metrics."""

    def __init__(self, server, n: int, long_jobs: list[str], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.server, self.n, self.long_jobs, self.stop = server, n, long_jobs, stop
        self.latencies: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.submitted: list[str] = []
        self.holding = False
        self.own_done = threading.Event()  # its own job was submitted and has ended
        self.channel = grpc.insecure_channel(server.address)
        from shardgrad.protos import coordinator_pb2_grpc

        self.stub = coordinator_pb2_grpc.CoordinatorStub(self.channel)

    def _timed(self, name: str, fn):
        t0 = time.perf_counter()
        try:
            out = fn()
        except grpc.RpcError as err:
            self.errors.append(f"{name}: {err.code().name} {err.details()}")
            return None
        self.latencies.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    def _request(self, name: str, target: str):
        md = self.server.metadata
        if name == "GetJob":
            return self.stub.GetJob(pb.GetJobRequest(job_id=target), metadata=md, timeout=30)
        if name == "ListJobs":
            return self.stub.ListJobs(pb.ListJobsRequest(), metadata=md, timeout=30)
        if name == "ListWorkers":
            return self.stub.ListWorkers(pb.ListWorkersRequest(), metadata=md, timeout=30)
        latest = self.stub.GetJob(pb.GetJobRequest(job_id=target), metadata=md, timeout=30).step
        request = pb.StreamMetricsRequest(job_id=target, from_step=max(0, latest - 20))
        # As the SDK asks: the events in batches, one message per reading of the history.
        batches = self.stub.StreamMetricsBatches(request, metadata=md, timeout=30)
        return [event for batch in batches for event in batch.events]

    def run(self) -> None:
        md, rng = self.server.metadata, random.Random(self.n)
        while not self.stop.is_set():
            if not self.submitted and SUBMIT_SLOTS.acquire(blocking=False):
                job = self._timed(
                    "SubmitJob",
                    lambda: self.stub.SubmitJob(
                        pb.SubmitJobRequest(config_json=json.dumps(TINY)), metadata=md, timeout=30
                    ),
                )
                if job is None:
                    SUBMIT_SLOTS.release()
                else:
                    self.submitted.append(job.job_id)
                    self.holding = True
            if self.holding:
                mine = self._timed(
                    "GetJob",
                    lambda: self.stub.GetJob(
                        pb.GetJobRequest(job_id=self.submitted[0]), metadata=md, timeout=30
                    ),
                )
                if mine is not None and mine.state in TERMINAL:
                    self.holding = False
                    SUBMIT_SLOTS.release()
                    self.own_done.set()
            target = rng.choice(self.long_jobs + self.submitted)
            name = rng.choice(("GetJob", "ListJobs", "ListWorkers", "StreamMetricsBatches"))
            self._timed(name, functools.partial(self._request, name, target))
            time.sleep(rng.uniform(0.0, 0.02))
        if self.holding:
            SUBMIT_SLOTS.release()
        self.channel.close()


def test_concurrent_clients_against_a_training_coordinator(procs, tmp_path, figures):
    state = tmp_path / "state"
    server = procs.coordinator(
        state,
        "--local-workers",
        "2",
        "--compute-threads",
        "1",
        "--dashboard-port",
        "0",
        "--max-jobs",
        str(CLIENTS + 4),
    )
    dash = dashboard_of(server)
    server.wait_workers(2, timeout=60)
    long_jobs = [server.submit(TRAIN).job_id for _ in range(2)]
    for j in long_jobs:
        server.wait_until(j, lambda job: job.step >= 3, timeout=60)

    baseline, coord_idle = _throughput(server, long_jobs, WINDOW_S)

    # Phase one: every client submits a job (two at a time) and polls it to its end, while
    # the others poll and stream. Phase two, measured: all of them poll and stream.
    stop = threading.Event()
    clients = [Client(server, n, long_jobs, stop) for n in range(CLIENTS)]
    for c in clients:
        c.start()
    deadline = time.monotonic() + 180
    for c in clients:
        assert c.own_done.wait(max(0.0, deadline - time.monotonic())), "a client job never ended"
    cpu0, t0 = time.process_time(), time.monotonic()
    loaded, coord_busy = _throughput(server, long_jobs, WINDOW_S)
    stop.set()
    for c in clients:
        c.join(timeout=60)
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    assert not any(c.is_alive() for c in clients)
    share = min(1.0, cpu / (wall * (os.cpu_count() or 1)))
    # What serving the clients costs the coordinator on top of training (it answers them in
    # the same process): counted as CPU the clients take.
    serving = max(0.0, coord_busy - coord_idle)

    errors = [e for c in clients for e in c.errors]
    assert errors == [], errors[:5]
    lat = np.array([x for c in clients for v in c.latencies.values() for x in v])
    by_op = {}
    for c in clients:
        for name, v in c.latencies.items():
            by_op.setdefault(name, []).extend(v)
    submitted = [j for c in clients for j in c.submitted]
    assert len(submitted) == CLIENTS
    for j in submitted:
        server.wait_succeeded(j, timeout=120)
    for j in long_jobs:
        server.call("StopJob", pb.StopJobRequest(job_id=j), timeout=60)
        assert server.job(j).state == pb.JOB_STATE_STOPPED
    listed = {j.job_id for j in server.call("ListJobs", pb.ListJobsRequest()).jobs}
    assert set(submitted + long_jobs) <= listed
    assert len(dash.get("/api/v1/jobs")["jobs"]) == len(submitted) + len(long_jobs)

    drop = 1.0 - loaded / baseline
    p50, p99 = (float(np.percentile(lat, q)) for q in (50, 99))
    figures.add(
        "load",
        "concurrent_clients",
        clients=CLIENTS,
        window_s=WINDOW_S,
        requests_served=int(lat.size),
        errors=len(errors),
        p50_ms=round(p50 * 1000, 2),
        p99_ms=round(p99 * 1000, 2),
        per_op_p99_ms={k: round(float(np.percentile(v, 99)) * 1000, 2) for k, v in by_op.items()},
        baseline_steps_per_s=round(baseline, 2),
        loaded_steps_per_s=round(loaded, 2),
        throughput_drop=round(drop, 3),
        client_cpu_share=round(share, 3),
        serving_cpu_share=round(serving, 3),
        coordinator_cpu_idle=round(coord_idle, 3),
        coordinator_cpu_loaded=round(coord_busy, 3),
        noise_margin=NOISE,
        api_process=bool(api_fronts(server.process.proc.pid)),
        jobs_submitted=len(submitted) + len(long_jobs),
        jobs_lost=0,
    )
    assert p99 < 2.0, f"p99 latency {p99:.3f} s"
    assert drop <= share + serving + NOISE, (
        f"throughput fell {drop:.1%} with clients taking {share:.1%} of the CPU and "
        f"{serving:.1%} more in the coordinator"
    )


def test_more_jobs_than_a_worker_holds_all_finish(procs, tmp_path):
    """--max-jobs (16 by default) admits more concurrent jobs than one worker holds (4); the
    extra ones must wait or share, not take the worker out of the pool."""
    server = procs.coordinator(tmp_path / "state", "--local-workers", "1")
    server.wait_workers(1, timeout=60)
    config = slow_config(delay=0.02, checkpoint_interval=0)
    jobs = [server.submit(config).job_id for _ in range(6)]
    deadline = time.monotonic() + 60
    while True:
        states = [server.job(j).state for j in jobs]
        if all(s in TERMINAL for s in states):
            break
        live = [
            w for w in server.workers() if w.state in (pb.WORKER_STATE_IDLE, pb.WORKER_STATE_BUSY)
        ]
        assert live, "the only worker was dropped from the pool"
        assert time.monotonic() < deadline, "the jobs did not end"
        time.sleep(0.1)
    assert all(s == pb.JOB_STATE_SUCCEEDED for s in states)
