"""Gradient workers that are gRPC servers (`shardgrad worker`), started anywhere.

Workers join by calling the coordinator's RegisterWorker with the address it should dial, and
keep heartbeating; the coordinator's API hands those calls to this pool. A worker that misses
its heartbeats for `heartbeat_timeout` seconds, deregisters, fails a call or misses a deadline
is dropped from the live set (its micro-shards go to the others within the same step). A
worker that was dropped but is still alive learns so from its next heartbeat (`known=False`)
and registers again under the same id.

A worker that is full is busy, not dead: it holds a bounded number of jobs, drops an idle one
to load another, and answers RESOURCE_EXHAUSTED only while every job it holds is in use. The
dispatch then waits (growing, jittered pauses, within the step's deadline) and asks again; a
job the worker dropped gets FAILED_PRECONDITION on its next compute and is loaded again.
Neither answer takes the worker out of the pool, and neither changes a result: the step's
parameters travel with every compute request.

Dispatch goes through `shardgrad.worker.client`: a step's parameters are encoded into chunk
messages once and the same bytes go to every worker; a job is loaded onto a worker lazily,
before the first share of it the worker computes. A worker on the coordinator's own machine
(one that could attach the pool's shared-memory probe when it loaded the job) reads the
parameters from, and writes its gradients into, shared-memory segments instead (see .shared):
its requests and replies are then headers alone, and they go on the Unix socket the worker
named in its LoadJob answer (see shardgrad.worker.local_channel), sent from the loop's own
thread, rather than as gRPC calls.

Scaling: `scale(n)` sets how many workers get work. With a launcher (`serve --local-workers`)
the pool starts or stops local worker processes to match; a stopped process drains (finishes
its request in flight, deregisters). Workers beyond the target that the pool cannot stop
(started elsewhere) are DRAINING at once: given no work, and told so in their next heartbeat
reply (`drain`), on which they finish their request in flight, deregister and exit. Until
that reply goes out such a worker can still be taken back, when the target rises or a worker
is lost. Every change takes effect at the next step, because the training loop reads the live
set once per step.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import grpc

from shardgrad.worker import messages
from shardgrad.worker.client import ParamPayload, WorkerClient
from shardgrad.worker.job_cache import BUSY_REFUSAL
from shardgrad.worker.wire import WireError

from ..datasets import Dataset
from .base import DispatchResult, JobSpec, StepPayload, WorkerError, WorkerPool
from .shared import SharedSteps

log = logging.getLogger(__name__)

WORKER_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

IDLE, BUSY, DRAINING, LOST = "IDLE", "BUSY", "DRAINING", "LOST"


@dataclass
class RemoteWorker:
    """The pool's record of one registered worker."""

    id: str
    address: str
    client: WorkerClient
    info: dict
    registered_at: float
    last_seen: float  # time.monotonic() of the last sign of life
    last_heartbeat: float  # wall clock of the same
    active: bool = True  # given work
    drain: bool = False  # to be told to leave in its next heartbeat reply
    drain_sent: bool = False  # told: it is leaving and is never given work again
    reported_state: str = IDLE
    loaded_jobs: list[str] = field(default_factory=list)
    served: int = 0
    inflight: int = 0
    process: object | None = None  # a launcher.LocalProcess when this pool started it
    loaded: set[str] = field(default_factory=set)  # jobs this pool has loaded on it
    shared: set[str] = field(default_factory=set)  # loaded jobs it reaches by shared memory
    load_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def state(self) -> str:
        if not self.active or self.reported_state == DRAINING:
            return DRAINING
        return BUSY if self.inflight or self.reported_state == BUSY else IDLE

    def describe(self) -> dict:
        return {
            "worker_id": self.id,
            "pool": "grpc",
            "address": self.address,
            "device": self.info.get("device", ""),
            "state": self.state,
            "hostname": self.info.get("hostname", ""),
            "cpu_cores": self.info.get("cpu_cores", 0),
            "compute_threads": self.info.get("compute_threads", 0),
            "last_heartbeat": self.last_heartbeat,
            "loaded_jobs": sorted(set(self.loaded_jobs) | self.loaded),
            "version": self.info.get("version", ""),
        }


def _busy(exc: grpc.RpcError) -> bool:
    """Whether a worker refused a load because every job it holds is in use."""
    details = exc.details() or ""
    return exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and details.startswith(BUSY_REFUSAL)


