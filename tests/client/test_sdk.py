"""The Python SDK against a real coordinator (its gRPC API, in-process workers): submit,
upload, wait with a progress bar, metrics, stop, the trained model, workers, typed errors."""

from __future__ import annotations

import asyncio
import hashlib
import io

import numpy as np
import pytest
from clienttest_helpers import DATASET, mlp

from shardgrad import nn, optim
from shardgrad.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    JobFailedError,
    NotFoundError,
    UnavailableError,
    UnimplementedError,
)
from shardgrad.client.datasets import encode_npz, sha256_hex
from shardgrad.client.jobs import Job
from shardgrad.serialization import load_safetensors_bytes
from shardgrad.service.trainer import job_dir, model_path

TIMEOUT = 60


def state_dict_arrays(module) -> dict:
    return {k: np.array(v.detach().numpy()) for k, v in module.state_dict().items()}


def test_submitted_module_starts_from_its_own_weights_and_comes_back(client):
    """With lr=0 the trained model must be exactly the model that was sent."""
    model = mlp()
    job = client.submit(
        model,
        DATASET,
        loss=nn.CrossEntropyLoss(),
        optimizer=optim.SGD(model.parameters(), lr=0.0),
        batch_size=20,
        steps=3,
        seed=1,
        micro_shards=4,
    )
    status = job.wait(progress=False, timeout=TIMEOUT)
    assert status.state == "SUCCEEDED" and status.step == status.total_steps == 3
    trained = job.model()
    assert isinstance(trained, nn.Sequential)
    got, sent = state_dict_arrays(trained), state_dict_arrays(model)
    assert got.keys() == sent.keys()
    for k in sent:
        np.testing.assert_array_equal(got[k], sent[k])


def test_trained_model_is_the_coordinators_final_model(client, coordinator):
    model = mlp()
    job = client.submit(
        model,
        DATASET,
        optimizer=optim.Adam(model.parameters(), lr=0.01),
        batch_size=24,
        epochs=2,
        workers=2,
        seed=4,
        micro_shards=6,
    )
    status = job.wait(progress=False, timeout=TIMEOUT)
    assert status.state == "SUCCEEDED" and status.total_steps == 10  # 120 rows / 24, twice
    assert status.config["optimizer"] == {"name": "Adam", "kwargs": {"lr": 0.01}}
    assert status.config["max_workers"] == 2
    final = load_safetensors_bytes(model_path(coordinator.state_dir, job.id).read_bytes())
    trained = state_dict_arrays(job.model())
    for k, v in final.items():
        np.testing.assert_array_equal(trained[k], v.numpy())
    assert any(not np.array_equal(trained[k], v) for k, v in state_dict_arrays(model).items())


def test_a_users_module_class_travels_by_import_path(client):
    from clienttest_models import TinyNet

    job = client.submit(TinyNet(), DATASET, batch_size=20, steps=2, micro_shards=2)
    assert job.config["model"]["spec"]["import"] == "clienttest_models:TinyNet"
    job.wait(progress=False, timeout=TIMEOUT)
    assert isinstance(job.model(), TinyNet)


def test_wait_shows_a_progress_bar_driven_by_the_metrics_stream(client):
    job = client.submit(mlp(), DATASET, batch_size=20, steps=12, micro_shards=4, name="bar")
    out = io.StringIO()
    status = job.wait(progress=True, timeout=TIMEOUT, file=out)
    text = out.getvalue()
    assert status.state == "SUCCEEDED"
    assert "12/12" in text and "loss=" in text and "samples/s=" in text
    assert "SUCCEEDED" in text


def test_metrics_history_has_one_row_per_step_with_evaluations(client):
    job = client.submit(
        mlp(),
        DATASET,
        batch_size=20,
        steps=9,
        micro_shards=4,
        eval_fraction=0.25,
        eval_interval=3,
        eval_metrics=["loss", "accuracy"],
    )
    job.wait(progress=False, timeout=TIMEOUT)
    rows = job.metrics(as_frame=False)
    assert [r["step"] for r in rows] == list(range(1, 10))
    assert all(np.isfinite(r["loss"]) and r["samples_per_second"] > 0 for r in rows)
    evaluated = [r["step"] for r in rows if "eval_accuracy" in r]
    assert evaluated == [3, 6, 9]
    assert all(0.0 <= r["eval_accuracy"] <= 1.0 for r in rows if "eval_accuracy" in r)
    assert rows[-1]["loss"] == pytest.approx(job.status().last_loss)
    try:
        import pandas  # noqa: F401
    except ImportError:
        assert job.metrics() == rows  # without pandas: the records themselves
    else:
        assert list(job.metrics()["step"]) == list(range(1, 10))


