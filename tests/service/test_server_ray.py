"""`shardgrad serve --pool ray` joined to a running Ray: actors train a job through the API to
the same bytes as one in-process worker, and scaling retires actors."""

from __future__ import annotations

import pytest
from _servertest import mlp_config, pb, reference_model


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_model(tmp_path_factory.mktemp("ref"), mlp_config())


def test_ray_actors_train_to_the_same_bytes_and_scale(ray_cluster, procs, tmp_path, reference):
    server = procs.coordinator(
        tmp_path / "state", "--pool", "ray", "--ray-address", ray_cluster, "--local-workers", "2"
    )
    workers = server.wait_workers(2, timeout=90)
    assert {w.pool for w in workers} == {"ray"} and {w.device for w in workers} == {"cpu"}

    job = server.submit(mlp_config())
    server.wait_succeeded(job.job_id)
    events = server.metrics(job.job_id)
    assert {e.workers for e in events} == {2}
    assert server.model(job.job_id) == reference
    # The actors share this machine: after a job's first share on each (through the object
    # store, while the shared-memory probe's answer is on its way) gradients come back through
    # shared memory, and the same bytes result.
    received = [e.values["bytes_received"] for e in events]
    shared = [e.values["bytes_shared"] for e in events]
    assert received[0] > 0 and received[-1] == 0 and shared[-1] == received[0]

    reply = server.call("ScaleWorkers", pb.ScaleWorkersRequest(pool="ray", count=1))
    assert reply.count == 1
    server.wait_workers(1)
    job = server.submit(mlp_config())
    server.wait_succeeded(job.job_id)
    assert {e.workers for e in server.metrics(job.job_id)} == {1}
    assert server.model(job.job_id) == reference

    with pytest.raises(Exception) as e:  # gRPC workers cannot join a Ray pool
        server.call("RegisterWorker", pb.RegisterWorkerRequest(address="127.0.0.1:1"))
    assert "FAILED_PRECONDITION" in str(e.value)
