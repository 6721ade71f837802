"""`shardgrad_bytes_total{direction="shared"}`: the gradient bytes the coordinator read in
place from its workers' shared memory, beside those sent and received over the wire, equal
to the sum of the metrics rows' `bytes_shared`."""

from __future__ import annotations

import time

import pytest
from dashtest_helpers import Coordinator, job_config, wait_until
from prometheus_client.parser import text_string_to_metric_families

from shardgrad.service.dashboard import start_dashboard, stop_dashboard
from shardgrad.service.store import JobState, Store

SENT = ("shardgrad_bytes_total", (("direction", "sent"),))
RECEIVED = ("shardgrad_bytes_total", (("direction", "received"),))
SHARED = ("shardgrad_bytes_total", (("direction", "shared"),))


def scrape(c: Coordinator) -> dict:
    """{(name, labels as a sorted tuple): value} of every sample on /metrics."""
    status, _, body = c.request("/metrics", token=c.token)
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _sum(rows, key: str) -> float:
    return sum(r.values.get(key, 0) for r in rows)


@pytest.mark.parametrize("shared_memory", [True, False], ids=["shared", "wire"])
def test_a_grpc_pool_job_counts_its_shared_bytes(tmp_path, shared_memory):
    """Local gRPC workers hand their gradients over through shared memory (or, without it,
    over the wire); the counters say which, and add up to the job's metrics rows."""
    from shardgrad.service.server import Coordinator as Serve
    from shardgrad.service.server import ServeOptions

    serve = Serve(
        ServeOptions(
            state_dir=tmp_path / "state",
            pool="grpc",
            local_workers=2,
            step_timeout=60.0,
            shared_memory=shared_memory,
        )
    ).start()
    server = None
    try:
        server, port = start_dashboard(serve.manager, serve.token, "127.0.0.1", 0)
        c = Coordinator(serve.manager, serve.pool, server, port, serve.token)
        rec = serve.manager.submit(job_config(steps=6, eval_fraction=0.0, checkpoint_interval=0))
        done = serve.manager.wait(rec.id, 120)
        assert done.state is JobState.SUCCEEDED, done.reason
        train = serve.manager.store.metrics(rec.id, kind="train")
        assert len(train) == 6
        m = wait_until(lambda: (s := scrape(c))[("shardgrad_steps_total", ())] == 6 and s)
        assert m[SHARED] == _sum(train, "bytes_shared")
        assert m[SENT] == _sum(train, "bytes_sent") > 0
        assert m[RECEIVED] == _sum(train, "bytes_received")
        if shared_memory:
            assert m[SHARED] > 0 and m[RECEIVED] == 0
        else:
            assert m[SHARED] == 0 and m[RECEIVED] > 0
    finally:
        if server is not None:
            stop_dashboard(server)
        serve.stop(timeout=30)


def test_shared_bytes_add_up_over_jobs_and_older_rows(tmp_path):
    store = Store(tmp_path / "state.db")
    server, port = start_dashboard(store, None, "127.0.0.1", 0)
    c = Coordinator(None, None, server, port, None)
    try:
        a, b = store.create_job("{}"), store.create_job("{}")
        for step in range(1, 5):
            values = {
                "loss": 1.0,
                "bytes_sent": 10,
                "bytes_received": 0,
                "bytes_shared": 100 * step,
            }
            store.add_metrics(a.id, step, "train", values)
        store.add_metrics(b.id, 1, "train", {"loss": 1.0, "bytes_sent": 7, "bytes_received": 9})
        m = scrape(c)
        assert m[SHARED] == 100 + 200 + 300 + 400  # b's row, from before the field, adds 0
        assert (m[SENT], m[RECEIVED]) == (47, 9)

        store.add_metrics(b.id, 2, "train", {"loss": 1.0, "bytes_shared": 5})
        wait_until(lambda: scrape(c)[SHARED] == 1005, what="the counter to grow")
        store.set_state(a.id, JobState.RUNNING)
        store.set_state(a.id, JobState.SUCCEEDED)
        assert store.delete_job(a.id)
        time.sleep(0.3)  # past the dashboard's refresh throttle
        m = scrape(c)
        assert m[("shardgrad_jobs", (("state", "SUCCEEDED"),))] == 0  # it saw the deletion
        assert m[SHARED] == 1005  # counters never go down
    finally:
        stop_dashboard(server)
        store.close()
