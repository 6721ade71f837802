"""The jobs a gRPC worker holds are a bounded cache: a full worker drops its least recently
used idle job to load another, never one that is computing or waits for its first compute,
and says RESOURCE_EXHAUSTED (busy) only when every job it holds is in use. A job loaded again
computes bit for bit what it computed before."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from workertest_helpers import TOKEN, cut, make_job

import shardgrad as sg
from shardgrad import nn
from shardgrad.worker.client import WorkerClient
from shardgrad.worker.compute import GradientComputer
from shardgrad.worker.datasets import DatasetCache
from shardgrad.worker.grpc_server import WorkerServer, WorkerServicer
from shardgrad.worker.job_cache import JobCache


def _server(fake_coordinator, tmp_path, max_jobs: int) -> WorkerServer:
    return WorkerServer(
        fake_coordinator.address,
        cache_dir=tmp_path / "cache",
        token=TOKEN,
        threads_share=1,
        allowed_import_prefixes=["workertest_models"],
        max_jobs=max_jobs,
    ).start()


@pytest.fixture
def open_worker(fake_coordinator, tmp_path):
    """A factory of workers holding at most `max_jobs` jobs, each with a client."""
    started: list[tuple[WorkerServer, WorkerClient]] = []

    def open_one(max_jobs: int) -> tuple[WorkerServer, WorkerClient]:
        server = _server(fake_coordinator, tmp_path, max_jobs)
        client = WorkerClient(server.address, token=TOKEN, timeout=20)
        started.append((server, client))
        return server, client

    try:
        yield open_one
    finally:
        for server, client in started:
            client.close()
            server.stop(grace=None)


def _jobs(fake_coordinator, names):
    sg.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    spec, data, flat = make_job(model, n=32, k=4)
    sha = fake_coordinator.add_dataset(data)
    specs = {
        name: spec.__class__(**{**spec.__dict__, "dataset_sha256": sha, "job_id": name})
        for name in names
    }
    return specs, data, flat


def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details()


def test_a_full_worker_drops_its_least_recently_used_idle_job(open_worker, fake_coordinator):
    server, client = open_worker(max_jobs=2)
    specs, data, flat = _jobs(fake_coordinator, ["a", "b", "c"])
    shards = cut(16, 4)
    for name in ("a", "b"):
        client.load_job(specs[name])
        client.compute(specs[name], 0, shards, flat)
    client.compute(specs["a"], 1, shards, flat)  # "b" is now the least recently used
    client.load_job(specs["c"])
    assert server.servicer.held_jobs() == ["a", "c"]
    assert server.servicer.jobs.evicted == 1

    code, details = _code(lambda: client.compute(specs["b"], 1, shards, flat))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not loaded" in details
    # Loaded again (dropping "a": "c" waits for its first compute), "b" computes exactly what
    # a fresh computer of the same job computes.
    client.load_job(specs["b"])
    assert server.servicer.held_jobs() == ["b", "c"]
    result = client.compute(specs["b"], 2, shards, flat)
    local = GradientComputer(specs["b"], data)
    local.set_params(flat, 2)
    expected = local.compute(2, shards)
    assert result.grads.tobytes() == expected.grads.tobytes()
    assert [s.loss for s in result.stats] == [s.loss for s in expected.stats]


def test_a_job_waiting_for_its_first_compute_keeps_its_place(open_worker, fake_coordinator):
    server, client = open_worker(max_jobs=1)
    specs, _, flat = _jobs(fake_coordinator, ["a", "b"])
    client.load_job(specs["a"])
    code, details = _code(lambda: client.load_job(specs["b"]))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "busy" in details
    assert server.servicer.held_jobs() == ["a"]

    client.compute(specs["a"], 0, cut(16, 4), flat)
    client.load_job(specs["b"])  # "a" computed and is idle: it makes room
    assert server.servicer.held_jobs() == ["b"]


def test_a_load_that_never_computes_keeps_its_place_only_for_a_while(open_worker, fake_coordinator):
    server, client = open_worker(max_jobs=1)
    server.servicer.jobs.pin_seconds = 0.3
    specs, _, _ = _jobs(fake_coordinator, ["a", "b"])
    client.load_job(specs["a"])
    assert _code(lambda: client.load_job(specs["b"]))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    time.sleep(0.35)
    client.load_job(specs["b"])
    assert server.servicer.held_jobs() == ["b"]


def test_a_computing_job_is_never_dropped(open_worker, fake_coordinator):
    from workertest_models import SlowMLP

    server, client = open_worker(max_jobs=1)
    slow_spec, slow_data, slow_flat = make_job(
        SlowMLP(delay=0.1),
        k=4,
        job_id="slow",
        model_source={"import_path": "workertest_models:SlowMLP", "kwargs": {"delay": 0.1}},
    )
    sha = fake_coordinator.add_dataset(slow_data)
    slow_spec = slow_spec.__class__(**{**slow_spec.__dict__, "dataset_sha256": sha})
    specs, _, _ = _jobs(fake_coordinator, ["other"])
    client.load_job(slow_spec)
    outcome = {}

    def run() -> None:
        outcome["result"] = client.compute(slow_spec, 0, cut(16, 4), slow_flat)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.servicer.jobs.get("slow").lock.locked():  # its compute started
        assert time.monotonic() < deadline
        time.sleep(0.005)
    code, _ = _code(lambda: client.load_job(specs["other"]))
    thread.join(timeout=20)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(outcome["result"].stats) == 4
    client.load_job(specs["other"])
    assert server.servicer.held_jobs() == ["other"]


def test_max_jobs_is_a_worker_option(tmp_path):
    from shardgrad.client.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["worker", "--coordinator", "127.0.0.1:1"]).max_jobs == 4
    assert parse(["worker", "--coordinator", "127.0.0.1:1", "--max-jobs", "1"]).max_jobs == 1
    with pytest.raises(SystemExit):
        parse(["worker", "--coordinator", "127.0.0.1:1", "--max-jobs", "0"])
    with pytest.raises(ValueError, match="at least one job"):
        WorkerServicer(DatasetCache(tmp_path), max_jobs=0)


# ---------------------------------------------------------------------------- the policy
class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _cache(capacity: int) -> tuple[JobCache, _Clock]:
    clock = _Clock()
    return JobCache(capacity, pin_seconds=1.0, claim_seconds=3.0, clock=clock), clock


def _hold(cache: JobCache, job_id: str, computed: bool = True) -> None:
    assert cache.reserve(job_id)
    cache.put(job_id, job_id.upper())
    if computed:
        cache.end(cache.begin(job_id))


def test_places_go_to_the_jobs_refused_first():
    cache, _ = _cache(1)
    _hold(cache, "a")
    running = cache.begin("a")
    assert not cache.reserve("b") and not cache.reserve("c")
    assert cache.waiting() == ["b", "c"]
    # "a" ends its compute while two jobs wait: it goes at once, before its next compute.
    cache.end(running)
    assert cache.ids() == [] and cache.evicted == 1
    assert cache.begin("a") is None
    assert not cache.reserve("c")  # the free place is owed to "b"
    assert not cache.reserve("a")  # and "a" queues behind "c"
    assert cache.reserve("b")
    cache.put("b", "B")
    assert cache.waiting() == ["c", "a"]
    assert not cache.reserve("c")  # "b" waits for its first compute
    cache.end(cache.begin("b"))
    assert cache.reserve("c")


def test_a_claim_not_renewed_lapses():
    cache, clock = _cache(1)
    _hold(cache, "a")
    running = cache.begin("a")
    assert not cache.reserve("b")
    clock.now += 3.5  # "b" stopped asking (its job ended)
    assert cache.waiting() == []
    cache.end(running)
    assert cache.ids() == ["a"]  # nobody waits: "a" keeps its place


def test_a_load_that_fails_gives_its_place_back():
    cache, _ = _cache(1)
    assert cache.reserve("a")
    assert not cache.reserve("b")  # the place is taken while "a" builds
    cache.cancel()
    assert cache.reserve("b")


def test_a_pin_lasts_until_the_first_compute_or_its_time():
    cache, clock = _cache(2)
    _hold(cache, "a", computed=False)
    clock.now += 0.1
    _hold(cache, "b", computed=False)
    assert not cache.reserve("c")
    clock.now += 1.5  # both pins ran out: the least recently used goes
    assert cache.reserve("c")
    assert cache.ids() == ["b"]
    cache.put("c", "C")
    cache.pin("b")  # asked to load again: kept until its compute
    assert not cache.reserve("d")


def test_a_released_job_leaves_the_queue_too():
    cache, _ = _cache(1)
    _hold(cache, "a")
    running = cache.begin("a")
    assert not cache.reserve("b")
    assert cache.pop("b") is None and cache.waiting() == []
    cache.end(running)
    assert cache.pop("a") == "A" and cache.ids() == []
    with pytest.raises(ValueError, match="at least one job"):
        JobCache(0)
