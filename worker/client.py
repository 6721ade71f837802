"""The coordinator's side of the Worker service: load a job, compute a step, release.

A step's parameters are encoded once into chunk messages (`ParamPayload`) and the same bytes
are sent to every worker, so broadcasting to N workers costs one copy of the parameters, not
N. Gradients are copied once, from the received chunks into one array.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import grpc
import numpy as np

from shardgrad.protos import worker_pb2, worker_pb2_grpc

from . import auth, messages, wire
from .job import GradientResult, JobSpec
from .local_channel import LocalChannel, LocalChannelUnavailable
from .wire import WireError

log = logging.getLogger(__name__)

COMPUTE_METHOD = "/shardgrad.v1.Worker/ComputeGradients"
COMPUTE_SHARED_METHOD = "/shardgrad.v1.Worker/ComputeShared"


@dataclass(frozen=True)
class ParamPayload:
    """A step's parameters as ready-to-send ComputeRequest.params messages, encoded once."""

    step: int
    nbytes: int
    chunks: tuple[bytes, ...]

    @classmethod
    def encode(cls, flat: np.ndarray, step: int, chunk_bytes: int = wire.CHUNK_BYTES):
        flat = np.ascontiguousarray(flat)
        if flat.dtype.byteorder == ">":
            raise ValueError("parameters must be little-endian")
        view = wire.byte_view(flat)
        chunks = tuple(
            wire.encode_chunk(2, a, view[a:b]) for a, b in wire.chunk_spans(len(view), chunk_bytes)
        )
        return cls(step, len(view), chunks)


@dataclass(frozen=True)
class SentShare:
    """A share sent on a worker's local channel, its answer still to be read."""

    channel: LocalChannel
    conn: socket.socket

    @classmethod
    def send(
        cls,
        channel: LocalChannel,
        spec: JobSpec,
        step: int,
        shards: Sequence[tuple[int, np.ndarray]],
        shared: worker_pb2.SharedBuffers,
        timeout: float,
    ) -> SentShare:
        """Send ComputeShared for `shards` at `step` on `channel`; raises what
        LocalChannel.send raises."""
        header = messages.compute_header(
            spec.job_id, step, spec.layout.fingerprint, shards, 0, shared
        )
        return cls(channel, channel.send(header, timeout))

    def result(self, spec: JobSpec, timeout: float) -> GradientResult:
        """The worker's answer (the gradients are in the share's grads segment)."""
        return _shared_result(self.channel.receive(self.conn, timeout), spec)


def _shared_result(reply: worker_pb2.ComputeResult, spec: JobSpec) -> GradientResult:
    if not reply.grads_shared:
        raise WireError("the worker answered ComputeShared without shared gradients")
    return messages.result_from_header(reply, spec.num_micro_shards, spec.layout.numel, None)


