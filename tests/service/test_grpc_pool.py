"""The gRPC pool's membership rules with in-process workers: scaling down keeps workers it
cannot stop as standby, a standby takes over from a dropped worker, and a dropped worker that
is still alive registers again under its old id."""

from __future__ import annotations

import time

import pytest

from shardgrad.service.server import Coordinator, ServeOptions
from shardgrad.worker.grpc_server import WorkerServer


def _until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def setup(tmp_path):
    coordinator = Coordinator(
        ServeOptions(state_dir=tmp_path / "state", heartbeat_interval=0.1)
    ).start()
    workers = []
    try:
        for i in range(2):
            workers.append(
                WorkerServer(
                    coordinator.dial_address,
                    token=coordinator.token,
                    cache_dir=tmp_path / f"cache{i}",
                    threads_share=1,
                ).start()
            )
        pool = coordinator.pool
        _until(lambda: len(pool.live_workers()) == 2)
        yield pool
    finally:
        for w in workers:
            w.stop(grace=None)
        coordinator.stop()


def _states(pool):
    return {w["worker_id"]: w["state"] for w in pool.describe()}


def test_scaling_down_keeps_a_standby_that_replaces_a_dropped_worker(setup):
    pool = setup
    first, second = pool.live_workers()
    assert pool.scale(1) == 1
    assert pool.live_workers() == [first]  # the newest goes first
    assert _states(pool)[second] == "DRAINING"

    pool.report_failure(first, "missed its deadline")
    assert pool.live_workers() == [second]  # the standby takes over at once
    # `first` is alive: its next heartbeat is refused, it registers again, as the standby now
    _until(lambda: _states(pool).get(first) == "DRAINING")

    assert pool.scale(2) == 2
    assert sorted(pool.live_workers()) == sorted([first, second])


def test_registration_is_refused_once_the_pool_is_closed(setup):
    pool = setup
    pool.close()
    assert pool.live_workers() == []
    with pytest.raises(RuntimeError, match="closed"):
        pool.register("127.0.0.1:1")
