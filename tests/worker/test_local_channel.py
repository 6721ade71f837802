"""ComputeShared over the worker's Unix socket: the same answers as over gRPC, statuses that
read like gRPC's, and a server that survives callers that time out, lie or send garbage."""

from __future__ import annotations

import os
import socket
import stat
import struct
import threading
import time

import grpc
import numpy as np
import pytest
from workertest_helpers import TOKEN, cut

import shardgrad as sg
from shardgrad.protos import worker_pb2
from shardgrad.service.pools.base import StepPayload
from shardgrad.service.pools.shared import SharedSteps
from shardgrad.worker import shm
from shardgrad.worker.client import WorkerClient
from shardgrad.worker.compute import GradientComputer
from shardgrad.worker.local_channel import (
    LocalCallError,
    LocalChannel,
    LocalChannelServer,
    LocalChannelUnavailable,
    read_frame,
    send_frame,
)

pytestmark = pytest.mark.skipif(
    shm.shm_dir() is None or not hasattr(socket, "AF_UNIX"),
    reason="needs /dev/shm and Unix sockets",
)


@pytest.fixture
def steps():
    held = SharedSteps()
    try:
        yield held
    finally:
        held.close()


def _shared(steps, spec, flat, step, blocks):
    params = steps.params(spec.job_id, StepPayload(spec.job_id, step, flat, []))
    grads = steps.grads(spec.job_id, "w", step, blocks * spec.layout.nbytes)
    return worker_pb2.SharedBuffers(
        params=params[0], params_nbytes=params[1], grads=grads[0], grads_capacity=grads[1]
    )


def _expected(spec, data, flat, step, shards) -> bytes:
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step)
    return computer.compute(step, shards).grads.tobytes()


def test_a_same_machine_load_hands_out_a_private_socket_and_its_secret(client, job, steps):
    spec, _, _ = job
    reply = client.load_job(spec, shm_probe=steps.probe_name)
    assert reply.shared_memory and reply.local_channel and len(reply.local_channel_secret) >= 32
    folder = os.path.dirname(reply.local_channel)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_ISSOCK(os.stat(reply.local_channel).st_mode)
    remote = client.load_job(spec, shm_probe="")  # not on this machine: no socket offered
    assert not remote.shared_memory and not remote.local_channel
    assert not remote.local_channel_secret


def test_steps_through_the_socket_equal_the_grpc_call_bit_for_bit(client, worker, job, steps):
    spec, data, flat = job
    reply = client.load_job(spec, shm_probe=steps.probe_name)
    shards = [cut(48, 8)[i] for i in (2, 3, 4)]
    shared = _shared(steps, spec, flat, 3, 2)
    over_grpc = client.compute(spec, 3, shards, None, shared=shared)
    view = steps.grads_view(spec.job_id, "w", np.float32, (2, spec.layout.numel))
    grpc_bytes = view.tobytes()
    view[...] = 0

    served = worker.servicer.served
    client.use_local_channel(reply.local_channel, reply.local_channel_secret)
    over_socket = client.compute(spec, 4, shards, None, shared=_shared(steps, spec, flat, 4, 2))
    assert client._local is not None and len(client._local._idle) == 1  # it went that way
    assert worker.servicer.served == served + 1
    assert over_socket.blocks == over_grpc.blocks == [(1, 1), (0, 4)]
    assert [s.loss for s in over_socket.stats] == [s.loss for s in over_grpc.stats]
    assert view.tobytes() == grpc_bytes == _expected(spec, data, flat, 3, shards)


