"""The gRPC worker in-process on loopback, with a fake coordinator: protocol details."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from workertest_helpers import TOKEN, cut, make_job

import shardgrad as sg
from shardgrad import nn
from shardgrad.protos import worker_pb2
from shardgrad.worker import reduction, wire
from shardgrad.worker.client import COMPUTE_METHOD, ParamPayload, WorkerClient
from shardgrad.worker.compute import GradientComputer


def _local(spec, data, flat, step, shards):
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step)
    return computer.compute(step, shards)


def _code(excinfo) -> grpc.StatusCode:
    return excinfo.value.code()


def test_registers_heartbeats_and_reregisters(worker, fake_coordinator):
    assert fake_coordinator.wait_for(lambda: len(fake_coordinator.heartbeats) >= 2)
    reg = fake_coordinator.registered[0]
    assert reg.address == worker.address and reg.device == "cpu" and reg.compute_threads == 1
    fake_coordinator.forget = True  # as after a coordinator restart
    assert fake_coordinator.wait_for(lambda: len(fake_coordinator.registered) >= 2)
    assert fake_coordinator.registered[1].worker_id == "w1"  # it keeps its id


def test_health_is_served_without_a_token(worker):
    with grpc.insecure_channel(worker.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "shardgrad.v1.Worker"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_calls_without_the_token_are_refused(worker, job):
    with WorkerClient(worker.address, token="wrong", timeout=5) as bad:
        with pytest.raises(grpc.RpcError) as e:
            bad.load_job(job[0])
        assert _code(e) == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as e:
            bad.compute(job[0], 0, cut(8, 8), job[2])
        assert _code(e) == grpc.StatusCode.UNAUTHENTICATED


def test_round_trip_equals_local_compute_bit_for_bit(
    worker, client, job, fake_coordinator, tmp_path
):
    spec, data, flat = job
    reply = client.load_job(spec)
    assert reply.layout_fingerprint == spec.layout.fingerprint and reply.num_samples == 64
    assert fake_coordinator.fetches == [spec.dataset_sha256]
    assert (tmp_path / "cache" / f"{spec.dataset_sha256}.npz").is_file()
    assert client.load_job(spec).job_id == spec.job_id  # loading again is a no-op
    assert fake_coordinator.fetches == [spec.dataset_sha256]

    shards = cut(48, 8)
    expected = _local(spec, data, flat, 2, shards)
    payload = ParamPayload.encode(flat, step=2)
    result = client.compute(spec, 2, shards, payload)
    assert result.blocks == [(3, 0)]
    assert result.grads.tobytes() == expected.grads.tobytes()
    assert [s.loss for s in result.stats] == [s.loss for s in expected.stats]
    assert [s.num_samples for s in result.stats] == [6] * 8
    assert result.blocks_finite  # checked by the worker, and said so on the wire

    # The same step split over two requests (as over two workers), reusing the parameters.
    a = client.compute(spec, 2, [shards[i] for i in (0, 1, 2, 6)], None)
    b = client.compute(spec, 2, [shards[i] for i in (3, 4, 5, 7)], None)
    blocks = {**a.block_arrays(), **b.block_arrays()}
    total = reduction.tree_sum(blocks, 8, lambda x, y: x + y)
    assert total.tobytes() == expected.grads[0].tobytes()
    assert client.release_job(spec.job_id) is True
    assert client.release_job(spec.job_id) is False


def test_compressed_gradients_cross_the_wire(client, job):
    spec, data, flat = job
    spec = spec.__class__(**{**spec.__dict__, "compression": "bf16", "job_id": "bf16-job"})
    client.load_job(spec)
    result = client.compute(spec, 0, cut(64, 8), flat)
    assert result.compression == "bf16" and result.grads.dtype == np.uint16
    expected = _local(spec, data, flat, 0, cut(64, 8))
    assert result.grads.tobytes() == expected.grads.tobytes()


def _abort_code(call):
    with pytest.raises(grpc.RpcError) as e:
        call()
    return _code(e), e.value.details()


def test_stale_and_mismatched_requests_get_invalid_argument(client, job):
    spec, data, flat = job
    client.load_job(spec)
    client.compute(spec, 5, cut(8, 8), flat)

    code, details = _abort_code(lambda: client.compute(spec, 4, cut(8, 8), flat))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "stale request: step 4" in details

    other = spec.__class__(**{**spec.__dict__, "layout": make_job(nn.Linear(4, 3))[0].layout})
    code, details = _abort_code(lambda: client.compute(other, 6, cut(8, 8), None))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "layout" in details

    code, details = _abort_code(lambda: client.compute(spec, 6, cut(8, 8), None))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "no parameters held for step 6" in details

    code, details = _abort_code(lambda: client.compute(spec, 6, [(0, np.array([64]))], flat))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "[0, 64)" in details

    code, details = _abort_code(lambda: client.compute(spec, 6, [(8, np.array([1]))], flat))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "outside [0, 8)" in details

    code, details = _abort_code(lambda: client.compute(spec, 6, cut(8, 8), np.zeros(3, np.float32)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "params_nbytes" in details

    gone = spec.__class__(**{**spec.__dict__, "job_id": "never-loaded"})
    code, details = _abort_code(lambda: client.compute(gone, 6, cut(8, 8), flat))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "LoadJob first" in details

    changed = spec.__class__(**{**spec.__dict__, "seed": 99})
    code, details = _abort_code(lambda: client.load_job(changed))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "another configuration" in details

    # None of this disturbed the job: the next step still computes the right numbers.
    result = client.compute(spec, 6, cut(16, 8), flat)
    assert result.grads.tobytes() == _local(spec, data, flat, 6, cut(16, 8)).grads.tobytes()


def test_garbage_messages_get_invalid_argument(worker, client, job):
    spec, _, flat = job
    client.load_job(spec)
    md = (("authorization", f"Bearer {TOKEN}"),)
    with grpc.insecure_channel(worker.address) as channel:
        raw = channel.stream_stream(
            COMPUTE_METHOD, request_serializer=None, response_deserializer=None
        )
        load = channel.unary_unary(
            "/shardgrad.v1.Worker/LoadJob", request_serializer=None, response_deserializer=None
        )

        def run(messages):
            return list(raw(iter(messages), timeout=10, metadata=md))

        header = worker_pb2.ComputeRequest(
            header=worker_pb2.ComputeHeader(
                job_id=spec.job_id,
                step=1,
                layout_fingerprint=spec.layout.fingerprint,
                params_nbytes=spec.layout.nbytes,
                shards=[
                    worker_pb2.MicroShard(
                        index=0, sample_indices=wire.tensor_to_proto(np.arange(3))
                    )
                ],
            )
        ).SerializeToString()
        chunk = wire.encode_chunk(2, 0, memoryview(flat.tobytes()))
        cases = [
            ([b"\xff\xff\xff\xff"], "truncated"),
            ([chunk], "first ComputeRequest must be the header"),
            ([], "empty request stream"),
            ([header, header], "second header"),
            ([header, wire.encode_chunk(2, 8, memoryview(b"abcd"))], "expected byte 0"),
            ([header, wire.encode_chunk(2, 0, memoryview(flat.tobytes()[:-4]))], "ended after"),
            ([header, chunk + chunk], "exactly one header or chunk"),
        ]
        for messages, expected in cases:
            code, details = _abort_code(lambda m=messages: run(m))
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (expected, code, details)
            assert expected in details
        code, details = _abort_code(lambda: load(b"\x0a\xff\xff", timeout=10, metadata=md))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "LoadJobRequest" in details
        bad_json = worker_pb2.LoadJobRequest(job_id="x", model_json="{", loss_json="{}")
        code, details = _abort_code(
            lambda: load(bad_json.SerializeToString(), timeout=10, metadata=md)
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "layout is missing" in details
        # And the worker still serves a good request afterwards.
        replies = run([header, chunk])
        assert len(replies) == 2  # the result header, then the gradients in one chunk
        got = worker_pb2.ComputeResponse.FromString(replies[1]).grads
        assert got.offset == 0 and len(got.data) == spec.layout.nbytes


def test_unknown_dataset_and_bad_spec_are_reported(client, job):
    spec, _, _ = job
    missing = spec.__class__(**{**spec.__dict__, "job_id": "j2", "dataset_sha256": "0" * 64})
    code, details = _abort_code(lambda: client.load_job(missing))
    assert code == grpc.StatusCode.UNAVAILABLE and "NOT_FOUND" in details
    bad = spec.__class__(**{**spec.__dict__, "job_id": "j3", "model": {"spec": {"type": "Nope"}}})
    code, details = _abort_code(lambda: client.load_job(bad))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "unknown layer type" in details
    evil = spec.__class__(**{**spec.__dict__, "job_id": "j4", "dataset_sha256": "../../etc/passwd"})
    code, details = _abort_code(lambda: client.load_job(evil))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "sha256" in details


def _slow_job(fake_coordinator, delay=0.3, k=8):
    from workertest_models import SlowMLP

    model = SlowMLP(delay=delay)
    spec, data, flat = make_job(
        model,
        k=k,
        job_id="slow",
        model_source={"import_path": "workertest_models:SlowMLP", "kwargs": {"delay": delay}},
    )
    sha = fake_coordinator.add_dataset(data)
    return spec.__class__(**{**spec.__dict__, "dataset_sha256": sha}), data, flat


def test_deadline_and_cancellation_stop_the_work_between_micro_shards(client, fake_coordinator):
    spec, _, flat = _slow_job(fake_coordinator)
    client.load_job(spec)
    start = time.monotonic()
    code, _ = _abort_code(lambda: client.compute(spec, 0, cut(16, 8), flat, timeout=0.5))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    # The worker gave up after the micro-shard in progress (0.3 s), not after all 8 (2.4 s):
    # the next request gets the job's lock at once.
    result = client.compute(spec, 1, cut(2, 8)[:1], flat, timeout=5)
    assert result.stats[0].num_samples == 1
    assert time.monotonic() - start < 2.0


def test_100mb_parameters_cross_grpc(client, fake_coordinator):
    sg.manual_seed(0)
    model = nn.Linear(5000, 5000)
    spec, data, flat = make_job(model, n=4, features=5000, classes=5000, k=2, job_id="big")
    assert flat.nbytes >= 100_000_000
    sha = fake_coordinator.add_dataset(data)
    spec = spec.__class__(**{**spec.__dict__, "dataset_sha256": sha})
    client.load_job(spec, timeout=60)
    result = client.compute(spec, 0, [(0, np.array([0])), (1, np.array([1]))], flat, timeout=60)
    expected = _local(spec, data, flat, 0, [(0, np.array([0])), (1, np.array([1]))])
    assert result.grads.shape == (1, 25_005_000)
    assert np.array_equal(result.grads, expected.grads)


@pytest.mark.cuda
@pytest.mark.skipif(not sg.backend.cuda_is_available(), reason="needs a CUDA GPU and cupy")
def test_cuda_worker_round_trip(cuda_worker, job):
    spec, data, flat = job
    with WorkerClient(cuda_worker.address, token=TOKEN, timeout=60) as c:
        assert c.load_job(spec).device.startswith("cuda")
        result = c.compute(spec, 0, cut(64, 8), flat)
    expected = _local(spec, data, flat, 0, cut(64, 8))
    np.testing.assert_allclose(result.grads, expected.grads, rtol=1e-4, atol=1e-5)


def test_a_worker_on_this_machine_computes_through_shared_memory(client, job):
    """The probe is answered at load; ComputeShared then reads the parameters from and writes
    the gradients into the coordinator's segments, equal bit for bit to the streamed call,
    and malformed shared requests are refused without harming the job."""
    from shardgrad.service.pools.base import StepPayload
    from shardgrad.service.pools.shared import SharedSteps

    spec, data, flat = job
    steps = SharedSteps()
    try:
        assert client.load_job(spec, shm_probe=steps.probe_name).shared_memory is True
        assert client.load_job(spec, shm_probe="").shared_memory is False
        assert client.load_job(spec, shm_probe=steps.probe_name[:-1] + "x").shared_memory is False
        shards = [cut(48, 8)[i] for i in (2, 3, 4)]
        params = steps.params(spec.job_id, StepPayload(spec.job_id, 3, flat, []))
        grads = steps.grads(spec.job_id, "w", 3, 2 * spec.layout.nbytes)
        shared = worker_pb2.SharedBuffers(
            params=params[0], params_nbytes=params[1], grads=grads[0], grads_capacity=grads[1]
        )
        result = client.compute(spec, 3, shards, None, shared=shared)
        assert result.grads is None and result.blocks == [(1, 1), (0, 4)]
        seen = steps.grads_view(spec.job_id, "w", np.float32, (2, spec.layout.numel))
        assert seen.tobytes() == _local(spec, data, flat, 3, shards).grads.tobytes()

        small = worker_pb2.SharedBuffers()
        small.CopyFrom(shared)
        small.grads_capacity = spec.layout.nbytes
        code, details = _abort_code(lambda: client.compute(spec, 4, shards, None, shared=small))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "grads_capacity" in details
        gone = worker_pb2.SharedBuffers()
        gone.CopyFrom(shared)
        gone.params = steps.probe_name[:-1] + ("0" if steps.probe_name[-1] != "0" else "1")
        code, details = _abort_code(lambda: client.compute(spec, 4, shards, None, shared=gone))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "cannot open" in details
        # Shared buffers on the streaming call are refused too.
        raw = client._compute(
            iter(
                [
                    worker_pb2.ComputeRequest(
                        header=worker_pb2.ComputeHeader(job_id=spec.job_id, step=4, shared=shared)
                    ).SerializeToString()
                ]
            ),
            timeout=10,
            metadata=client._metadata,
        )
        code, details = _abort_code(lambda: list(raw))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "ComputeShared" in details

        again = client.compute(spec, 5, shards, None, shared=shared)  # the job is unharmed
        assert again.blocks == result.blocks
    finally:
        steps.close()