def open_channel(address: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
    options = wire.grpc_options()
    if credentials is not None:
        return grpc.secure_channel(address, credentials, options=options)
    return grpc.insecure_channel(address, options=options)


class WorkerClient:
    """Calls to one gRPC worker. Every call takes a timeout (seconds)."""

    def __init__(
        self,
        address: str,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._metadata = auth.metadata(token)
        self._channel = open_channel(address, credentials)
        self._stub = worker_pb2_grpc.WorkerStub(self._channel)
        self._compute = self._channel.stream_stream(
            COMPUTE_METHOD, request_serializer=None, response_deserializer=None
        )
        self._compute_shared = self._channel.unary_unary(
            COMPUTE_SHARED_METHOD,
            request_serializer=worker_pb2.ComputeHeader.SerializeToString,
            response_deserializer=worker_pb2.ComputeResult.FromString,
        )
        self._local: LocalChannel | None = None

    def close(self) -> None:
        local, self._local = self._local, None
        if local is not None:
            local.close()
        self._channel.close()

    def use_local_channel(self, path: str, secret: str) -> None:
        """Send ComputeShared calls to the worker's Unix socket from now on (see
        shardgrad.worker.local_channel); a socket that cannot be reached is given up for gRPC."""
        old = self._local
        if old is not None and old.path == path:
            return
        self._local = LocalChannel(path, secret)
        if old is not None:
            old.close()

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        grpc.channel_ready_future(self._channel).result(timeout=timeout)

    def load_job(
        self, spec: JobSpec, timeout: float | None = None, shm_probe: str = ""
    ) -> worker_pb2.LoadJobResponse:
        """Load the job; `shm_probe` names a shared-memory segment the worker tries to attach
        (the reply's `shared_memory` says whether it could)."""
        return self._stub.LoadJob(
            messages.job_to_request(spec, shm_probe),
            timeout=timeout or self.timeout,
            metadata=self._metadata,
        )

    def release_job(self, job_id: str, timeout: float | None = None) -> bool:
        reply = self._stub.ReleaseJob(
            worker_pb2.ReleaseJobRequest(job_id=job_id),
            timeout=timeout or self.timeout,
            metadata=self._metadata,
        )
        return reply.released

    def compute(
        self,
        spec: JobSpec,
        step: int,
        shards: Sequence[tuple[int, np.ndarray]],
        params: ParamPayload | np.ndarray | None,
        timeout: float | None = None,
        out: np.ndarray | None = None,
        shared: worker_pb2.SharedBuffers | None = None,
    ) -> GradientResult:
        """The worker's gradient blocks for `shards` at `step`.

        `params` None asks the worker to reuse the parameters it already holds for `step`.
        `out`, when given, receives the gradients (it must have the size the reply announces).
        With `shared` (a worker on this machine: ComputeShared, one message each way), the
        parameters are already in its params segment and `params` must be None; the result's
        `grads` is then None and the blocks are in its grads segment.
        Raises grpc.RpcError for a status the worker returned, WireError for a reply that does
        not parse.
        """
        if isinstance(params, np.ndarray):
            params = ParamPayload.encode(params, step)
        if params is not None and params.step != step:
            raise ValueError(f"parameters are for step {params.step}, not {step}")
        if shared is not None and params is not None:
            raise ValueError("parameters go either in shared memory or on the wire, not both")
        header = messages.compute_header(
            spec.job_id,
            step,
            spec.layout.fingerprint,
            shards,
            params.nbytes if params else 0,
            shared,
        )
        if shared is not None:
            return _shared_result(self._call_shared(header, timeout or self.timeout), spec)

        def requests() -> Iterator[bytes]:
            yield worker_pb2.ComputeRequest(header=header).SerializeToString()
            if params is not None:
                yield from params.chunks

        replies = self._compute(
            requests(), timeout=timeout or self.timeout, metadata=self._metadata
        )
        try:
            return self._read_result(replies, spec, out)
        finally:
            replies.cancel()

    @property
    def has_local_channel(self) -> bool:
        return self._local is not None

    def send_shared(
        self,
        spec: JobSpec,
        step: int,
        shards: Sequence[tuple[int, np.ndarray]],
        shared: worker_pb2.SharedBuffers,
        timeout: float,
    ) -> SentShare | None:
        """Start `compute(..., shared=shared)` on the local channel and return at once, the
        request sent, so that the caller can start every worker of a step before it waits for
        any; the SentShare's `result` then waits for the answer. None when this worker has no
        usable local channel: call `compute` instead. Raises grpc.RpcError when sending fails."""
        local = self._local
        if local is None:
            return None
        try:
            return SentShare.send(local, spec, step, shards, shared, timeout)
        except LocalChannelUnavailable as exc:
            self._give_up_local(local, exc)
            return None

    def _call_shared(self, header: worker_pb2.ComputeHeader, timeout: float):
        local = self._local
        if local is not None:
            try:
                return local.call(header, timeout)
            except LocalChannelUnavailable as exc:
                self._give_up_local(local, exc)
        return self._compute_shared(header, timeout=timeout, metadata=self._metadata)

    def _give_up_local(self, local: LocalChannel, exc: Exception) -> None:
        log.info("worker %s: local channel given up for gRPC: %s", self.address, exc)
        if self._local is local:
            self._local = None
        local.close()

    def _read_result(self, replies, spec: JobSpec, out: np.ndarray | None) -> GradientResult:
        first = next(replies, None)
        if first is None:
            raise WireError("the worker closed the stream without a result")
        header, _, _ = wire.decode_part(first, worker_pb2.ComputeResult)
        if header is None:
            raise WireError("the worker's first reply is not a result header")
        dt = wire.dtype_from_proto(header.dtype, header.byte_order)
        n_blocks, numel = len(header.blocks), spec.layout.numel
        if header.grads_shared:
            raise WireError("the worker put gradients in shared memory it was not given")
        if out is None:
            out = np.empty((n_blocks, numel), dtype=dt)
        elif out.shape != (n_blocks, numel) or out.dtype != dt:
            raise ValueError(f"out must be ({n_blocks}, {numel}) {dt}, got {out.shape} {out.dtype}")
        assembler = wire.ChunkAssembler(wire.byte_view(out), "gradients")
        if header.grads_nbytes != out.nbytes:
            raise WireError(f"grads_nbytes {header.grads_nbytes} != {out.nbytes} expected")
        for raw in replies:
            h, offset, data = wire.decode_part(raw, worker_pb2.ComputeResult)
            if h is not None:
                raise WireError("the worker sent a second result header")
            assembler.add(offset, data)
        assembler.check_complete()
        grads = out if dt.isnative else out.astype(dt.newbyteorder("="))
        return messages.result_from_header(header, spec.num_micro_shards, numel, grads)