def test_upload_is_content_addressed_and_sent_once(client, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 8)).astype(np.float32)
    y = rng.integers(0, 3, 60)
    info = client.upload_dataset(x, y, name="mine", progress=False)
    assert info.sha256 == sha256_hex(encode_npz(x, y))
    assert info.num_samples == 60 and info.name == "mine"
    assert info.arrays["x"]["shape"] == [60, 8]

    sent = []
    real = client._conn.stream_in
    monkeypatch.setattr(client._conn, "stream_in", lambda *a, **k: sent.append(a) or real(*a, **k))
    again = client.upload_dataset(x.copy(), y.copy(), progress=False)
    assert again.sha256 == info.sha256 and sent == []  # already stored: nothing sent

    job = client.submit(mlp(), (x, y), batch_size=20, steps=3, micro_shards=2)
    assert job.config["dataset"] == info.sha256 and sent == []
    assert job.wait(progress=False, timeout=TIMEOUT).state == "SUCCEEDED"


def test_upload_in_chunks_with_a_progress_bar(client, monkeypatch):
    import shardgrad.client.datasets as ds

    monkeypatch.setattr(ds, "CHUNK_BYTES", 4096)
    x = np.arange(200 * 16, dtype=np.float64).reshape(200, 16)
    y = np.arange(200) % 4
    out = io.StringIO()
    info = client.upload_npz_bytes(encode_npz(x, y), "chunked", progress=True, file=out)
    assert info.nbytes == len(encode_npz(x, y)) > 4 * 4096
    assert "upload chunked" in out.getvalue()


def test_stop_and_list_jobs(client):
    job = client.submit(mlp(), DATASET, batch_size=20, steps=100_000, micro_shards=2)
    first = next(iter(job.stream_metrics(follow=True)))  # it is training
    assert first["step"] >= 1
    assert job.id in {j.id for j in client.jobs(state="RUNNING")}
    stopped = job.stop()
    assert stopped.state == "STOPPED"
    assert job.wait(progress=False, timeout=TIMEOUT).state == "STOPPED"
    assert job.id in {j.id for j in client.jobs(["STOPPED", "FAILED"])}
    assert job.id not in {j.id for j in client.jobs("RUNNING")}
    assert len(client.jobs(limit=1)) == 1
    assert job.model() is not None  # a stopped job's parameters can be fetched


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow that fails the job
def test_a_failed_job_raises_with_the_servers_reason(client):
    job = client.submit(
        mlp(),
        DATASET,
        batch_size=20,
        steps=50,
        micro_shards=2,
        optimizer={"name": "SGD", "kwargs": {"lr": 1e30}},
    )
    with pytest.raises(JobFailedError, match="non-finite") as err:
        job.wait(progress=False, timeout=TIMEOUT)
    assert err.value.status.state == "FAILED"
    assert job.wait(progress=False, raise_on_failure=False).state == "FAILED"


def test_server_errors_become_typed_exceptions(client, coordinator):
    with pytest.raises(InvalidArgumentError, match="batch_size") as err:
        client.submit(mlp(), DATASET, batch_size=0, steps=1)
    assert isinstance(err.value, ValueError) and err.value.code == "INVALID_ARGUMENT"
    with pytest.raises(InvalidArgumentError, match="dataset"):
        client.submit(mlp(), "f" * 64, steps=1)  # a hash nobody uploaded
    with pytest.raises(NotFoundError, match="no job"):
        client.job("no-such-job")
    with pytest.raises(ValueError, match="epochs"):
        client.submit(mlp(), DATASET)  # neither epochs nor steps: refused before sending
    with Client(coordinator.dial_address, token="wrong") as bad:
        with pytest.raises(AuthenticationError):
            bad.jobs()


def test_model_of_a_job_without_parameters_yet(client):
    job = client.submit(
        mlp(), DATASET, batch_size=20, steps=10, micro_shards=2, min_workers=64, max_workers=64
    )  # waits for 64 workers that never come: no checkpoint, no model
    try:
        with pytest.raises(FailedPreconditionError, match="no trained parameters"):
            job.model()
        assert job.status().state == "PENDING"
    finally:
        job.stop()