class _Pause:
    """Growing, jittered waits between tries at a busy worker, cut short when the pool
    closes. The jitter keeps jobs that wait on one worker from asking in lockstep."""

    FIRST, LONGEST = 0.005, 0.1

    def __init__(self, closed: threading.Event, worker_id: str) -> None:
        self.closed, self.worker_id = closed, worker_id
        self.delay = self.FIRST

    def wait(self, left: float) -> None:
        delay = min(left, self.delay * random.uniform(0.5, 1.0))
        self.delay = min(self.delay * 2, self.LONGEST)
        if self.closed.wait(delay):
            raise WorkerError(self.worker_id, "the pool is closing")


class GrpcPool(WorkerPool):
    """Workers that registered over gRPC; see the module docstring."""

    kind = "grpc"

    def __init__(
        self,
        token: str | None = None,
        *,
        channel_credentials: grpc.ChannelCredentials | None = None,
        heartbeat_interval: float = 2.0,
        heartbeat_timeout: float | None = None,
        compute_threads: int = 0,
        rpc_timeout: float = 60.0,
        max_threads: int = 64,
        shared_memory: bool = True,
    ) -> None:
        super().__init__()
        self.token = token
        self.channel_credentials = channel_credentials
        self.heartbeat_interval = float(heartbeat_interval)
        self.heartbeat_timeout = (
            float(heartbeat_timeout)
            if heartbeat_timeout is not None
            else 3 * self.heartbeat_interval + 2.0
        )
        self.compute_threads = int(compute_threads)
        self.rpc_timeout = rpc_timeout
        self.target: int | None = None
        self.launcher = None
        self._lock = threading.RLock()
        self._workers: dict[str, RemoteWorker] = {}
        self._lost: deque[dict] = deque(maxlen=64)
        self._jobs: dict[str, JobSpec] = {}
        self._encoded: dict[str, tuple[StepPayload, ParamPayload]] = {}
        self._starting = 0  # local processes started that have not registered yet
        self._shared = SharedSteps() if shared_memory else None
        self._ids = itertools.count()
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="sg-grpc")
        self._closed = threading.Event()
        self._monitor = threading.Thread(
            target=self._watch_heartbeats, name="sg-grpc-heartbeats", daemon=True
        )
        self._monitor.start()

    # ------------------------------------------------------------------ local processes
    def attach_launcher(self, launcher) -> None:
        """Let the pool start and stop local worker processes (see service.launcher)."""
        launcher.on_address = self._on_process_address
        launcher.on_exit = self._on_process_exit
        self.launcher = launcher

    def start_local(self, count: int) -> None:
        for _ in range(count):
            with self._lock:
                self._starting += 1
            try:
                self.launcher.spawn()
            except Exception:
                with self._lock:
                    self._starting -= 1
                raise

    def _on_process_address(self, proc) -> None:
        with self._lock:
            for w in self._workers.values():
                if w.address == proc.address and w.process is None:
                    w.process = proc
                    self._starting = max(0, self._starting - 1)
                    break

    def _on_process_exit(self, proc) -> None:
        with self._lock:
            matched = [w for w in self._workers.values() if w.process is proc]
            if not matched and proc.address is None:
                self._starting = max(0, self._starting - 1)
        for w in matched:
            self._remove(w.id, f"its process exited ({proc.popen.returncode})")
        # Replace a worker that died after it came up; one that never came up would only
        # die again (bad options, missing modules), so it is left to the logs.
        if proc.address is not None and not proc.stopping and not self._closed.is_set():
            self._top_up()

    # ------------------------------------------------------------------ worker calls
    def register(
        self,
        address: str,
        worker_id: str = "",
        *,
        device: str = "",
        hostname: str = "",
        cpu_cores: int = 0,
        compute_threads: int = 0,
        version: str = "",
    ) -> str:
        """Admit a worker (or re-admit one under its old id); returns its id."""
        if self._closed.is_set():
            raise RuntimeError("the pool is closed")
        info = {
            "device": device,
            "hostname": hostname,
            "cpu_cores": cpu_cores,
            "compute_threads": compute_threads,
            "version": version,
        }
        replaced: list[RemoteWorker] = []
        with self._lock:
            if worker_id and worker_id in self._workers:
                replaced.append(self._workers.pop(worker_id))
            # One worker per address: a process restarted on the same port replaces the old.
            for other in list(self._workers.values()):
                if other.address == address:
                    replaced.append(self._workers.pop(other.id))
            wid = worker_id or f"grpc-{next(self._ids)}-{uuid.uuid4().hex[:6]}"
            process = next((r.process for r in replaced if r.process is not None), None)
            if process is None and self.launcher is not None:
                for proc in self.launcher.processes():
                    if proc.address == address:
                        process = proc
                        self._starting = max(0, self._starting - 1)
                        break
            now = time.monotonic()
            worker = RemoteWorker(
                id=wid,
                address=address,
                client=WorkerClient(
                    address, self.token, self.channel_credentials, timeout=self.rpc_timeout
                ),
                info=info,
                registered_at=time.time(),
                last_seen=now,
                last_heartbeat=time.time(),
                process=process,
            )
            worker.active = self.target is None or self._active_count() < self.target
            self._workers[wid] = worker
            self._lost = deque((d for d in self._lost if d["worker_id"] != wid), maxlen=64)
        for old in replaced:
            old.client.close()
        log.info("worker %s registered from %s (%s)", wid, address, device or "cpu")
        self._notify()
        return wid

    def heartbeat(
        self, worker_id: str, state: str = IDLE, loaded_jobs: Sequence[str] = (), served: int = 0
    ) -> bool:
        """Record a sign of life; False when the worker is unknown (it registers again)."""
        with self._lock:
            worker = self._workers.get(worker_id)
            if worker is None:
                return False
            worker.last_seen = time.monotonic()
            worker.last_heartbeat = time.time()
            worker.reported_state = state
            worker.loaded_jobs = list(loaded_jobs)
            worker.served = int(served)
        return True

    def take_drain(self, worker_id: str) -> bool:
        """Whether the worker is to drain, for its heartbeat reply; once this says so, the
        worker is never given work again (it is on its way out)."""
        with self._lock:
            worker = self._workers.get(worker_id)
            if worker is None or not worker.drain:
                return False
            worker.drain_sent = True
        log.info("worker %s told to drain", worker_id)
        return True

    def deregister(self, worker_id: str, reason: str = "") -> bool:
        reason = f"deregistered ({reason or 'no reason given'})"
        return self._remove(worker_id, reason, level=logging.INFO)

    # ------------------------------------------------------------------ membership
    def _active_count(self) -> int:
        return sum(1 for w in self._workers.values() if w.active)

    def live_workers(self) -> list[str]:
        with self._lock:
            return [
                w.id for w in self._workers.values() if w.active and w.reported_state != DRAINING
            ]

    def describe(self) -> list[dict]:
        with self._lock:
            return [w.describe() for w in self._workers.values()] + list(self._lost)

    def _remove(self, worker_id: str, reason: str, level: int = logging.WARNING) -> bool:
        with self._lock:
            worker = self._workers.pop(worker_id, None)
            if worker is None:
                return False
            record = worker.describe()
            record["state"] = LOST
            record["reason"] = reason  # why it left, for the event log
            self._lost.append(record)
        log.log(level, "worker %s left the pool: %s", worker_id, reason)
        worker.client.close()
        if self._shared is not None:
            self._shared.forget_worker(worker_id)
        self._rebalance()
        self._notify()
        return True

    def report_failure(self, worker_id: str, reason: str) -> None:
        self._remove(worker_id, reason)

    def _watch_heartbeats(self) -> None:
        period = max(0.05, min(self.heartbeat_interval / 2, 1.0))
        while not self._closed.wait(period):
            cutoff = time.monotonic() - self.heartbeat_timeout
            with self._lock:
                late = [w.id for w in self._workers.values() if w.last_seen < cutoff]
            for worker_id in late:
                self._remove(worker_id, f"no heartbeat for {self.heartbeat_timeout:g} s")

    # ------------------------------------------------------------------ scaling
    def scale(self, count: int) -> int:
        if count < 0:
            raise ValueError(f"worker count must be >= 0, got {count}")
        with self._lock:
            self.target = int(count)
            active = [w for w in self._workers.values() if w.active]
            extra = len(active) - count
            # Newest first; among those, processes this pool can stop before remote workers.
            victims = sorted(active, key=lambda w: (w.process is None, -w.registered_at))
            drained = victims[: max(0, extra)]
            for w in drained:
                w.active = False
                # What the pool cannot stop itself is asked to leave by heartbeat.
                w.drain = w.process is None or self.launcher is None
        for w in drained:
            log.info("worker %s drains (scaled to %d)", w.id, count)
            if not w.drain:
                self.launcher.terminate(w.process)
        self._rebalance()
        self._top_up()
        self._notify()
        return count

    def _rebalance(self) -> None:
        """Give work to standby workers while fewer than the target have it."""
        with self._lock:
            if self.target is None:
                return
            for w in self._workers.values():
                if self._active_count() >= self.target:
                    break
                stopping = w.process is not None and getattr(w.process, "stopping", False)
                leaving = stopping or w.drain_sent or w.reported_state == DRAINING
                if not w.active and not leaving:
                    w.active, w.drain = True, False

    def _top_up(self) -> None:
        """Start local processes until the target can be met (with a launcher)."""
        if self.launcher is None or self.target is None or self._closed.is_set():
            return
        with self._lock:
            usable = sum(
                1
                for w in self._workers.values()
                if not (w.process is not None and getattr(w.process, "stopping", False))
                and w.reported_state != DRAINING
                and not w.drain
            )
            missing = self.target - usable - self._starting
        if missing > 0:
            self.start_local(missing)

    # ------------------------------------------------------------------ jobs
    def load_job(self, spec: JobSpec, dataset: Dataset) -> None:
        if self.compute_threads:
            spec = replace(spec, compute_threads=self.compute_threads)
        with self._lock:
            self._jobs[spec.job_id] = spec
            for w in self._workers.values():
                w.loaded.discard(spec.job_id)

    def release_job(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)
            self._encoded.pop(job_id, None)
            holders = [w for w in self._workers.values() if job_id in w.loaded]
            for w in holders:
                w.loaded.discard(job_id)
                w.shared.discard(job_id)
        if self._shared is not None:
            self._shared.release(job_id)
        for w in holders:
            self._executor.submit(self._release_on, w, job_id)

    def _release_on(self, worker: RemoteWorker, job_id: str) -> None:
        try:
            worker.client.release_job(job_id, timeout=min(10.0, self.rpc_timeout))
        except grpc.RpcError as exc:
            log.info("worker %s: releasing job %s: %s", worker.id, job_id, exc.code().name)

    def _params(self, job_id: str, payload: StepPayload) -> ParamPayload:
        """The step's parameters as chunk messages, encoded once for all its workers (on the
        first share that goes over the wire)."""
        with self._lock:
            held = self._encoded.get(job_id)
            if held is not None and held[0] is payload:
                return held[1]
        encoded = ParamPayload.encode(payload.params, payload.step)
        with self._lock:
            self._encoded[job_id] = (payload, encoded)
        return encoded

    def param_buffer(self, job_id: str, numel: int, dtype):
        held = self._shared.param_buffer(job_id, numel, dtype) if self._shared else None
        return held if held is not None else super().param_buffer(job_id, numel, dtype)

    def dispatch(
        self,
        worker_id: str,
        job_id: str,
        payload: StepPayload,
        micro_shard_ids: Sequence[int],
        deadline: float,
    ) -> Future:
        with self._lock:
            worker = self._workers.get(worker_id)
            spec = self._jobs.get(job_id)
        if worker is None:
            raise WorkerError(worker_id, "not a registered worker of this pool")
        if spec is None:
            raise WorkerError(worker_id, f"job {job_id} is not loaded")
        shards = [(int(k), payload.shards[int(k)]) for k in micro_shard_ids]
        with self._lock:
            worker.inflight += 1
        try:
            sent = self._send_now(worker, spec, payload, shards, deadline)
        except grpc.RpcError as exc:
            with self._lock:
                worker.inflight -= 1
            raise WorkerError.from_status(worker_id, exc.code().name, exc.details() or "") from None
        try:
            return self._executor.submit(self._run, worker, spec, payload, shards, deadline, sent)
        except RuntimeError as exc:  # executor shut down: the pool is closing
            with self._lock:
                worker.inflight -= 1
            raise WorkerError(worker_id, str(exc)) from None

    def _send_now(self, worker, spec, payload, shards, deadline):
        """Send the share from the caller's thread when it can go on the worker's local
        channel (the job is loaded there and reached by shared memory): the loop's requests
        then leave back to back, instead of each waiting for a pool thread to wake up. None:
        the pool thread does everything (loading, retries, the wire)."""
        if spec.job_id not in worker.loaded or spec.job_id not in worker.shared:
            return None
        if not worker.client.has_local_channel:
            return None
        shared = self._shared_buffers(spec, worker, payload, shards)
        if shared is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        return worker.client.send_shared(spec, payload.step, shards, shared, left)

    def _run(self, worker, spec, payload, shards, deadline, sent=None) -> DispatchResult:
        try:
            if sent is not None:
                result = self._receive_sent(worker, spec, shards, deadline, sent)
                if result is not None:
                    return result
            return self._compute(worker, spec, payload, shards, deadline)
        except grpc.RpcError as exc:
            raise WorkerError.from_status(worker.id, exc.code().name, exc.details() or "") from None
        except (WireError, ValueError) as exc:
            raise WorkerError(worker.id, f"unusable reply: {exc}") from None
        finally:
            with self._lock:
                worker.inflight -= 1

    def _compute(self, worker, spec, payload, shards, deadline) -> DispatchResult:
        def left() -> float:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerError(worker.id, "deadline passed before the call")
            return remaining

        pause = _Pause(self._closed, worker.id)
        released = False
        shared = params = None  # the share's buffers: chosen once, kept across retries
        while True:
            with self._lock:
                if spec.job_id not in self._jobs:
                    # Its loop ended while this share waited: loading it would only take a
                    # place on the worker that another job needs.
                    raise WorkerError(worker.id, f"job {spec.job_id} was released")
            try:
                self._ensure_loaded(worker, spec, left, release=not released)
            except grpc.RpcError as exc:
                if not _busy(exc):
                    raise
                # The worker holds as many jobs as it takes and all are in use: it is busy,
                # not broken. Ask again once one of them is idle and can make room.
                released = True
                pause.wait(left())
                continue
            released = True
            if shared is None and params is None:
                if spec.job_id in worker.shared:
                    shared = self._shared_buffers(spec, worker, payload, shards)
                if shared is None:
                    params = self._params(spec.job_id, payload)
            try:
                result = worker.client.compute(
                    spec, payload.step, shards, params, timeout=left(), shared=shared
                )
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                # The worker no longer holds the job: it dropped it to make room for another
                # (it holds a bounded number), or it restarted under the same id. Load again;
                # the parameters travel with every request, so nothing else is lost.
                with worker.load_lock:
                    worker.loaded.discard(spec.job_id)
                pause.wait(left())
                continue
            break
        return self._dispatch_result(worker, spec, shards, result, params)

    def _receive_sent(self, worker, spec, shards, deadline, sent) -> DispatchResult | None:
        """The answer to a share `_send_now` sent; None when the worker no longer held the
        job (the caller then loads it again and asks anew, as `_compute` does)."""
        try:
            result = sent.result(spec, timeout=max(deadline - time.monotonic(), 1e-3))
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            with worker.load_lock:
                worker.loaded.discard(spec.job_id)
            return None
        return self._dispatch_result(worker, spec, shards, result, None)

    def _dispatch_result(self, worker, spec, shards, result, params) -> DispatchResult:
        sent = sum(int(idx.nbytes) for _, idx in shards)
        if result.grads is None:  # in the worker's shared-memory segment
            shared_bytes = self._shared.take_blocks(spec, worker.id, result)
            return DispatchResult.of(worker.id, result, sent, bytes_shared=shared_bytes)
        return DispatchResult.of(worker.id, result, sent + params.nbytes, result.grads.nbytes)

    def _shared_buffers(self, spec: JobSpec, worker, payload: StepPayload, shards):
        """The share's shared-memory segments, or None to send it over the wire."""
        held = self._shared.share(spec, worker.id, payload, [k for k, _ in shards])
        if held is None:
            return None
        return messages.shared_buffers(*held)

    def _ensure_loaded(
        self, worker: RemoteWorker, spec: JobSpec, left, release: bool = True
    ) -> None:
        with worker.load_lock:
            if spec.job_id in worker.loaded:
                return
            if release:
                # A worker that outlived an earlier coordinator may still hold this job at a
                # later step than the one resumed from; release it so the worker accepts the
                # step.
                worker.client.release_job(spec.job_id, timeout=left())
            probe = self._shared.probe_name if self._shared is not None else ""
            reply = worker.client.load_job(spec, timeout=left(), shm_probe=probe)
            worker.loaded.add(spec.job_id)
            if reply.shared_memory:
                worker.shared.add(spec.job_id)
                if reply.local_channel:
                    worker.client.use_local_channel(reply.local_channel, reply.local_channel_secret)
            else:
                worker.shared.discard(spec.job_id)

    # ------------------------------------------------------------------ shutdown
    def close(self) -> None:
        self._closed.set()
        if self.launcher is not None:
            self.launcher.close()
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
            self._jobs.clear()
            self._encoded.clear()
        for w in workers:
            w.client.close()
        if self._shared is not None:
            self._shared.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._monitor.join(timeout=5)
        self._notify()