def test_refusals_come_back_as_grpc_statuses_and_the_connection_stays_usable(client, job, steps):
    spec, _, flat = job
    reply = client.load_job(spec, shm_probe=steps.probe_name)
    channel = LocalChannel(reply.local_channel, reply.local_channel_secret)
    try:
        shards = [cut(48, 8)[2]]
        shared = _shared(steps, spec, flat, 1, 1)
        header = worker_pb2.ComputeHeader(
            shared=shared, job_id="nope", step=1, layout_fingerprint=spec.layout.fingerprint
        )
        with pytest.raises(LocalCallError) as err:
            channel.call(header, timeout=10)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "not loaded on this worker" in err.value.details()
        assert isinstance(err.value, grpc.RpcError)

        small = worker_pb2.SharedBuffers()
        small.CopyFrom(shared)
        small.grads_capacity = 4
        client.use_local_channel(reply.local_channel, reply.local_channel_secret)
        with pytest.raises(LocalCallError) as err:
            client.compute(spec, 1, shards, None, shared=small)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "grads_capacity" in err.value.details()
        assert len(channel._idle) == 1  # the connection is kept after a refusal

        result = client.compute(spec, 2, shards, None, shared=_shared(steps, spec, flat, 2, 1))
        assert result.blocks == [(0, 2)]  # the job is unharmed
    finally:
        channel.close()


def test_a_wrong_secret_is_refused_and_the_client_falls_back_to_grpc(client, job, steps):
    spec, data, flat = job
    reply = client.load_job(spec, shm_probe=steps.probe_name)
    with pytest.raises(LocalChannelUnavailable, match="refused"):
        LocalChannel(reply.local_channel, "0" * 32).call(worker_pb2.ComputeHeader(), timeout=5)

    client.use_local_channel(reply.local_channel, "f" * 32)
    shards = [cut(48, 8)[5]]
    result = client.compute(spec, 7, shards, None, shared=_shared(steps, spec, flat, 7, 1))
    assert client._local is None  # given up for the rest of this client's life
    seen = steps.grads_view(spec.job_id, "w", np.float32, (1, spec.layout.numel))
    assert result.blocks == [(0, 5)]
    assert seen.tobytes() == _expected(spec, data, flat, 7, shards)


def test_an_unreachable_socket_falls_back_to_grpc(client, job, steps, tmp_path):
    spec, _, flat = job
    client.load_job(spec, shm_probe=steps.probe_name)
    client.use_local_channel(str(tmp_path / "missing.sock"), "0" * 32)
    shards = [cut(48, 8)[1]]
    assert client.compute(spec, 1, shards, None, shared=_shared(steps, spec, flat, 1, 1)).blocks
    assert client._local is None


def _slow_server(delay: float, seen: list):
    """A channel whose handler takes `delay` s, recording what its context said."""

    def handler(request, context):
        t0 = time.monotonic()
        while time.monotonic() - t0 < delay and context.is_active():
            time.sleep(0.01)
        seen.append((context.is_active(), context.time_remaining()))
        return worker_pb2.ComputeResult(job_id=request.job_id)

    return LocalChannelServer(handler, worker_pb2.ComputeHeader.FromString)


def test_a_call_past_its_deadline_fails_and_the_worker_sees_it_cancelled():
    seen: list = []
    server = _slow_server(5.0, seen)
    channel = LocalChannel(server.path, server.secret)
    try:
        t0 = time.monotonic()
        with pytest.raises(LocalCallError) as err:
            channel.call(worker_pb2.ComputeHeader(job_id="j"), timeout=0.2)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < 2.0
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen and seen[0][0] is False  # the handler stopped early
        assert not channel._idle  # a connection with a late reply on it is never reused
        fast = _slow_server(0.0, seen)
        try:
            other = LocalChannel(fast.path, fast.secret)
            assert other.call(worker_pb2.ComputeHeader(job_id="k"), timeout=5).job_id == "k"
            other.close()
        finally:
            fast.close()
    finally:
        channel.close()
        server.close()


def _closed_by_server(raw: socket.socket) -> bool:
    """Whether the server closed `raw` without answering (a reset when bytes were unread)."""
    try:
        return raw.recv(64) == b""
    except ConnectionResetError:
        return True