def test_unreachable_coordinator():
    with Client("127.0.0.1:1", token="t", timeout=2) as c:
        with pytest.raises(UnavailableError) as err:
            c.jobs()
    assert isinstance(err.value, ConnectionError)


def test_workers_and_scale(client):
    workers = client.workers()
    assert len(workers) >= 2
    assert {w.pool for w in workers} == {"inprocess"}
    scaled = client.scale(3)
    assert scaled.count == 3 and len(client.workers()) == 3
    scaled = client.scale(2)
    assert scaled.count == 2
    with pytest.raises(InvalidArgumentError, match="pool"):
        client.scale(2, pool="ray")


def test_async_client_streams_metrics(coordinator):
    async def main():
        async with AsyncClient(coordinator.dial_address, token=coordinator.token) as ac:
            job = await ac.submit(mlp(), DATASET, batch_size=20, steps=6, micro_shards=2)
            steps = [rec["step"] async for rec in job.stream_metrics() if rec["kind"] == "train"]
            status = await job.wait()
            listed = await job.checkpoints()
            freed = await ac.delete_job(job.id)
            return steps, status, listed, freed, await ac.jobs()

    steps, status, listed, freed, left = asyncio.run(main())
    assert steps == [1, 2, 3, 4, 5, 6]
    assert status.state == "SUCCEEDED"
    assert listed and listed[0]["step"] == 6
    assert freed >= sum(c["bytes"] for c in listed)
    assert status.job_id not in {j.id for j in left}


def test_download_writes_safetensors_and_the_model_description(client, tmp_path):
    import json

    from safetensors.numpy import load_file

    job = client.submit(mlp(), DATASET, batch_size=20, steps=2, micro_shards=2)
    job.wait(progress=False, timeout=TIMEOUT)
    info = job.download(tmp_path / "out" / "model.safetensors")
    arrays = load_file(tmp_path / "out" / "model.safetensors")
    trained = state_dict_arrays(job.model())
    assert arrays.keys() == trained.keys()
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], trained[k])
    meta = json.loads((tmp_path / "out" / "model.safetensors.json").read_text())
    assert meta["model"] == info.model and meta["step"] == 2
    rebuilt = nn.from_spec(meta["model"]["spec"])
    assert isinstance(rebuilt, nn.Sequential)


def test_checkpoints_of_a_job(client, coordinator):
    from shardgrad.service.checkpoint import CheckpointManager

    job = client.submit(
        mlp(),
        DATASET,
        batch_size=20,
        steps=6,
        micro_shards=2,
        checkpoint_interval=2,
        keep_checkpoints=2,
    )
    job.wait(progress=False, timeout=TIMEOUT)
    listed = job.checkpoints()
    folder = job_dir(coordinator.state_dir, job.id) / "checkpoints"
    on_disk = CheckpointManager(folder).steps()
    assert [c["step"] for c in listed] == sorted(on_disk, reverse=True) == [6, 4]
    assert all(c["bytes"] > 0 and c["time"] > 0 for c in listed)
    for c in listed:
        assert c["sha256"] == hashlib.sha256((folder / c["file"]).read_bytes()).hexdigest()
    # Listed over gRPC: no dashboard needed.
    with Client(coordinator.dial_address, token=coordinator.token) as no_dashboard:
        assert no_dashboard.job(job.id).checkpoints() == listed
    with pytest.raises(NotFoundError):
        client.job("0123456789abcdef").checkpoints()


def test_checkpoints_fall_back_to_the_dashboard_on_an_older_coordinator(
    client, coordinator, monkeypatch
):
    """A coordinator without ListCheckpoints answers UNIMPLEMENTED; the dashboard's JSON API
    gives the same list (without hashes)."""
    job = client.submit(
        mlp(), DATASET, batch_size=20, steps=4, micro_shards=2, checkpoint_interval=2
    )
    job.wait(progress=False, timeout=TIMEOUT)
    expected = [{k: c[k] for k in ("step", "file", "bytes")} for c in job.checkpoints()]
    real_call = client._conn.call

    def old_server(method, *args, **kwargs):
        if method == "ListCheckpoints":
            raise UnimplementedError("Method not found!")
        return real_call(method, *args, **kwargs)

    monkeypatch.setattr(client._conn, "call", old_server)
    fallback = job.checkpoints()
    assert [{k: c[k] for k in ("step", "file", "bytes")} for c in fallback] == expected
    assert "sha256" not in fallback[0]
    with Client(coordinator.dial_address, token=coordinator.token) as no_dashboard:
        monkeypatch.setattr(no_dashboard._conn, "call", old_server)
        with pytest.raises(UnavailableError, match="dashboard"):
            Job(no_dashboard._conn, job.id).checkpoints()


