"""A gradient worker as a gRPC server.

It serves the Worker service (load a job, compute a step's micro-shards, release a job) and
grpc.health.v1, registers with the coordinator and heartbeats, and fetches datasets from the
coordinator by sha256 into a local cache. One compute runs per job at a time; a second request
for the same job waits for the first, within its own deadline.

Requests are checked before anything changes: a garbage message, a step older than one
already served, another layout, out-of-range micro-shards or sample indices get
INVALID_ARGUMENT with the reason; a job that is not loaded gets FAILED_PRECONDITION (the
coordinator loads it and retries); a draining worker answers UNAVAILABLE.

The jobs a worker holds are a bounded cache (see `job_cache`): a full worker drops an idle
job to load another, and answers RESOURCE_EXHAUSTED ("busy, ask again shortly") only while
every job it holds is in use.

Draining (SIGTERM in `shardgrad worker`): stop taking requests, report DRAINING and
NOT_SERVING, let the requests in flight finish, deregister, then stop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from shardgrad.protos import coordinator_pb2, coordinator_pb2_grpc, worker_pb2

from . import auth, messages, threads, wire
from .compute import Cancelled, GradientComputer
from .datasets import DatasetCache, DatasetUnavailable, check_sha256
from .job import MODEL_ERROR, GradientResult, JobSpec, ModelError
from .job_cache import BUSY_REFUSAL, JobCache
from .local_channel import LocalChannelServer
from .shm import Attachments, SharedMemoryUnavailable, can_attach
from .wire import WireError

log = logging.getLogger("shardgrad.worker")

SERVICE = "shardgrad.v1.Worker"
DEFAULT_HEARTBEAT_SECONDS = 2.0
RPC_TIMEOUT = 10.0
DATASET_TIMEOUT = 600.0
DEFAULT_MAX_JOBS = 4


class _Undecodable:
    def __init__(self, kind: str, error: str) -> None:
        self.kind, self.error = kind, error


def _lenient(cls):
    """A deserializer that hands garbage to the handler (INVALID_ARGUMENT, not INTERNAL)."""

    def parse(raw: bytes):
        try:
            return cls.FromString(raw)
        except DecodeError as exc:
            return _Undecodable(cls.__name__, str(exc))

    return parse


def _check_decoded(request, context) -> None:
    if isinstance(request, _Undecodable):
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"undecodable {request.kind}: {request.error}"
        )


@dataclass
class _Job:
    spec: JobSpec
    computer: GradientComputer
    response: worker_pb2.LoadJobResponse
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_step: int = -1
    # The coordinator's shared-memory segments this job reads and writes (same machine only).
    shared: Attachments = field(default_factory=Attachments)


class CoordinatorLink:
    """The worker's calls to the coordinator: register, heartbeat, deregister, datasets."""

    def __init__(
        self,
        target: str,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        options = wire.grpc_options()
        if credentials is not None:
            self._channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._stub = coordinator_pb2_grpc.CoordinatorStub(self._channel)
        self._metadata = auth.metadata(token)
        self.target = target
        self.worker_id = ""
        self.interval = DEFAULT_HEARTBEAT_SECONDS

    def close(self) -> None:
        self._channel.close()

    def register(self, request: coordinator_pb2.RegisterWorkerRequest) -> str:
        request.worker_id = self.worker_id or request.worker_id
        reply = self._stub.RegisterWorker(request, timeout=RPC_TIMEOUT, metadata=self._metadata)
        self.worker_id = reply.worker_id
        if reply.heartbeat_interval_seconds > 0:
            self.interval = reply.heartbeat_interval_seconds
        return self.worker_id

    def heartbeat(
        self, state: int, loaded: Sequence[str], served: int
    ) -> coordinator_pb2.HeartbeatResponse:
        """One heartbeat; the reply says whether the coordinator knows this worker (`known`)
        and whether it wants it gone (`drain`)."""
        reply = self._stub.Heartbeat(
            coordinator_pb2.HeartbeatRequest(
                worker_id=self.worker_id, state=state, loaded_jobs=loaded, requests_served=served
            ),
            timeout=RPC_TIMEOUT,
            metadata=self._metadata,
        )
        if reply.heartbeat_interval_seconds > 0:
            self.interval = reply.heartbeat_interval_seconds
        return reply

    def deregister(self, reason: str) -> None:
        if self.worker_id:
            self._stub.DeregisterWorker(
                coordinator_pb2.DeregisterWorkerRequest(worker_id=self.worker_id, reason=reason),
                timeout=RPC_TIMEOUT,
                metadata=self._metadata,
            )

    def fetch_dataset(self, sha256: str) -> Iterable[bytes]:
        """The dataset's .npz bytes as chunks, checked to arrive in order and complete."""
        replies = self._stub.FetchDataset(
            coordinator_pb2.FetchDatasetRequest(sha256=sha256),
            timeout=DATASET_TIMEOUT,
            metadata=self._metadata,
        )
        expected = None
        received = 0
        try:
            for reply in replies:
                if reply.HasField("info"):
                    if expected is not None:
                        raise DatasetUnavailable("the coordinator sent two dataset headers")
                    if reply.info.sha256 and reply.info.sha256 != sha256:
                        raise DatasetUnavailable(f"asked for {sha256}, got {reply.info.sha256}")
                    expected = reply.info.nbytes
                    continue
                if expected is None:
                    raise DatasetUnavailable("dataset chunks came before the dataset header")
                if reply.chunk.offset != received:
                    raise DatasetUnavailable(
                        f"dataset chunk at byte {reply.chunk.offset}, expected {received}"
                    )
                received += len(reply.chunk.data)
                if received > expected:
                    raise DatasetUnavailable(f"dataset is longer than the announced {expected}")
                yield reply.chunk.data
        finally:
            replies.cancel()
        if expected is None or received != expected:
            raise DatasetUnavailable(f"dataset transfer ended after {received} of {expected} bytes")


class WorkerServicer:
    """The Worker service's handlers around the jobs this worker holds."""

    def __init__(
        self,
        cache: DatasetCache,
        fetch_dataset=None,
        device: str = "cpu",
        threads_share: int | None = None,
        allowed_import_prefixes: Sequence[str] = (),
        max_jobs: int = DEFAULT_MAX_JOBS,
    ) -> None:
        self.jobs: JobCache[_Job] = JobCache(max_jobs)
        self.cache = cache
        self.fetch_dataset = fetch_dataset
        self.device = device
        self.threads_share = threads_share or threads.cpu_share()
        self.allowed_import_prefixes = tuple(allowed_import_prefixes)
        self.draining = False
        self.served = 0
        self._inflight = 0
        self._cond = threading.Condition()
        self._load_lock = threading.Lock()
        # ComputeShared on a Unix socket for a coordinator on this machine (set by
        # WorkerServer.start); None: only gRPC.
        self.local_channel: LocalChannelServer | None = None

    # ------------------------------------------------------------------ bookkeeping
    def _enter(self, context) -> None:
        with self._cond:
            if self.draining:
                context.abort(grpc.StatusCode.UNAVAILABLE, "worker is draining")
            self._inflight += 1

    def _leave(self) -> None:
        with self._cond:
            self._inflight -= 1
            self.served += 1
            self._cond.notify_all()

    @property
    def busy(self) -> bool:
        return self._inflight > 0

    def wait_idle(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until no request is in flight."""
        with self._cond:
            return self._cond.wait_for(lambda: self._inflight == 0, timeout=timeout)

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "LoadJob": grpc.unary_unary_rpc_method_handler(
                    self.LoadJob,
                    request_deserializer=_lenient(worker_pb2.LoadJobRequest),
                    response_serializer=worker_pb2.LoadJobResponse.SerializeToString,
                ),
                # Raw bytes both ways: chunks are decoded and encoded without extra copies.
                "ComputeGradients": grpc.stream_stream_rpc_method_handler(self.ComputeGradients),
                "ComputeShared": grpc.unary_unary_rpc_method_handler(
                    self.ComputeShared,
                    request_deserializer=_lenient(worker_pb2.ComputeHeader),
                    response_serializer=worker_pb2.ComputeResult.SerializeToString,
                ),
                "ReleaseJob": grpc.unary_unary_rpc_method_handler(
                    self.ReleaseJob,
                    request_deserializer=_lenient(worker_pb2.ReleaseJobRequest),
                    response_serializer=worker_pb2.ReleaseJobResponse.SerializeToString,
                ),
            },
        )

    # ------------------------------------------------------------------ LoadJob
    def LoadJob(self, request, context):  # noqa: N802 - gRPC method name
        _check_decoded(request, context)
        self._enter(context)
        try:
            return self._load(request, context)
        finally:
            self._leave()

    def _load(self, request, context):
        try:
            spec = messages.job_from_request(request)
            check_sha256(spec.dataset_sha256)
        except (WireError, DatasetUnavailable) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        with self._load_lock:
            held = self.jobs.get(spec.job_id)
            if held is not None:
                if held.spec == spec:
                    self.jobs.pin(spec.job_id)  # its compute follows: keep it till then
                    return self._answer(held, request)
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"job {spec.job_id} is already loaded with another configuration; "
                    "release it first",
                )
            if not self.jobs.reserve(spec.job_id):
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"{BUSY_REFUSAL}this worker holds {len(self.jobs)} jobs (its most, --max-jobs "
                    f"{self.jobs.capacity}) and each is computing, about to, or owed to a job "
                    "that asked earlier; ask again shortly",
                )
            try:
                job = self._build(spec, context)
            except BaseException:
                self.jobs.cancel()
                raise
            self.jobs.put(spec.job_id, job)
            log.info("loaded job %s (%d parameters)", spec.job_id, spec.layout.numel)
            return self._answer(job, request)

    def _answer(self, job: _Job, request) -> worker_pb2.LoadJobResponse:
        """The job's load response, saying whether this worker can attach the coordinator's
        shared-memory probe (asked afresh each time: a restarted coordinator has a new one)
        and, when it can, where its local channel is."""
        response = worker_pb2.LoadJobResponse()
        response.CopyFrom(job.response)
        response.shared_memory = can_attach(request.shm_probe)
        channel = self.local_channel
        if response.shared_memory and channel is not None:
            response.local_channel = channel.path
            response.local_channel_secret = channel.secret
        return response

    def _build(self, spec: JobSpec, context) -> _Job:
        start = time.perf_counter()
        try:
            data = self.cache.get(spec.dataset_sha256, self.fetch_dataset)
        except DatasetUnavailable as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except grpc.RpcError as exc:
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"could not fetch dataset {spec.dataset_sha256} from the coordinator: "
                f"{exc.code().name} {exc.details()}",
            )
        try:
            computer = GradientComputer(
                spec,
                data,
                device=self.device,
                threads_share=self.threads_share,
                allowed_import_prefixes=self.allowed_import_prefixes,
            )
        except (ValueError, TypeError, KeyError, ImportError, AttributeError) as exc:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"cannot build job {spec.job_id}: {type(exc).__name__}: {exc}",
            )
        response = worker_pb2.LoadJobResponse(
            job_id=spec.job_id,
            layout_fingerprint=spec.layout.fingerprint,
            device=str(computer.device),
            num_samples=computer.num_samples,
            load_seconds=time.perf_counter() - start,
        )
        return _Job(spec, computer, response)

    def held_jobs(self) -> list[str]:
        """The ids of the jobs held now, sorted."""
        return self.jobs.ids()

    # ------------------------------------------------------------------ ReleaseJob
    def ReleaseJob(self, request, context):  # noqa: N802
        _check_decoded(request, context)
        with self._load_lock:
            job = self.jobs.pop(request.job_id)
        return worker_pb2.ReleaseJobResponse(released=job is not None)

    # ------------------------------------------------------------------ ComputeGradients
    def ComputeGradients(self, request_iterator, context):  # noqa: N802
        self._enter(context)
        try:
            yield from self._compute(request_iterator, context)
        finally:
            self._leave()

    def _compute(self, request_iterator, context):
        first = next(request_iterator, None)
        if first is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty request stream")
        try:
            header, _, _ = wire.decode_part(first, worker_pb2.ComputeHeader)
        except WireError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad ComputeRequest: {exc}")
        if header is None:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first ComputeRequest must be the header"
            )
        if header.HasField("shared"):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "shared-memory buffers go with ComputeShared; ComputeGradients streams them",
            )
        with self._locked_job(header, context) as job:
            result = self._step(job, header, context, request_iterator)
            yield worker_pb2.ComputeResponse(
                header=messages.result_header(result)
            ).SerializeToString()
            # The job's lock is held until the reply is sent, so its buffer can be reused.
            view = wire.byte_view(result.grads)
            for a, b in wire.chunk_spans(len(view)):
                yield wire.encode_chunk(2, a, view[a:b])

    # ------------------------------------------------------------------ ComputeShared
    def ComputeShared(self, request, context):  # noqa: N802
        """ComputeGradients for a worker on the coordinator's machine: one header each way,
        the parameters and gradients in the coordinator's shared-memory segments."""
        _check_decoded(request, context)
        self._enter(context)
        try:
            if not request.HasField("shared"):
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "ComputeShared needs header.shared; send parameters with ComputeGradients",
                )
            with self._locked_job(request, context) as job:
                return messages.result_header(self._step(job, request, context), shared=True)
        finally:
            self._leave()

    # ------------------------------------------------------------------ one step's share
    @contextlib.contextmanager
    def _locked_job(self, header, context) -> Iterator[_Job]:
        """The header's job, held in use (not dropped to make room) and locked (one compute
        at a time) for the duration."""
        entry = self.jobs.begin(header.job_id)
        if entry is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"job {header.job_id!r} is not loaded on this worker; call LoadJob first",
            )
        try:
            job = entry.value
            if not job.lock.acquire(timeout=_remaining(context)):
                context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed waiting for the job's lock"
                )
            try:
                yield job
            finally:
                job.lock.release()
        finally:
            self.jobs.end(entry)

    def _step(self, job: _Job, header, context, request_iterator=None) -> GradientResult:
        """Check the header, take the step's parameters (from shared memory, the request
        stream, or those already held) and compute; the caller holds the job's lock."""
        shards = self._check_header(header, job, context)
        if header.step < job.last_step:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"stale request: step {header.step} is older than step {job.last_step}, "
                "already served",
            )
        computer = job.computer
        out = None
        if header.HasField("shared"):
            out = self._attach_shared(job, header, shards, context)
        elif header.params_nbytes:
            self._receive_params(request_iterator, header, computer, context)
        elif computer.params_step != header.step:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"no parameters held for step {header.step} (holding "
                f"{computer.params_step}); send them with the request",
            )
        job.last_step = header.step

        def stop() -> bool:
            return not context.is_active()

        try:
            return computer.compute(
                header.step, shards, should_stop=stop, reuse_output=True, out=out
            )
        except Cancelled:
            if _remaining(context) <= 0:
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed mid-step")
            context.abort(grpc.StatusCode.CANCELLED, "cancelled by the caller")
        except ModelError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{MODEL_ERROR}{exc}")
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    def _attach_shared(self, job: _Job, header, shards, context):
        """Take the step's parameters from the coordinator's shared segment and return the
        view of its grads segment that the gradients go into."""
        shared = header.shared
        if header.params_nbytes:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "parameters come either in shared memory or as chunks, not both",
            )
        try:
            return job.computer.bind_shared(
                job.shared,
                header.step,
                (shared.params, shared.params_nbytes),
                (shared.grads, shared.grads_capacity),
                [k for k, _ in shards],
            )
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except SharedMemoryUnavailable as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))

    def _check_header(self, header, job: _Job, context) -> list:
        if header.layout_fingerprint != job.spec.layout.fingerprint:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"layout {header.layout_fingerprint[:12]!r} is not job {job.spec.job_id}'s "
                f"layout {job.spec.layout.fingerprint[:12]!r}",
            )
        if header.params_nbytes not in (0, job.spec.layout.nbytes):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"params_nbytes {header.params_nbytes} != {job.spec.layout.nbytes} "
                f"({job.spec.layout.numel} x {job.spec.layout.dtype})",
            )
        if header.byte_order == wire.common_pb2.BYTE_ORDER_BIG:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "parameters must be little-endian")
        try:
            shards = messages.shards_from_header(header, job.spec.num_micro_shards)
            for k, idx in shards:
                job.computer.check_indices(k, idx)
        except (WireError, ValueError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return shards

    def _receive_params(self, request_iterator, header, computer, context) -> None:
        buffer = computer.host_param_buffer()
        computer.invalidate_params()
        assembler = wire.ChunkAssembler(wire.byte_view(buffer), "parameters")
        try:
            for raw in request_iterator:
                part, offset, data = wire.decode_part(raw, worker_pb2.ComputeHeader)
                if part is not None:
                    raise WireError("a second header arrived among the parameter chunks")
                assembler.add(offset, data)
                if assembler.filled == len(assembler.dest):
                    break
            assembler.check_complete()
        except WireError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        computer.commit_params(header.step)


def _remaining(context) -> float:
    left = context.time_remaining()
    return 3600.0 if left is None else max(0.0, left)


class WorkerServer:
    """The gRPC server, its health service and, given a coordinator, the heartbeat loop."""

    def __init__(
        self,
        coordinator: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        advertise_host: str | None = None,
        device: str = "cpu",
        threads_share: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | None = None,
        allowed_import_prefixes: Sequence[str] = (),
        server_credentials: grpc.ServerCredentials | None = None,
        channel_credentials: grpc.ChannelCredentials | None = None,
        max_threads: int = 8,
        max_jobs: int = DEFAULT_MAX_JOBS,
        local_channel: bool = True,
    ) -> None:
        self.link = (
            CoordinatorLink(coordinator, token, channel_credentials) if coordinator else None
        )
        self.servicer = WorkerServicer(
            DatasetCache(cache_dir),
            fetch_dataset=self.link.fetch_dataset if self.link else None,
            device=device,
            threads_share=threads_share,
            allowed_import_prefixes=allowed_import_prefixes,
            max_jobs=max_jobs,
        )
        interceptors = [auth.BearerAuthInterceptor(token)] if token else []
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="worker-rpc"),
            options=wire.grpc_options(),
            interceptors=interceptors,
        )
        self.server.add_generic_rpc_handlers((self.servicer.generic_handler(),))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        bind = f"{host}:{port}"
        if server_credentials is not None:
            self.port = self.server.add_secure_port(bind, server_credentials)
        else:
            self.port = self.server.add_insecure_port(bind)
        if self.port == 0:
            raise OSError(f"could not bind {bind}")
        shown = advertise_host or (socket.getfqdn() if host in ("0.0.0.0", "::", "") else host)
        self.address = f"{shown}:{self.port}"
        self.device = device
        self.offer_local_channel = local_channel and hasattr(socket, "AF_UNIX")
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        # Set when the coordinator's heartbeat reply asks this worker to drain (the pool was
        # scaled below the workers it has). The `shardgrad worker` process waits on it beside
        # SIGTERM and drains on the same path; a server run in-process with no
        # `on_drain_request` drains itself from a thread of its own.
        self.drain_requested = threading.Event()
        self.on_drain_request: Callable[[], None] | None = None

    def start(self) -> WorkerServer:
        if self.offer_local_channel:
            try:
                self.servicer.local_channel = LocalChannelServer(
                    self.servicer.ComputeShared, _lenient(worker_pb2.ComputeHeader)
                )
            except OSError as exc:
                log.info("no local channel (%s); same-machine steps use gRPC", exc)
        self.server.start()
        for name in ("", SERVICE):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.link is not None:
            self._heartbeat = threading.Thread(
                target=self._heartbeat_loop, name="worker-heartbeat", daemon=True
            )
            self._heartbeat.start()
        log.info("worker listening on %s", self.address)
        return self

    # ------------------------------------------------------------------ coordinator link
    def _register_request(self) -> coordinator_pb2.RegisterWorkerRequest:
        from shardgrad import __version__  # noqa: PLC0415

        return coordinator_pb2.RegisterWorkerRequest(
            address=self.address,
            device=self.device,
            hostname=socket.gethostname(),
            cpu_cores=threads.available_cores(),
            compute_threads=self.servicer.threads_share,
            version=__version__,
        )

    def _state(self) -> int:
        if self.servicer.draining:
            return coordinator_pb2.WORKER_STATE_DRAINING
        if self.servicer.busy:
            return coordinator_pb2.WORKER_STATE_BUSY
        return coordinator_pb2.WORKER_STATE_IDLE

    def _heartbeat_loop(self) -> None:
        link = self.link
        backoff = 0.2
        registered = False
        while not self._stop.is_set():
            try:
                if not registered:
                    link.register(self._register_request())
                    registered = True
                    log.info("registered with %s as %s", link.target, link.worker_id)
                else:
                    reply = link.heartbeat(
                        self._state(), self.servicer.held_jobs(), self.servicer.served
                    )
                    if not reply.known:
                        registered = False  # the coordinator forgot us (restarted): register
                        continue
                    if reply.drain:
                        self._drain_requested_by_coordinator()
                        return
                backoff = 0.2
                wait = link.interval
            except grpc.RpcError as exc:
                log.warning("coordinator %s: %s %s", link.target, exc.code().name, exc.details())
                wait, backoff = backoff, min(backoff * 2, max(link.interval, 1.0))
            self._stop.wait(wait)

    def _drain_requested_by_coordinator(self) -> None:
        log.info("the coordinator asked %s to drain", self.link.worker_id)
        self.drain_requested.set()
        if self.on_drain_request is not None:
            self.on_drain_request()
        else:
            threading.Thread(target=self.drain, name="worker-drain", daemon=True).start()

    # ------------------------------------------------------------------ shutdown
    def drain(self, timeout: float = 60.0) -> bool:
        """Finish the requests in flight (at most `timeout` s), deregister, stop.

        Returns False when requests were still running at the timeout.
        """
        with self.servicer._cond:
            self.servicer.draining = True
        self.health.enter_graceful_shutdown()
        if self.link is not None:
            try:
                self.link.heartbeat(
                    coordinator_pb2.WORKER_STATE_DRAINING,
                    self.servicer.held_jobs(),
                    self.servicer.served,
                )
            except grpc.RpcError:
                pass
        idle = self.servicer.wait_idle(timeout)
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=RPC_TIMEOUT + 1)
        if self.link is not None:
            try:
                self.link.deregister("drained" if idle else "drain timed out")
            except grpc.RpcError as exc:
                log.warning("could not deregister: %s", exc.code().name)
        self.server.stop(grace=1.0).wait(timeout=5.0)
        self._close_local_channel()
        if self.link is not None:
            self.link.close()
        return idle

    def stop(self, grace: float | None = None) -> None:
        """Stop at once (tests, errors): no deregistration."""
        self._stop.set()
        self.server.stop(grace).wait(timeout=10.0)
        self._close_local_channel()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=RPC_TIMEOUT + 1)
        if self.link is not None:
            self.link.close()

    def _close_local_channel(self) -> None:
        channel, self.servicer.local_channel = self.servicer.local_channel, None
        if channel is not None:
            channel.close()
