"""`shardgrad serve` with two local gRPC worker processes: training through the API, datasets,
limits, authentication and request validation."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import threading

import grpc
import numpy as np
import pytest
from _servertest import TERMINAL, mlp_config, pb, reference_model, slow_config
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shardgrad.protos import common_pb2
from shardgrad.serialization import load_safetensors_bytes

MAX_JOBS = 4
MAX_UPLOAD = 200_000


@pytest.fixture(scope="module")
def server(module_procs, tmp_path_factory):
    state = tmp_path_factory.mktemp("state")
    c = module_procs.coordinator(
        state,
        "--local-workers",
        "2",
        "--max-jobs",
        str(MAX_JOBS),
        "--max-upload-bytes",
        str(MAX_UPLOAD),
    )
    c.wait_workers(2)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_model(tmp_path_factory.mktemp("ref"), mlp_config())


def test_two_worker_processes_train_a_job_to_succeeded(server, reference):
    job = server.submit(mlp_config(name="first"))
    assert job.state == pb.JOB_STATE_PENDING and job.name == "first"
    done = server.wait_succeeded(job.job_id)
    assert (done.step, done.total_steps) == (12, 12)
    assert done.started_at >= done.created_at > 0 and done.finished_at >= done.started_at
    assert json.loads(done.config_json)["micro_shards"] == 6

    events = server.metrics(job.job_id)
    assert [e.step for e in events] == list(range(1, 13))
    assert {e.workers for e in events} == {2}  # both processes computed every step
    assert [e.values["samples"] for e in events[:5]] == [20, 20, 20, 20, 10]
    assert done.last_loss == pytest.approx(events[-1].loss)
    assert events[-1].loss < events[0].loss

    model = server.model(job.job_id)
    assert model == reference  # the same bytes as one in-process worker
    state = load_safetensors_bytes(model)
    assert sorted(state) == ["0.bias", "0.weight", "2.bias", "2.weight"]

    workers = server.workers()
    assert len(workers) == 2
    assert {w.pool for w in workers} == {"grpc"} and all(w.address for w in workers)


def test_concurrent_jobs_each_match_their_reference(server, reference, tmp_path):
    configs = [mlp_config(seed=11), mlp_config(seed=5, steps=8), mlp_config(seed=11)]
    jobs = [server.submit(c) for c in configs]
    for job in jobs:
        server.wait_succeeded(job.job_id)
    models = [server.model(j.job_id) for j in jobs]
    assert models[0] == models[2] == reference
    assert models[1] == reference_model(tmp_path, configs[1])


def test_a_job_over_the_limit_is_refused_and_nothing_is_stored(server):
    long = mlp_config(steps=1_000_000, checkpoint_interval=0)
    jobs = []
    try:
        before = {j.job_id for j in server.call("ListJobs", pb.ListJobsRequest()).jobs}
        active = [
            j for j in server.call("ListJobs", pb.ListJobsRequest()).jobs if j.state not in TERMINAL
        ]
        for _ in range(MAX_JOBS - len(active)):
            jobs.append(server.submit(long).job_id)
        with pytest.raises(grpc.RpcError) as e:
            server.submit(long)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max-jobs" in e.value.details()
        after = {j.job_id for j in server.call("ListJobs", pb.ListJobsRequest()).jobs}
        assert after == before | set(jobs)
    finally:
        for job_id in jobs:
            server.call("StopJob", pb.StopJobRequest(job_id=job_id), timeout=60)
    for job_id in jobs:
        assert server.wait_done(job_id).state == pb.JOB_STATE_STOPPED


def _npz(x, y) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    return buf.getvalue()


def test_upload_list_fetch_and_train_on_a_dataset(server):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8)).astype(np.float32)
    y = rng.integers(0, 3, 64).astype(np.int64)
    data = _npz(x, y)
    info = server.upload(data, name="mine", chunk=1000)
    assert (info.name, info.nbytes, info.num_samples) == ("mine", len(data), 64)
    assert [list(a.shape) for a in info.arrays] == [[64, 8], [64]]
    assert info.sha256 in {
        d.sha256 for d in server.call("ListDatasets", pb.ListDatasetsRequest()).datasets
    }

    parts = list(
        server.stub.FetchDataset(
            pb.FetchDatasetRequest(sha256=info.sha256, offset=100),
            metadata=server.metadata,
            timeout=30,
        )
    )
    assert parts[0].info.nbytes == len(data)
    assert b"".join(p.chunk.data for p in parts[1:]) == data[100:]

    job = server.submit(mlp_config(dataset=info.sha256, steps=4))
    server.wait_succeeded(job.job_id)


def test_an_upload_over_the_limit_is_refused(server):
    before = server.call("ListDatasets", pb.ListDatasetsRequest()).datasets
    big = _npz(np.zeros((MAX_UPLOAD // 8 + 10, 8), np.float32), np.zeros(MAX_UPLOAD // 8 + 10))
    assert len(big) > MAX_UPLOAD
    with pytest.raises(grpc.RpcError) as e:
        server.upload(big)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert e.value.details().startswith("header.nbytes:")
    assert server.call("ListDatasets", pb.ListDatasetsRequest()).datasets == before


def test_the_token_file_is_private(server):
    mode = stat.S_IMODE((server.state_dir / "token").stat().st_mode)
    assert mode == 0o600
    assert len(server.token) >= 32


# ---------------------------------------------------------------------- authentication
def _every_method():
    from shardgrad.protos import coordinator_pb2

    service = coordinator_pb2.DESCRIPTOR.services_by_name["Coordinator"]
    return [(m.name, m.client_streaming, m.server_streaming) for m in service.methods]


@pytest.mark.parametrize(
    "metadata", [(), (("authorization", "Bearer wrong"),)], ids=["none", "wrong"]
)
def test_every_call_without_the_token_is_unauthenticated(server, metadata):
    channel = grpc.insecure_channel(server.address)
    try:
        for name, client_streaming, server_streaming in _every_method():
            path = f"/shardgrad.v1.Coordinator/{name}"
            call = {
                (False, False): channel.unary_unary,
                (False, True): channel.unary_stream,
                (True, False): channel.stream_unary,
                (True, True): channel.stream_stream,
            }[(client_streaming, server_streaming)](path)
            request = iter([b""]) if client_streaming else b""
            with pytest.raises(grpc.RpcError) as e:
                reply = call(request, metadata=metadata, timeout=10)
                if server_streaming:
                    list(reply)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(), timeout=10)  # no token needed
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reply = health.Check(
            health_pb2.HealthCheckRequest(service="shardgrad.v1.Coordinator"), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        channel.close()


# ---------------------------------------------------------------------- validation
def _state(server):
    jobs = server.call("ListJobs", pb.ListJobsRequest()).jobs
    return (
        sorted((j.job_id, j.state) for j in jobs),
        sorted(d.sha256 for d in server.call("ListDatasets", pb.ListDatasetsRequest()).datasets),
        sorted(w.worker_id for w in server.workers()),
    )


def _submit(**changes):
    return "SubmitJob", pb.SubmitJobRequest(config_json=json.dumps(mlp_config(**changes)))


BAD_UNARY = [
    ("config_json", ("SubmitJob", pb.SubmitJobRequest())),
    ("config", ("SubmitJob", pb.SubmitJobRequest(config_json="{not json"))),
    ("batch_size", _submit(batch_size=0)),
    ("batch_size", _submit(batch_size="20")),
    ("colour", _submit(colour="red")),
    ("optimizer.name", _submit(optimizer={"name": "Lion"})),
    ("micro_shards", _submit(micro_shards=50)),
    ("steps", _submit(steps=None)),
    ("dataset", _submit(dataset="sha256:" + "0" * 64)),
    ("dataset", _submit(dataset="nope")),
    (
        "model.spec",
        _submit(
            model={"spec": {"type": "Linear", "kwargs": {"in_features": 5, "out_features": 3}}}
        ),
    ),
    (
        "loss.kwargs.reduction",
        _submit(loss={"name": "CrossEntropyLoss", "kwargs": {"reduction": "mean"}}),
    ),
    ("model.import_path", _submit(model={"import_path": "os:system"})),
    (
        "initial_weights",
        (
            "SubmitJob",
            pb.SubmitJobRequest(config_json=json.dumps(mlp_config()), initial_weights=b"garbage!!"),
        ),
    ),
    ("job_id", ("GetJob", pb.GetJobRequest())),
    ("job_id", ("GetJob", pb.GetJobRequest(job_id="../etc/passwd"))),
    ("job_id", ("StopJob", pb.StopJobRequest(job_id="a b"))),
    ("states[0]", ("ListJobs", pb.ListJobsRequest(states=[42]))),
    ("pool", ("ScaleWorkers", pb.ScaleWorkersRequest(pool="ray", count=1))),
    ("count", ("ScaleWorkers", pb.ScaleWorkersRequest(count=100_000))),
    ("address", ("RegisterWorker", pb.RegisterWorkerRequest(address="no-port"))),
    ("address", ("RegisterWorker", pb.RegisterWorkerRequest(address="host:99999"))),
    (
        "worker_id",
        ("RegisterWorker", pb.RegisterWorkerRequest(address="127.0.0.1:1", worker_id="x/y")),
    ),
    ("worker_id", ("Heartbeat", pb.HeartbeatRequest())),
    ("state", ("Heartbeat", pb.HeartbeatRequest(worker_id="w", state=9))),
    ("worker_id", ("DeregisterWorker", pb.DeregisterWorkerRequest(worker_id=""))),
    ("job_id", ("DeleteJob", pb.DeleteJobRequest())),
    ("job_id", ("DeleteJob", pb.DeleteJobRequest(job_id="../jobs"))),
    ("job_id", ("ListCheckpoints", pb.ListCheckpointsRequest())),
    ("job_id", ("ListCheckpoints", pb.ListCheckpointsRequest(job_id="a/b"))),
]


def test_bad_requests_are_invalid_argument_naming_the_field_and_change_nothing(server):
    before = _state(server)
    for field, (method, request) in BAD_UNARY:
        with pytest.raises(grpc.RpcError) as e:
            server.call(method, request)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (
            method,
            field,
            e.value.details(),
        )
        assert e.value.details().startswith(f"{field}:"), (field, e.value.details())

    for field, request in [
        ("sha256", pb.FetchDatasetRequest(sha256="abc")),
        ("offset", pb.FetchDatasetRequest(sha256="0" * 64, offset=-1)),
    ]:
        with pytest.raises(grpc.RpcError) as e:
            list(server.stub.FetchDataset(request, metadata=server.metadata, timeout=10))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details().startswith(f"{field}:")

    data = _npz(np.zeros((4, 2), np.float32), np.zeros(4, np.int64))
    header = pb.UploadDatasetRequest(header=pb.UploadDatasetHeader(nbytes=len(data)))

    def chunk(offset, payload):
        return pb.UploadDatasetRequest(chunk=common_pb2.Chunk(offset=offset, data=payload))

    uploads = [
        ("header", [chunk(0, data)]),
        ("header.nbytes", [pb.UploadDatasetRequest(header=pb.UploadDatasetHeader(nbytes=0))]),
        ("chunk.offset", [header, chunk(5, data)]),
        ("chunk.data", [header, chunk(0, data + b"x")]),
        ("chunk", [header, chunk(0, data[:10])]),
        ("header", [header, header]),
        (
            "header.sha256",
            [
                pb.UploadDatasetRequest(
                    header=pb.UploadDatasetHeader(nbytes=len(data), sha256="f" * 64)
                ),
                chunk(0, data),
            ],
        ),
        (
            "data",
            [
                pb.UploadDatasetRequest(header=pb.UploadDatasetHeader(nbytes=7)),
                chunk(0, b"not npz"),
            ],
        ),
        (
            "data",
            [
                pb.UploadDatasetRequest(
                    header=pb.UploadDatasetHeader(nbytes=len(_npz([1.0], [1.0, 2.0])))
                ),
                chunk(0, _npz([1.0], [1.0, 2.0])),
            ],
        ),
    ]
    for field, messages in uploads:
        with pytest.raises(grpc.RpcError) as e:
            server.stub.UploadDataset(iter(messages), metadata=server.metadata, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, e.value.details())
        assert e.value.details().startswith(f"{field}:"), (field, e.value.details())

    raw = server.channel.unary_unary("/shardgrad.v1.Coordinator/SubmitJob")
    with pytest.raises(grpc.RpcError) as e:
        raw(b"\xff\xff\xff", metadata=server.metadata, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    for method, request in [
        ("GetJob", pb.GetJobRequest(job_id="0123456789abcdef")),
        ("StopJob", pb.StopJobRequest(job_id="0123456789abcdef")),
        ("DeleteJob", pb.DeleteJobRequest(job_id="0123456789abcdef")),
        ("ListCheckpoints", pb.ListCheckpointsRequest(job_id="0123456789abcdef")),
    ]:
        with pytest.raises(grpc.RpcError) as e:
            server.call(method, request)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert _state(server) == before


def test_metrics_follow_streams_until_the_job_ends(server):
    job = server.submit(
        mlp_config(steps=6, eval_fraction=0.2, eval_interval=3, eval_metrics=["loss", "accuracy"])
    )
    seen = []

    def follow():
        stream = server.stub.StreamMetrics(
            pb.StreamMetricsRequest(job_id=job.job_id, follow=True),
            metadata=server.metadata,
            timeout=60,
        )
        seen.extend(stream)

    t = threading.Thread(target=follow)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive()
    train = [e.step for e in seen if "eval_loss" not in e.values]
    evals = [e for e in seen if "eval_loss" in e.values]
    assert train == list(range(1, 7))
    assert [e.step for e in evals] == [3, 6]
    assert 0.0 <= evals[-1].values["eval_accuracy"] <= 1.0
    # the stream ended because the job did (its last event may carry the state read with it,
    # RUNNING: the loop writes its last metrics before its final state)
    done = server.stub.GetJob(
        pb.GetJobRequest(job_id=job.job_id), metadata=server.metadata, timeout=10
    )
    assert done.state == pb.JOB_STATE_SUCCEEDED


# ---------------------------------------------------------------------- checkpoints, deletion
def _code(server, method, request):
    with pytest.raises(grpc.RpcError) as e:
        server.call(method, request)
    return e.value.code(), e.value.details()


def test_checkpoints_are_listed_newest_first_with_their_hashes(server):
    job = server.submit(mlp_config(steps=8, checkpoint_interval=2, keep_checkpoints=3))
    server.wait_succeeded(job.job_id)
    listed = server.call(
        "ListCheckpoints", pb.ListCheckpointsRequest(job_id=job.job_id)
    ).checkpoints
    assert [c.step for c in listed] == [8, 6, 4]  # the newest 3 are kept
    folder = server.state_dir / "jobs" / job.job_id / "checkpoints"
    for c in listed:
        data = (folder / c.name).read_bytes()
        assert c.bytes == len(data) > 0
        assert c.sha256 == hashlib.sha256(data).hexdigest()
        assert c.created_unix >= job.created_at


def test_delete_refuses_an_active_job_and_removes_an_ended_one(server):
    running = server.submit(slow_config(delay=0.05, steps=400))
    server.wait_until(running.job_id, lambda j: j.step >= 1)
    code, details = _code(server, "DeleteJob", pb.DeleteJobRequest(job_id=running.job_id))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "stop it first" in details
    assert server.job(running.job_id).state in (pb.JOB_STATE_PENDING, pb.JOB_STATE_RUNNING)

    server.call("StopJob", pb.StopJobRequest(job_id=running.job_id), timeout=60)
    stopped = server.wait_done(running.job_id)
    assert stopped.state == pb.JOB_STATE_STOPPED
    folder = server.state_dir / "jobs" / running.job_id
    assert any((folder / "checkpoints").iterdir())  # stopping checkpoints
    reply = server.call("DeleteJob", pb.DeleteJobRequest(job_id=running.job_id))
    assert reply.job_id == running.job_id and reply.freed_bytes > 0
    assert not folder.exists()

    done = server.submit(mlp_config(steps=4))
    server.wait_succeeded(done.job_id)
    assert server.model(done.job_id)  # the trained model is there to delete
    server.call("DeleteJob", pb.DeleteJobRequest(job_id=done.job_id))
    assert not (server.state_dir / "jobs" / done.job_id).exists()
    listed = {j.job_id for j in server.call("ListJobs", pb.ListJobsRequest()).jobs}
    assert not listed & {running.job_id, done.job_id}
    for method, request in [
        ("GetJob", pb.GetJobRequest(job_id=done.job_id)),
        ("DeleteJob", pb.DeleteJobRequest(job_id=done.job_id)),
        ("ListCheckpoints", pb.ListCheckpointsRequest(job_id=done.job_id)),
    ]:
        assert _code(server, method, request)[0] == grpc.StatusCode.NOT_FOUND, method
    with pytest.raises(grpc.RpcError) as e:
        server.metrics(done.job_id)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