def test_metrics_come_in_batches_and_one_by_one_from_an_older_coordinator(client, monkeypatch):
    """The SDK asks for StreamMetricsBatches; a coordinator without it answers UNIMPLEMENTED
    (here a real call to a method the server does not have), and the SDK then streams the
    same records one by one."""
    from shardgrad.client.connection import _Stream

    job = client.submit(mlp(), DATASET, batch_size=20, steps=6, micro_shards=2)
    job.wait(progress=False, timeout=TIMEOUT)
    asked = []
    real_stream = client._conn.stream

    def recording(method, *args, **kwargs):
        asked.append(method)
        return real_stream(method, *args, **kwargs)

    monkeypatch.setattr(client._conn, "stream", recording)
    batched = list(job.stream_metrics(follow=False))
    assert asked == ["StreamMetricsBatches"] and [r["step"] for r in batched][:6] == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]

    def old_server(method, request, timeout=None):
        asked.append(method)
        if method == "StreamMetricsBatches":
            missing = client._conn.channel.unary_stream(
                "/shardgrad.v1.Coordinator/NoSuchMethod",
                request_serializer=type(request).SerializeToString,
                response_deserializer=lambda b: b,
            )
            return _Stream(missing(request, timeout=timeout, metadata=client._conn.metadata))
        return real_stream(method, request, timeout=timeout)

    asked.clear()
    monkeypatch.setattr(client._conn, "stream", old_server)
    assert list(job.stream_metrics(follow=False)) == batched
    assert asked == ["StreamMetricsBatches", "StreamMetrics"]


def test_delete_a_job(client, coordinator):
    job = client.submit(mlp(), DATASET, batch_size=20, steps=100_000, micro_shards=2)
    next(iter(job.stream_metrics()))
    with pytest.raises(FailedPreconditionError, match="stop it first"):
        job.delete()
    assert job.stop().state == "STOPPED"
    assert job_dir(coordinator.state_dir, job.id).exists()
    assert client.delete_job(job.id) > 0
    assert not job_dir(coordinator.state_dir, job.id).exists()
    assert job not in client.jobs()
    with pytest.raises(NotFoundError):
        client.job(job.id)
    with pytest.raises(NotFoundError):
        job.delete()
    with pytest.raises(InvalidArgumentError, match="job_id"):
        client.delete_job("no such id")


def test_wait_survives_a_coordinator_restart(tmp_path):
    """The bar's stream breaks when the coordinator stops; wait() reconnects to the next one
    (same state directory and port), which resumes the job from its checkpoint."""
    import threading

    from clienttest_helpers import start_coordinator
    from clienttest_models import SlowNet

    from shardgrad.service.server import Coordinator, ServeOptions

    first = start_coordinator(tmp_path / "state")
    port = first.port
    second = None
    try:
        with Client(first.dial_address, token=first.token) as c:
            job = c.submit(
                SlowNet(delay=0.01),
                DATASET,
                batch_size=20,
                steps=60,
                micro_shards=2,
                checkpoint_interval=5,
            )
            result: dict = {}
            waiter = threading.Thread(
                target=lambda: result.update(status=job.wait(progress=False, timeout=TIMEOUT))
            )
            waiter.start()
            next(iter(job.stream_metrics(from_step=10)))  # well under way
            first.stop(timeout=30)
            second = Coordinator(
                ServeOptions(
                    state_dir=tmp_path / "state",
                    port=port,
                    pool="inprocess",
                    local_workers=2,
                    allow_import=("clienttest_models",),
                )
            ).start()
            waiter.join(TIMEOUT)
            assert not waiter.is_alive()
            assert result["status"].state == "SUCCEEDED" and result["status"].step == 60
            assert [r["step"] for r in job.metrics(as_frame=False)] == list(range(1, 61))
    finally:
        first.stop(timeout=10)
        if second is not None:
            second.stop(timeout=10)
