"""The gRPC pool's membership rules: scaling down tells the workers it cannot stop to drain
(in-process workers, and real `shardgrad worker` processes that exit), a drained worker that
has not been told yet is taken back when needed, a dropped worker that is still alive
registers again under its old id, and a worker too full for another job is kept: the jobs
take turns on it."""

from __future__ import annotations

import time

import pytest
from _servertest import embedded_coordinator, until

from shardgrad.service.server import Coordinator, ServeOptions
from shardgrad.worker.grpc_server import WorkerServer


@pytest.fixture
def setup(tmp_path):
    with embedded_coordinator(tmp_path, workers=2) as coordinator:
        yield coordinator.pool


def _states(pool):
    return {w["worker_id"]: w["state"] for w in pool.describe()}


def test_scaling_down_drains_the_workers_it_cannot_stop(setup):
    pool = setup
    first, second = pool.live_workers()
    assert pool.scale(1) == 1
    assert pool.live_workers() == [first]  # the newest goes first
    assert _states(pool)[second] == "DRAINING"
    # Its next heartbeat reply says drain: it deregisters and leaves the pool.
    until(lambda: _states(pool).get(second) == "LOST")
    assert pool.live_workers() == [first]

    pool.report_failure(first, "missed its deadline")
    assert pool.live_workers() == []
    # `first` is alive: its next heartbeat is refused, it registers again and gets work.
    until(lambda: pool.live_workers() == [first])
    assert _states(pool)[first] == "IDLE"


def test_a_drain_not_yet_sent_is_taken_back(setup):
    pool = setup
    first, second = pool.live_workers()
    with pool._lock:  # scale down and up between two heartbeats
        pool.scale(1)
        assert pool.live_workers() == [first]
        pool.scale(2)
    assert sorted(pool.live_workers()) == sorted([first, second])
    time.sleep(0.5)  # several heartbeats: nobody was told to drain
    assert sorted(pool.live_workers()) == sorted([first, second])
    assert pool.take_drain(second) is False


def test_scale_down_makes_a_worker_process_exit(procs):
    """Two `shardgrad worker` processes started apart from the coordinator; scaling to one
    makes the newest finish, deregister and exit 0, and the other keeps working."""
    from _servertest import mlp_config, pb

    c = procs.coordinator(procs.tmp_path / "state")
    try:
        older = procs.worker(c.address, c.token)
        (kept,) = (w.worker_id for w in c.wait_workers(1))
        newer = procs.worker(c.address, c.token)
        (newest,) = (w.worker_id for w in c.wait_workers(2) if w.worker_id != kept)
        reply = c.call("ScaleWorkers", pb.ScaleWorkersRequest(count=1))
        assert reply.count == 1
        newer.wait_line("shardgrad worker draining (asked by the coordinator)", timeout=10)
        assert newer.wait(timeout=20) == 0
        assert older.proc.poll() is None
        states = {w.worker_id: w.state for w in c.workers()}
        assert states[newest] == pb.WORKER_STATE_LOST
        assert states[kept] == pb.WORKER_STATE_IDLE
        job = c.submit(mlp_config(steps=2))
        c.wait_succeeded(job.job_id)
        assert {e.workers for e in c.metrics(job.job_id)} == {1}
    finally:
        c.close()


def test_registration_is_refused_once_the_pool_is_closed(setup):
    pool = setup
    pool.close()
    assert pool.live_workers() == []
    with pytest.raises(RuntimeError, match="closed"):
        pool.register("127.0.0.1:1")


def test_a_worker_that_holds_one_job_serves_two_to_the_same_results(tmp_path):
    """A worker full with one job is busy, not dead: two concurrent jobs take turns on it
    (each load drops the other job, which is loaded again at its next step), the worker is
    never dropped, and both end with the bytes of an undisturbed run."""
    from _servertest import reference_model, slow_config

    from shardgrad.service.config import JobConfig
    from shardgrad.service.store import JobState

    configs = [slow_config(seed=seed, checkpoint_interval=0) for seed in (1, 2)]
    coordinator = Coordinator(
        ServeOptions(
            state_dir=tmp_path / "state", heartbeat_interval=0.1, allow_import=("_slow_models",)
        )
    ).start()
    worker = WorkerServer(
        coordinator.dial_address,
        token=coordinator.token,
        cache_dir=tmp_path / "cache",
        threads_share=1,
        allowed_import_prefixes=["_slow_models"],
        max_jobs=1,
    ).start()
    try:
        pool, manager = coordinator.pool, coordinator.manager
        until(lambda: len(pool.live_workers()) == 1)
        (worker_id,) = pool.live_workers()
        jobs = [manager.submit(JobConfig.from_dict(c)).id for c in configs]
        for job_id in jobs:
            done = manager.wait(job_id, 60)
            assert done.state is JobState.SUCCEEDED, done.reason
        assert pool.live_workers() == [worker_id]
        assert [w["worker_id"] for w in pool.describe()] == [worker_id]  # no LOST record
        assert worker.servicer.jobs.evicted >= 1  # they did take turns
        trained = [manager.model_bytes(job_id) for job_id in jobs]
    finally:
        worker.stop(grace=None)
        coordinator.stop()
    for n, (config, model) in enumerate(zip(configs, trained)):
        assert model == reference_model(tmp_path / f"reference-{n}", config)
