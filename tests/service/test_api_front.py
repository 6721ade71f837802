"""The API served from a process of its own (`serve --api-process`, the command's default):
reads answered there from the job database, everything else passed through to the
coordinator with its statuses, and a front that follows the coordinator's life."""

from __future__ import annotations

import os
import signal

import grpc
import numpy as np
import pytest
from _servertest import TERMINAL, api_fronts, mlp_config, pb, until

from shardgrad.client import Client
from shardgrad.protos import coordinator_pb2_grpc
from shardgrad.service.server import Coordinator, ServeOptions


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child counts as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def coordinator(tmp_path):
    c = Coordinator(
        ServeOptions(
            state_dir=tmp_path / "state", pool="inprocess", local_workers=1, api_process=True
        )
    ).start()
    try:
        yield c
    finally:
        c.stop()


def test_the_public_port_is_another_process_that_serves_the_whole_api(coordinator, tmp_path):
    front = coordinator.front.popen.pid
    assert front != os.getpid() and _alive(front)
    with open(f"/proc/{front}/cmdline", "rb") as f:
        assert b"shardgrad.service.api_front" in f.read()
    with Client(coordinator.dial_address, token=coordinator.token) as client:
        # Passed through: a submission, a scaling the next listing shows at once.
        job = client.submit_config(mlp_config(steps=4, checkpoint_interval=2))
        assert client.scale(2).count == 2
        until(lambda: len(client.workers()) == 2, 30.0, what="the second worker in the listing")
        # Answered by the front from the database while the job trains, then at its end.
        done = job.wait(progress=False, timeout=60)
        assert done.state == "SUCCEEDED"
        assert [j.id for j in client.jobs()] == [job.id]
        assert [m["step"] for m in job.metrics(as_frame=False)] == [1, 2, 3, 4]
        assert [c["step"] for c in job.checkpoints()] == [4, 2]
        assert "job_succeeded" in [e.kind for e in client.events(job_id=job.id)]
        # Streams both ways pass through: an upload in, a model out.
        x = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
        info = client.upload_dataset(x, np.zeros(40, np.int64), name="d", progress=False)
        assert info.num_samples == 40
        model_info, data = job.model_bytes()
        assert model_info.step == 4 and len(data) > 0


def test_refusals_are_the_coordinators_own(coordinator):
    channel = grpc.insecure_channel(coordinator.dial_address)
    stub = coordinator_pb2_grpc.CoordinatorStub(channel)
    md = (("authorization", f"Bearer {coordinator.token}"),)
    try:
        with pytest.raises(grpc.RpcError) as err:
            stub.ListJobs(pb.ListJobsRequest())  # no token, refused by the front itself
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            stub.StopJob(pb.StopJobRequest(job_id="nope"), metadata=md)  # passed through
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        garbage = channel.unary_unary("/shardgrad.v1.Coordinator/ListWorkers")
        with pytest.raises(grpc.RpcError) as err:
            garbage(b"\xff\xff\xff", metadata=md)  # never served from the front's cache
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            stub.GetJob(pb.GetJobRequest(job_id="bad id!"), metadata=md)  # answered locally
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "job_id" in err.value.details()
    finally:
        channel.close()


def test_a_killed_front_comes_back_on_the_same_port(coordinator):
    first = coordinator.front.popen.pid
    os.kill(first, signal.SIGKILL)
    until(lambda: coordinator.front.popen.pid != first, 30.0, what="a new API process")
    with Client(coordinator.dial_address, token=coordinator.token, timeout=30) as client:
        until(lambda: _answers(client), 30.0, what="the API on the same port")


def _answers(client) -> bool:
    try:
        client.jobs()
    except Exception:  # noqa: BLE001 - not back yet
        return False
    return True


def test_stopping_the_coordinator_stops_its_front(tmp_path):
    c = Coordinator(
        ServeOptions(
            state_dir=tmp_path / "state", pool="inprocess", local_workers=1, api_process=True
        )
    ).start()
    front, backend = c.front.popen.pid, c._backend_dir
    c.stop()
    assert not _alive(front) and not os.path.exists(backend)


def test_a_killed_coordinator_takes_its_front_with_it(procs, tmp_path):
    server = procs.coordinator(tmp_path / "state", "--local-workers", "1")
    server.wait_workers(1)
    fronts = until(lambda: api_fronts(server.process.proc.pid), 30.0, what="the API process")
    job = server.submit(mlp_config(steps=1_000, checkpoint_interval=0))
    server.wait_until(job.job_id, lambda j: j.step >= 1 or j.state in TERMINAL)
    server.process.signal(signal.SIGKILL)
    until(lambda: not any(_alive(p) for p in fronts), 30.0, what="the API process to exit")
    again = server.restart()  # the same port is free to take again
    assert again.job(job.job_id).job_id == job.job_id