def test_garbage_on_the_socket_ends_that_connection_only():
    seen: list = []
    server = _slow_server(0.0, seen)
    good = LocalChannel(server.path, server.secret)
    try:
        assert good.call(worker_pb2.ComputeHeader(job_id="a"), timeout=5).job_id == "a"
        for garbage in (
            struct.pack("<I", 1 << 31),  # a frame far over the limit
            server.secret.encode(),  # no length prefix
            b"\x00\x00",  # a torn length
        ):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
                raw.settimeout(5)
                raw.connect(server.path)
                raw.sendall(garbage)
                raw.shutdown(socket.SHUT_WR)
                assert _closed_by_server(raw)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:  # a short request
            raw.settimeout(5)
            raw.connect(server.path)
            send_frame(raw, server.secret.encode())
            assert read_frame(raw) == bytearray(b"\x00")
            send_frame(raw, b"\x01\x02")
            assert read_frame(raw) is None  # closed
        assert good.call(worker_pb2.ComputeHeader(job_id="b"), timeout=5).job_id == "b"
    finally:
        good.close()
        server.close()
    assert not os.path.exists(server.path)


def test_a_stopped_worker_fails_calls_instead_of_hanging(client, worker, job, steps):
    spec, _, flat = job
    reply = client.load_job(spec, shm_probe=steps.probe_name)
    client.use_local_channel(reply.local_channel, reply.local_channel_secret)
    shards = [cut(48, 8)[0]]
    client.compute(spec, 1, shards, None, shared=_shared(steps, spec, flat, 1, 1))
    stopper = threading.Thread(target=worker.stop, kwargs={"grace": None})
    stopper.start()
    stopper.join(timeout=15)
    with pytest.raises(grpc.RpcError) as err:
        client.compute(spec, 2, shards, None, shared=_shared(steps, spec, flat, 2, 1), timeout=5)
    assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert not os.path.exists(reply.local_channel)


def test_a_draining_worker_refuses_new_steps_on_the_socket(client, worker, job, steps):
    spec, _, flat = job
    reply = client.load_job(spec, shm_probe=steps.probe_name)
    client.use_local_channel(reply.local_channel, reply.local_channel_secret)
    with worker.servicer._cond:
        worker.servicer.draining = True
    with pytest.raises(LocalCallError) as err:
        client.compute(spec, 1, [cut(48, 8)[0]], None, shared=_shared(steps, spec, flat, 1, 1))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "draining" in err.value.details()


@pytest.mark.cuda
@pytest.mark.skipif(not sg.backend.cuda_is_available(), reason="needs a CUDA GPU and cupy")
def test_a_cuda_worker_serves_the_socket_like_grpc(cuda_worker, job, steps):
    """A GPU worker on this machine offers the socket too; its steps through the socket equal
    its gRPC steps bit for bit, and a CPU worker's to float32 rounding."""
    spec, data, flat = job
    with WorkerClient(cuda_worker.address, token=TOKEN, timeout=60) as c:
        reply = c.load_job(spec, shm_probe=steps.probe_name)
        assert reply.device.startswith("cuda") and reply.local_channel
        shards = [cut(48, 8)[i] for i in (1, 5)]
        c.compute(spec, 2, shards, None, shared=_shared(steps, spec, flat, 2, 2))
        view = steps.grads_view(spec.job_id, "w", np.float32, (2, spec.layout.numel))
        over_grpc = view.tobytes()
        view[...] = 0
        c.use_local_channel(reply.local_channel, reply.local_channel_secret)
        c.compute(spec, 3, shards, None, shared=_shared(steps, spec, flat, 3, 2))
        assert c._local is not None and len(c._local._idle) == 1  # it went that way
        assert view.tobytes() == over_grpc
    expected = np.frombuffer(_expected(spec, data, flat, 2, shards), np.float32)
    np.testing.assert_allclose(view.reshape(-1), expected, rtol=1e-4, atol=1e-5)
