"""The coordinator's gRPC API (coordinator.proto's Coordinator service).

Every request is checked before anything changes. A malformed or inconsistent request gets
INVALID_ARGUMENT with a message that starts with the offending field (`batch_size: ...`,
`chunk.offset: ...`); an unknown id gets NOT_FOUND; a request over a limit (upload size,
number of active jobs, metric followers) gets RESOURCE_EXHAUSTED. Requests are decoded
leniently, so bytes that are not the message they claim to be get INVALID_ARGUMENT too
rather than an internal error. Nothing a client sends is ever unpickled: configurations are
JSON, datasets are npz read with allow_pickle=False, weights are safetensors.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator

import grpc
from google.protobuf.message import DecodeError

from shardgrad.protos import common_pb2, coordinator_pb2
from shardgrad.serialization import save_safetensors_bytes
from shardgrad.worker.layout import ParamLayout
from shardgrad.worker.running_stats import RunningStats

from . import builders, convert, events
from .checkpoint import CheckpointManager, file_sha256, list_checkpoint_files
from .config import MAX_WORKERS, JobConfig, ValidationError
from .datasets import DatasetError
from .jobs import JobManager
from .store import JobState, StoreError
from .trainer import job_dir, model_path

log = logging.getLogger(__name__)

SERVICE = "shardgrad.v1.Coordinator"
CHUNK_BYTES = 1 << 20
MAX_CONFIG_BYTES = 4 << 20
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_WORKER_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_POLL_SECONDS = 0.2
# Events per StreamMetricsBatches message: a few hundred kB at most.
_METRICS_PER_BATCH = 1000
_MAX_EVENT_KINDS = 100


class _Undecodable:
    """What a lenient deserializer hands the handler for bytes that do not parse."""

    def __init__(self, kind: str, error: str) -> None:
        self.kind, self.error = kind, error


def _lenient(cls):
    def parse(raw: bytes):
        try:
            return cls.FromString(raw)
        except DecodeError as exc:
            return _Undecodable(cls.__name__, str(exc))

    return parse


def _invalid(context, field: str, message: str):
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {message}")


def _storage_full(context, exc: OSError):
    """An upload the coordinator's disk has no room for is the client's to retry later."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        raise exc
    context.abort(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"data: the coordinator has no room to store the upload ({exc.strerror})",
    )


def _decoded(request, context):
    if isinstance(request, _Undecodable):
        _invalid(context, "request", f"undecodable {request.kind}: {request.error}")
    return request


def _check_text(context, field: str, value: str, max_len: int) -> None:
    if len(value) > max_len:
        _invalid(context, field, f"longer than {max_len} characters")
    if any(ord(c) < 32 for c in value):
        _invalid(context, field, "contains control characters")


def check_address(context, address: str) -> None:
    """host:port (or [v6]:port) that a coordinator can dial."""
    _check_text(context, "address", address, 300)
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        _invalid(context, "address", f"expected host:port with a port in 1..65535, got {address!r}")
    if host.startswith("[") != host.endswith("]") or " " in host:
        _invalid(context, "address", f"malformed host {host!r}")


