"""Workers as threads of the coordinator's own process, for tests and single-machine runs.

Each worker is one thread with its own queue and its own `GradientComputer` per job, so work
for several jobs is served first come, first served, and a worker that raises or misses its
deadline looks to the training loop exactly like a crashed or stalled remote worker.

Workers share the process's random generator (dropout seeds it per micro-shard) and its BLAS
thread setting, so their arithmetic runs one at a time under `builders.RNG_LOCK`, always
with the same BLAS thread count: that keeps the numbers identical to a run with any other
number of workers. Fault hooks run before the lock, so a stalled worker never blocks others.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from shardgrad.worker.compute import GradientComputer
from shardgrad.worker.job import MODEL_ERROR, ModelError

from ..builders import RNG_LOCK
from ..datasets import Dataset
from .base import DispatchResult, JobSpec, StepPayload, WorkerError, WorkerPool

log = logging.getLogger(__name__)

FaultHook = Callable[[str, str, int, Sequence[int]], None]
"""`hook(worker_id, job_id, step, micro_shard_ids)`, run in the worker before it computes;
it may raise (the worker fails) or sleep (the worker is slow)."""


class _Worker:
    def __init__(self, worker_id: str) -> None:
        self.id = worker_id
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sg-{worker_id}")
        self.computers: dict[str, GradientComputer] = {}
        self.alive = True
        self.served = 0


class InProcessPool(WorkerPool):
    """A pool of `workers` threads computing with shardgrad.worker.compute directly."""

    kind = "inprocess"

    def __init__(
        self,
        workers: int = 2,
        compute_threads: int = 1,
        allowed_import_prefixes: Sequence[str] = (),
        fault: FaultHook | None = None,
    ) -> None:
        super().__init__()
        self.compute_threads = compute_threads
        self.allowed_import_prefixes = tuple(allowed_import_prefixes)
        self.fault = fault
        self._lock = threading.Lock()
        self._workers: dict[str, _Worker] = {}
        self._jobs: dict[str, tuple[JobSpec, dict]] = {}
        self._ids = itertools.count()
        self._closed = False
        self.scale(workers)

    # ------------------------------------------------------------------ membership
    def live_workers(self) -> list[str]:
        with self._lock:
            return [w.id for w in self._workers.values() if w.alive]

    def add_worker(self) -> str:
        with self._lock:
            worker = _Worker(f"inproc-{next(self._ids)}")
            self._workers[worker.id] = worker
        self._notify()
        return worker.id

    def remove_worker(self, worker_id: str, reason: str = "removed") -> None:
        """Take a worker out (like a process that died): queued and future work fails."""
        with self._lock:
            worker = self._workers.pop(worker_id, None)
        if worker is None:
            return
        worker.alive = False
        worker.executor.shutdown(wait=False, cancel_futures=True)
        log.info("in-process worker %s left: %s", worker_id, reason)
        self._notify()

    def scale(self, count: int) -> int:
        if count < 0:
            raise ValueError(f"worker count must be >= 0, got {count}")
        while len(self.live_workers()) < count:
            self.add_worker()
        live = self.live_workers()
        for worker_id in live[count:][::-1]:
            self.remove_worker(worker_id, "scaled down")
        return count

    def report_failure(self, worker_id: str, reason: str) -> None:
        self.remove_worker(worker_id, reason)

    # ------------------------------------------------------------------ jobs
    def load_job(self, spec: JobSpec, dataset: Dataset) -> None:
        with self._lock:
            self._jobs[spec.job_id] = (
                spec,
                {spec.input_key: dataset.x, spec.target_key: dataset.y},
            )

    def release_job(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)
            for worker in self._workers.values():
                worker.computers.pop(job_id, None)

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
            job = self._jobs.get(job_id)
        if worker is None or not worker.alive:
            raise WorkerError(worker_id, "not a live worker of this pool")
        if job is None:
            raise WorkerError(worker_id, f"job {job_id} is not loaded")
        ids = [int(i) for i in micro_shard_ids]
        try:
            return worker.executor.submit(self._run, worker, job, payload, ids, deadline)
        except RuntimeError as exc:  # executor shut down between the check and the submit
            raise WorkerError(worker_id, str(exc)) from None

    def _run(
        self,
        worker: _Worker,
        job: tuple[JobSpec, dict],
        payload: StepPayload,
        ids: list[int],
        deadline: float,
    ) -> DispatchResult:
        spec, data = job
        if self.fault is not None:
            self.fault(worker.id, spec.job_id, payload.step, ids)
        if not worker.alive:
            raise WorkerError(worker.id, "left the pool")
        if time.monotonic() > deadline:
            raise WorkerError(worker.id, "deadline passed before the work started")
        with RNG_LOCK:
            computer = worker.computers.get(spec.job_id)
            if computer is None:
                computer = GradientComputer(
                    spec,
                    data,
                    threads_share=self.compute_threads,
                    allowed_import_prefixes=self.allowed_import_prefixes,
                )
                worker.computers[spec.job_id] = computer
            computer.set_params(payload.params, payload.step)
            try:
                result = computer.compute(
                    payload.step,
                    [(k, payload.shards[k]) for k in ids],
                    should_stop=lambda: not worker.alive or time.monotonic() > deadline,
                )
            except ModelError as exc:
                raise WorkerError(worker.id, f"{MODEL_ERROR}{exc}", model_fault=True) from exc
        worker.served += 1
        sent = payload.params.nbytes + sum(payload.shards[k].nbytes for k in ids)
        return DispatchResult.of(worker.id, result, sent, result.grads.nbytes)

    def close(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
            self._jobs.clear()
        for worker in workers:
            worker.alive = False
            worker.executor.shutdown(wait=False, cancel_futures=True)
        self._notify()