class CoordinatorService:
    """The Coordinator service's handlers over one JobManager and its worker pool."""

    def __init__(
        self,
        manager: JobManager,
        *,
        max_jobs: int = 16,
        max_upload_bytes: int = 1 << 30,
        heartbeat_interval: float = 2.0,
        max_followers: int = 32,
        max_uploads: int = 2,
    ) -> None:
        self.manager = manager
        self.store = manager.store
        self.pool = manager.pool
        self.datasets = manager.datasets
        self.max_jobs = max_jobs
        self.max_upload_bytes = max_upload_bytes
        self.heartbeat_interval = heartbeat_interval
        self.closing = threading.Event()
        self._submit_lock = threading.Lock()
        self._followers = threading.BoundedSemaphore(max_followers)
        # Uploads go to disk as they arrive; checking one reads its arrays into memory.
        self._uploads = threading.BoundedSemaphore(max_uploads)

    def generic_handler(self) -> grpc.GenericRpcHandler:
        """Handlers for every method of the service, built from its descriptor."""
        service = coordinator_pb2.DESCRIPTOR.services_by_name["Coordinator"]
        kinds = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }
        methods = {}
        for m in service.methods:
            request_cls = getattr(coordinator_pb2, m.input_type.name)
            response_cls = getattr(coordinator_pb2, m.output_type.name)
            methods[m.name] = kinds[(m.client_streaming, m.server_streaming)](
                getattr(self, m.name),
                request_deserializer=_lenient(request_cls),
                response_serializer=response_cls.SerializeToString,
            )
        return grpc.method_handlers_generic_handler(service.full_name, methods)

    # ------------------------------------------------------------------ helpers
    def _check_job_id(self, context, job_id: str) -> None:
        if not job_id:
            _invalid(context, "job_id", "required")
        if not _JOB_ID.match(job_id):
            _invalid(context, "job_id", f"{job_id[:80]!r} is not a job id")

    def _no_job(self, context, job_id: str):
        context.abort(grpc.StatusCode.NOT_FOUND, f"job_id: no job {job_id}")

    def _job_record(self, context, job_id: str):
        self._check_job_id(context, job_id)
        rec = self.store.get_job(job_id)
        if rec is None:
            self._no_job(context, job_id)
        return rec

    def _job(self, rec) -> coordinator_pb2.Job:
        return convert.job(rec, self.store.last_train_loss(rec.id, rec.step))

    def _open(self, context) -> None:
        if self.closing.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "the coordinator is shutting down")

    def _grpc_pool(self, context):
        if not hasattr(self.pool, "register"):
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"this coordinator runs the {self.pool.kind!r} pool; gRPC workers cannot join it "
                "(start it with --pool grpc)",
            )
        return self.pool

    # ------------------------------------------------------------------ datasets
    def UploadDataset(self, request_iterator, context):  # noqa: N802 - gRPC method name
        self._open(context)
        first = next(request_iterator, None)
        if first is None:
            _invalid(context, "header", "the upload is empty; send the header first")
        first = _decoded(first, context)
        if not first.HasField("header"):
            _invalid(context, "header", "the first message must be the header")
        h = first.header
        _check_text(context, "header.name", h.name, 200)
        if h.nbytes <= 0:
            _invalid(context, "header.nbytes", f"must be > 0, got {h.nbytes}")
        if h.nbytes > self.max_upload_bytes:
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"header.nbytes: {h.nbytes} bytes is over this coordinator's upload limit of "
                f"{self.max_upload_bytes} bytes (--max-upload-bytes)",
            )
        if h.sha256 and not _SHA256.match(h.sha256):
            _invalid(context, "header.sha256", "expected 64 lower-case hex digits")
        left = context.time_remaining()
        if not self._uploads.acquire(timeout=60.0 if left is None else max(0.0, min(60.0, left))):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "uploads: other uploads are in progress; try again later",
            )
        try:
            return self._receive_upload(h, request_iterator, context)
        finally:
            self._uploads.release()

    def _receive_upload(self, h, request_iterator, context):
        # The bytes go to a temp file as they come: nothing is set aside for the announced
        # size, and an upload that is refused, cut short or cancelled leaves nothing behind.
        try:
            upload = self.datasets.upload()
        except OSError as exc:
            _storage_full(context, exc)
        with upload:
            for message in request_iterator:
                message = _decoded(message, context)
                if message.HasField("header"):
                    _invalid(context, "header", "sent twice")
                if not message.HasField("chunk"):
                    _invalid(context, "chunk", "a message after the header must be a chunk")
                chunk = message.chunk
                if chunk.offset != upload.size:
                    _invalid(
                        context,
                        "chunk.offset",
                        f"{chunk.offset}, expected {upload.size} (in order)",
                    )
                if upload.size + len(chunk.data) > h.nbytes:
                    _invalid(context, "chunk.data", f"runs past the announced {h.nbytes} bytes")
                try:
                    upload.write(chunk.data)
                except OSError as exc:
                    _storage_full(context, exc)
            if upload.size != h.nbytes:
                _invalid(
                    context, "chunk", f"the upload ended after {upload.size} of {h.nbytes} bytes"
                )
            digest = upload.sha256
            if h.sha256 and h.sha256 != digest:
                _invalid(context, "header.sha256", f"the bytes hash to {digest}, not {h.sha256}")
            try:
                self.datasets.put_upload(upload, name=h.name)
            except DatasetError as exc:
                _invalid(context, "data", str(exc))
            except OSError as exc:
                _storage_full(context, exc)
        log.info("dataset %s uploaded (%d bytes)", digest, h.nbytes)
        return convert.dataset(self.store.get_dataset(digest))

    def FetchDataset(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        sha = request.sha256
        if not _SHA256.match(sha):
            _invalid(context, "sha256", "expected 64 lower-case hex digits")
        if request.offset < 0:
            _invalid(context, "offset", f"must be >= 0, got {request.offset}")
        path = self.datasets.path_for(sha)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below, after the stream
        except FileNotFoundError:
            context.abort(grpc.StatusCode.NOT_FOUND, f"sha256: no dataset {sha}")
        with f:
            size = os.fstat(f.fileno()).st_size
            if request.offset > size:
                _invalid(context, "offset", f"{request.offset} is past the end ({size} bytes)")
            rec = self.store.get_dataset(sha)
            info = (
                convert.dataset(rec) if rec is not None else coordinator_pb2.DatasetInfo(sha256=sha)
            )
            info.nbytes = size
            yield coordinator_pb2.FetchDatasetResponse(info=info)
            # Streamed from disk, never whole in memory. The file is hashed on the way when
            # sent from the start: a file damaged on disk ends the stream with DATA_LOSS (the
            # worker also checks the bytes against their name before it keeps them).
            digest = hashlib.sha256() if request.offset == 0 else None
            f.seek(request.offset)
            offset = request.offset
            while chunk := f.read(CHUNK_BYTES):
                if digest is not None:
                    digest.update(chunk)
                yield coordinator_pb2.FetchDatasetResponse(
                    chunk=common_pb2.Chunk(offset=offset, data=chunk)
                )
                offset += len(chunk)
            if digest is not None and digest.hexdigest() != sha:
                context.abort(grpc.StatusCode.DATA_LOSS, f"dataset {sha} is damaged on disk")

    def ListDatasets(self, request, context):  # noqa: N802
        _decoded(request, context)
        return coordinator_pb2.ListDatasetsResponse(
            datasets=[convert.dataset(r) for r in self.store.list_datasets()]
        )

    # ------------------------------------------------------------------ jobs
    def SubmitJob(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        self._open(context)
        if not request.config_json:
            _invalid(context, "config_json", "required")
        if len(request.config_json) > MAX_CONFIG_BYTES:
            _invalid(context, "config_json", f"larger than {MAX_CONFIG_BYTES} bytes")
        try:
            config = JobConfig.from_json(request.config_json)
        except ValidationError as exc:
            _invalid(context, exc.field, exc.message)
        if request.initial_weights:
            if config.initial_weights is not None:
                _invalid(context, "initial_weights", "given both in config_json and beside it")
            config.initial_weights = bytes(request.initial_weights)
        with self._submit_lock:
            active = sum(1 for r in self.store.list_jobs() if not r.state.is_terminal)
            if active >= self.max_jobs:
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"jobs: {active} jobs are pending or running, the most this coordinator "
                    f"takes (--max-jobs {self.max_jobs}); stop one or wait for one to end",
                )
            try:
                rec = self.manager.submit(config)
            except ValidationError as exc:
                _invalid(context, exc.field, exc.message)
        log.info("job %s submitted", rec.id)
        return self._job(self.store.job(rec.id))

    def GetJob(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        self._check_job_id(context, request.job_id)
        found = self.store.jobs_with_last_loss(job_id=request.job_id)  # one query, not two
        if not found:
            self._no_job(context, request.job_id)
        return convert.job(*found[0])

    def ListJobs(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        wanted = set()
        for i, value in enumerate(request.states):
            if value not in convert.JOB_STATE_FROM_PROTO:
                _invalid(context, f"states[{i}]", f"{value} is not a job state")
            wanted.add(convert.JOB_STATE_FROM_PROTO[value])
        # One query for the jobs and their losses however many are listed: the newest
        # `limit` of them (0: all), oldest first.
        found = self.store.jobs_with_last_loss(states=wanted or None, newest=request.limit or None)
        return coordinator_pb2.ListJobsResponse(jobs=[convert.job(r, loss) for r, loss in found])

    def StopJob(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        rec = self._job_record(context, request.job_id)
        left = context.time_remaining()
        wait = 60.0 if left is None else max(0.0, min(60.0, left - 1.0))
        try:
            rec = self.manager.stop(rec.id, timeout=wait)
        except StoreError as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return self._job(rec)

    def DeleteJob(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        rec = self._job_record(context, request.job_id)
        if not rec.state.is_terminal:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"job_id: job {rec.id} is {rec.state.value}; stop it first",
            )
        try:
            freed = self.manager.delete(rec.id)
        except StoreError as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"job_id: {exc}")
        if freed is None:  # deleted by another request meanwhile
            context.abort(grpc.StatusCode.NOT_FOUND, f"job_id: no job {rec.id}")
        return coordinator_pb2.DeleteJobResponse(job_id=rec.id, freed_bytes=freed)

    def ListCheckpoints(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        rec = self._job_record(context, request.job_id)
        out = []
        for f in list_checkpoint_files(job_dir(self.manager.state_dir, rec.id) / "checkpoints"):
            try:
                digest = file_sha256(f.path)
            except FileNotFoundError:  # pruned by the running job since it was listed
                continue
            out.append(
                coordinator_pb2.Checkpoint(
                    step=f.step,
                    name=f.path.name,
                    bytes=f.bytes,
                    created_unix=f.mtime,
                    sha256=digest,
                )
            )
        return coordinator_pb2.ListCheckpointsResponse(checkpoints=out)

    def StreamMetrics(self, request, context):  # noqa: N802
        for read in self._metric_reads(request, context):
            yield from read

    def StreamMetricsBatches(self, request, context):  # noqa: N802
        for read in self._metric_reads(request, context):
            for i in range(0, len(read), _METRICS_PER_BATCH):
                yield coordinator_pb2.MetricsBatch(events=read[i : i + _METRICS_PER_BATCH])

    def _metric_reads(self, request, context) -> Iterator[list]:
        """The events of StreamMetrics, as a list per reading of the job's metrics."""
        request = _decoded(request, context)
        rec = self._job_record(context, request.job_id)
        if request.follow and not self._followers.acquire(blocking=False):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "follow: too many metric streams are being followed; try again later",
            )
        try:
            yield from self._metrics(
                rec.id, int(request.from_step), request.follow, context, rec.state
            )
        finally:
            if request.follow:
                self._followers.release()

    def _metrics(
        self, job_id: str, from_step: int, follow: bool, context, state: JobState
    ) -> Iterator[list]:
        """The job's metrics as events, a list per reading (empty lists are not yielded);
        `state` is the job's, read by the caller just now.

        The state is always read before the records: a loop writes its last metrics before
        its final state, so a terminal state means the read after it sees every record.
        """
        after = from_step - 1
        sent: set[tuple[int, str]] = set()
        train_loss: dict[int, float] = {}
        while True:
            read = []
            for m in self.store.metrics(job_id, after_step=after):
                if (m.step, m.kind) in sent:
                    continue
                sent.add((m.step, m.kind))
                if m.kind == "train":
                    train_loss[m.step] = float(m.values.get("loss", 0.0))
                read.append(convert.metrics_event(m, state, train_loss.get(m.step)))
                # Re-read the newest step next time: its eval record may come later.
                after = max(after, m.step - 1)
            if read:
                yield read
            sent = {key for key in sent if key[0] > after}
            train_loss = {s: v for s, v in train_loss.items() if s > after}
            if not follow or state.is_terminal or not context.is_active():
                return
            if self.closing.wait(_POLL_SECONDS):
                return
            current = self.store.get_job(job_id)
            if current is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"job_id: job {job_id} was deleted")
            state = current.state

    def FetchModel(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        rec = self._job_record(context, request.job_id)
        config = self.manager.config(rec.id)
        path = model_path(self.manager.state_dir, rec.id)
        if rec.state.is_terminal and path.exists():
            data, step = path.read_bytes(), rec.step  # the trained state_dict
        else:
            ck = CheckpointManager(job_dir(self.manager.state_dir, rec.id) / "checkpoints").latest()
            if ck is None:
                context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"job_id: job {rec.id} has no trained parameters yet (no checkpoint)",
                )
            data, step = self._model_bytes(config, ck.params, ck.buffers), ck.step
        info = coordinator_pb2.ModelInfo(
            job_id=rec.id,
            step=step,
            model_json=json.dumps(builders.model_spec_dict(config.model), sort_keys=True),
            nbytes=len(data),
        )
        yield coordinator_pb2.FetchModelResponse(info=info)
        view = memoryview(data)
        for start in range(0, len(data), CHUNK_BYTES):
            yield coordinator_pb2.FetchModelResponse(
                chunk=common_pb2.Chunk(offset=start, data=bytes(view[start : start + CHUNK_BYTES]))
            )

    def _model_bytes(self, config: JobConfig, flat, buffers: dict | None = None) -> bytes:
        """A checkpoint's flat parameters (and running statistics, when it holds them) as the
        model's state_dict (safetensors)."""
        model = builders.build_model(
            config.model,
            seed=config.seed,
            allowed_prefixes=self.manager.options.allowed_import_prefixes,
        )
        if config.dtype == "float64":
            model.double()
        else:
            model.float()
        named = list(model.named_parameters())
        layout = ParamLayout.from_shapes(((n, tuple(p.shape)) for n, p in named), config.dtype)
        views = layout.views(flat)
        for name, p in named:
            p._data = views[name]
        if buffers is not None:
            RunningStats(model).load_state(buffers)
        return save_safetensors_bytes(model.state_dict())

    # ------------------------------------------------------------------ workers
    def ListWorkers(self, request, context):  # noqa: N802
        _decoded(request, context)
        return coordinator_pb2.ListWorkersResponse(
            workers=[convert.worker(w) for w in self.pool.describe()]
        )

    def ScaleWorkers(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        self._open(context)
        if request.pool and request.pool != self.pool.kind:
            _invalid(context, "pool", f"this coordinator runs the {self.pool.kind!r} pool")
        if request.count > MAX_WORKERS:
            _invalid(context, "count", f"must be at most {MAX_WORKERS}, got {request.count}")
        try:
            count = self.pool.scale(int(request.count))
        except NotImplementedError as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        log.info("workers scaled to %d", count)
        events.record(self.store, "workers_scaled", f"scaled to {count} {self.pool.kind} workers")
        return coordinator_pb2.ScaleWorkersResponse(
            count=count, workers=[convert.worker(w) for w in self.pool.describe()]
        )

    # ------------------------------------------------------------------ events
    def ListEvents(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        job_id = request.job_id or None
        if job_id is not None and not _JOB_ID.match(job_id):
            _invalid(context, "job_id", f"{job_id[:80]!r} is not a job id")
        if len(request.kinds) > _MAX_EVENT_KINDS:
            _invalid(context, "kinds", f"more than {_MAX_EVENT_KINDS} entries")
        for i, kind in enumerate(request.kinds):
            if kind not in events.KINDS:
                _invalid(
                    context,
                    f"kinds[{i}]",
                    f"{kind[:80]!r} is not an event kind; known: {', '.join(sorted(events.KINDS))}",
                )
        if request.after_id < 0:
            _invalid(context, "after_id", f"must be >= 0, got {request.after_id}")
        if not 0 <= request.limit <= events.READ_MAX:
            _invalid(
                context,
                "limit",
                f"must be 1 to {events.READ_MAX} (0: {events.READ_DEFAULT}), got {request.limit}",
            )
        # A job's events outlive the job, so an id that names no job is no error: its events
        # may still be there (its deletion among them), or there may be none.
        found = self.store.events(
            job_id,
            request.after_id,
            request.limit or events.READ_DEFAULT,
            request.newest_first,
            kinds=list(request.kinds),
        )
        return coordinator_pb2.ListEventsResponse(
            events=[convert.event(e) for e in found],
            last_id=max((e.id for e in found), default=request.after_id),
        )

    def RegisterWorker(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        self._open(context)
        pool = self._grpc_pool(context)
        check_address(context, request.address)
        if request.worker_id and not _WORKER_ID.match(request.worker_id):
            _invalid(context, "worker_id", "1 to 64 letters, digits, '.', '_' or '-'")
        _check_text(context, "device", request.device, 32)
        _check_text(context, "hostname", request.hostname, 253)
        _check_text(context, "version", request.version, 64)
        worker_id = pool.register(
            request.address,
            request.worker_id,
            device=request.device,
            hostname=request.hostname,
            cpu_cores=request.cpu_cores,
            compute_threads=request.compute_threads,
            version=request.version,
        )
        return coordinator_pb2.RegisterWorkerResponse(
            worker_id=worker_id, heartbeat_interval_seconds=self.heartbeat_interval
        )

    def Heartbeat(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        pool = self._grpc_pool(context)
        if not _WORKER_ID.match(request.worker_id):
            _invalid(context, "worker_id", "required: the id RegisterWorker gave")
        if request.state not in convert.WORKER_STATE_NAMES:
            _invalid(context, "state", f"{request.state} is not a worker state")
        if len(request.loaded_jobs) > 1024:
            _invalid(context, "loaded_jobs", "more than 1024 entries")
        known = pool.heartbeat(
            request.worker_id,
            convert.WORKER_STATE_NAMES[request.state],
            [j[:64] for j in request.loaded_jobs],
            request.requests_served,
        )
        return coordinator_pb2.HeartbeatResponse(
            known=known,
            heartbeat_interval_seconds=self.heartbeat_interval,
            drain=known and pool.take_drain(request.worker_id),
        )

    def DeregisterWorker(self, request, context):  # noqa: N802
        request = _decoded(request, context)
        pool = self._grpc_pool(context)
        if not _WORKER_ID.match(request.worker_id):
            _invalid(context, "worker_id", "required: the id RegisterWorker gave")
        _check_text(context, "reason", request.reason, 500)
        pool.deregister(request.worker_id, request.reason)
        return coordinator_pb2.DeregisterWorkerResponse()


__all__ = ["CoordinatorService", "JobState", "SERVICE"]
