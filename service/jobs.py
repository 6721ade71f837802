"""The coordinator's jobs: submit, stop, resume, and one training-loop thread per running job.

A `JobManager` owns the state directory's store and datasets and shares one worker pool
between all its jobs. Jobs are validated before anything is stored, so a bad request changes
nothing. When the coordinator restarts, `recover()` restarts every job the store still shows
as PENDING or RUNNING; each continues from its last intact checkpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

from . import events
from .checkpoint import Checkpoint, CheckpointManager, remove_stale_temps_in
from .config import JobConfig
from .datasets import DatasetRegistry
from .fsutil import atomic_write
from .pools.base import WorkerPool
from .store import JobRecord, JobState, Store, StoreError, is_storage_fault
from .trainer import Trainer, TrainerOptions, job_dir, model_path

log = logging.getLogger(__name__)

# How soon worker records that the database refused are written again.
_SYNC_RETRY_S = 1.0


class JobManager:
    """Runs jobs against one pool; thread-safe."""

    def __init__(
        self,
        state_dir: str | Path,
        pool: WorkerPool,
        options: TrainerOptions | None = None,
        store: Store | None = None,
        datasets: DatasetRegistry | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = store if store is not None else Store(self.state_dir / "state.db")
        self.datasets = (
            datasets
            if datasets is not None
            else DatasetRegistry(self.state_dir / "datasets", store=self.store)
        )
        self.pool = pool
        self.options = options or TrainerOptions()
        self._lock = threading.Lock()
        self._trainers: dict[str, Trainer] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._sync_lock = threading.Lock()
        self._sync_retry: threading.Timer | None = None
        self._closed = False
        self._draining: set[str] = set()  # workers told to leave, for a "left" event when gone
        self._forget_earlier_workers()
        pool.add_listener(self._workers_changed)
        self.sync_workers()

    # ------------------------------------------------------------------ workers
    def _forget_earlier_workers(self) -> None:
        """A new coordinator knows none of the workers an earlier one recorded as live: they
        are marked LOST without an event (the earlier coordinator stopping is already in the
        log), so each one that is live in this coordinator's pool, under its old id or not,
        gets its own worker_live event."""
        for rec in self.store.list_workers():
            if rec.kind == self.pool.kind and rec.state != "LOST":
                self.store.set_worker_state(rec.id, "LOST")

    def sync_workers(self) -> None:
        """Record the pool's live workers in the store (IDLE) and the ones gone (LOST), and
        each such change in the event log."""
        with self._sync_lock:
            live = set(self.pool.live_workers())
            described = _Described(self.pool)
            for worker_id in sorted(live):
                rec = self.store.get_worker(worker_id)
                if rec is None or rec.state == "LOST":
                    self.store.upsert_worker(worker_id, kind=self.pool.kind, state="IDLE")
                    self._draining.discard(worker_id)
                    self._worker_live(worker_id, described.get(worker_id), rec is not None)
            for rec in self.store.list_workers():
                if rec.kind == self.pool.kind and rec.id not in live and rec.state != "LOST":
                    self.store.set_worker_state(rec.id, "LOST")
                    self._worker_gone(rec.id, described.get(rec.id))
            for worker_id in sorted(self._draining - live):
                info = described.get(worker_id)
                if info.get("state", "LOST") == "LOST":
                    self._draining.discard(worker_id)
                    why = f": {info['reason']}" if info.get("reason") else ""
                    events.record(
                        self.store, "worker_left", f"left the pool{why}", worker_id=worker_id
                    )

    def _workers_changed(self) -> None:
        """The pool's listener. It runs in whatever thread changed the pool (a training loop
        dropping a worker, a worker registering), which a database that cannot take the
        records now must not fail: they are written again a moment later until they go in."""
        try:
            self.sync_workers()
        except Exception as exc:
            if not is_storage_fault(exc):
                raise
            log.warning("worker records not written, retrying: the job database refuses (%s)", exc)
            with self._lock:
                if self._closed or self._sync_retry is not None:
                    return
                self._sync_retry = threading.Timer(_SYNC_RETRY_S, self._retry_sync)
                self._sync_retry.daemon = True
                self._sync_retry.start()

    def _retry_sync(self) -> None:
        with self._lock:
            self._sync_retry = None
            if self._closed:
                return
        self._workers_changed()

    def _worker_live(self, worker_id: str, info: dict, again: bool) -> None:
        where = ", ".join(str(info[k]) for k in ("address", "device") if info.get(k))
        what = "is live again" if again else f"joined the {self.pool.kind} pool"
        message = f"worker {worker_id} {what}" + (f" ({where})" if where else "")
        events.record(self.store, "worker_live", message, worker_id=worker_id)

    def _worker_gone(self, worker_id: str, info: dict) -> None:
        if info.get("state") == "DRAINING":
            self._draining.add(worker_id)
            message = f"worker {worker_id} drains: it gets no more work and leaves"
            events.record(self.store, "worker_draining", message, worker_id=worker_id)
            return
        why = info.get("reason") or "it is no longer live"
        message = f"worker {worker_id} left the {self.pool.kind} pool: {why}"
        events.record(self.store, "worker_lost", message, worker_id=worker_id)

    # ------------------------------------------------------------------ jobs
    def submit(self, config: JobConfig, job_id: str | None = None) -> JobRecord:
        """Validate, store as PENDING and start the job's loop; ValidationError changes nothing."""
        config.validate(
            self.datasets, self.options.allowed_import_prefixes, self.options.max_parameters
        )
        weights = config.initial_weights
        stored = JobConfig.from_dict({**config.to_dict(), "initial_weights": None})
        rec = self.store.create_job(stored.to_json(), name=config.name, job_id=job_id)
        events.record(self.store, "job_submitted", _submitted(config), job_id=rec.id)
        if weights is not None:
            folder = job_dir(self.state_dir, rec.id)
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / "initial.safetensors", bytes(weights))
        self._start(rec.id)
        return rec

    def config(self, job_id: str) -> JobConfig:
        cfg = JobConfig.from_json(self.store.job(job_id).config_json)
        initial = job_dir(self.state_dir, job_id) / "initial.safetensors"
        if initial.exists():
            cfg.initial_weights = initial.read_bytes()
        return cfg

    def _start(self, job_id: str, resume_from: Checkpoint | None = None) -> None:
        with self._lock:
            if job_id in self._threads:
                raise StoreError(f"job {job_id} is already running")
            trainer = Trainer(
                job_id,
                self.config(job_id),
                self.store,
                self.pool,
                self.datasets,
                self.state_dir,
                self.options,
                resume_from=resume_from,
            )
            thread = threading.Thread(
                target=self._run, args=(trainer,), name=f"sg-job-{job_id}", daemon=True
            )
            self._trainers[job_id] = trainer
            self._threads[job_id] = thread
        thread.start()

    def _run(self, trainer: Trainer) -> None:
        try:
            trainer.run()
        finally:
            with self._lock:
                self._trainers.pop(trainer.job_id, None)
                self._threads.pop(trainer.job_id, None)

    def get(self, job_id: str) -> JobRecord:
        return self.store.job(job_id)

    def list(self, state: JobState | None = None) -> list[JobRecord]:
        return self.store.list_jobs(state)

    def is_active(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._threads

    def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """Block until the job's loop ends (or `timeout` passes); return its record."""
        with self._lock:
            thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return self.store.job(job_id)

    def stop(self, job_id: str, timeout: float | None = 60.0) -> JobRecord:
        """Stop a job: its loop checkpoints and ends STOPPED. Ended jobs are left as they are."""
        with self._lock:
            trainer = self._trainers.get(job_id)
            thread = self._threads.get(job_id)
        if trainer is not None:
            trainer.request_stop()
            if thread is not threading.current_thread():
                thread.join(timeout)
            return self.store.job(job_id)
        rec = self.store.job(job_id)
        if not rec.state.is_terminal:
            rec = self.store.set_state(job_id, JobState.STOPPED, "stopped by request")
            events.record(self.store, "job_stopped", "stopped by request", job_id=job_id)
        return rec

    def resume(self, job_id: str) -> JobRecord:
        """Continue a STOPPED or FAILED job (or one left PENDING/RUNNING by a restart) from
        its last checkpoint."""
        rec = self.store.job(job_id)
        if self.is_active(job_id):
            raise StoreError(f"job {job_id} is already running")
        if rec.state is JobState.SUCCEEDED:
            raise StoreError(f"job {job_id} already succeeded")
        if rec.state is not JobState.PENDING:
            self.store.set_state(job_id, JobState.PENDING, "resuming")
        self._start(job_id)
        return self.store.job(job_id)

    def delete(self, job_id: str) -> int | None:
        """Delete an ended job: its record, metrics and everything under its folder
        (checkpoints, trained model, initial weights). Returns the bytes freed on disk, None
        when there is no such job; raises StoreError for a job that is pending, running or
        still winding down, which keeps everything."""
        with self._lock:  # no loop can start for the job while it is being deleted
            if job_id in self._threads:
                rec = self.store.get_job(job_id)
                if rec is not None and rec.state.is_terminal:
                    raise StoreError(f"job {job_id} is still finishing; try again in a moment")
                state = rec.state.value if rec is not None else "running"
                raise StoreError(f"job {job_id} is {state}; stop it first")
            if not self.store.delete_job(job_id):
                return None
        folder = job_dir(self.state_dir, job_id)
        freed = _tree_bytes(folder)
        shutil.rmtree(folder, ignore_errors=True)
        log.info("job %s deleted (%d bytes freed)", job_id, freed)
        events.record(self.store, "job_deleted", f"deleted; {freed} bytes freed", job_id=job_id)
        return freed

    def recover(self) -> list[str]:
        """Restart the loops of jobs a previous coordinator left PENDING or RUNNING, and
        remove the temp files of checkpoint writes it left behind (in ended jobs' folders too)."""
        for folder in sorted((self.state_dir / "jobs").glob("*/checkpoints")):
            remove_stale_temps_in(folder)
        started = []
        for rec in self.store.list_jobs():
            if rec.state in (JobState.PENDING, JobState.RUNNING) and not self.is_active(rec.id):
                if rec.state is JobState.RUNNING:
                    self.store.set_state(rec.id, JobState.PENDING, "coordinator restarted")
                # Report the step training resumes from at once: until the loop starts, the
                # record still shows the last step the killed coordinator recorded.
                ckpt = CheckpointManager(job_dir(self.state_dir, rec.id) / "checkpoints").latest()
                self.store.set_progress(rec.id, ckpt.step if ckpt is not None else 0)
                where = f"its checkpoint at step {ckpt.step}" if ckpt is not None else "step 0"
                message = f"the coordinator restarted; the job resumes from {where}"
                events.record(self.store, "job_recovered", message, job_id=rec.id)
                # The loop resumes from the checkpoint read here: a large model's file is
                # read and hashed once, not twice.
                self._start(rec.id, resume_from=ckpt)
                started.append(rec.id)
        return started

    def model_bytes(self, job_id: str) -> bytes:
        """The trained state_dict (safetensors) of a job that has ended."""
        path = model_path(self.state_dir, job_id)
        if not path.exists():
            raise StoreError(f"job {job_id} has no trained model yet")
        return path.read_bytes()

    def release(self, job_id: str) -> None:
        """Let one job's loop go (it checkpoints first) without changing its state, so another
        coordinator on the same state directory can take it over. Does not wait."""
        with self._lock:
            trainer = self._trainers.get(job_id)
        if trainer is not None:
            trainer.request_release()

    def shutdown(self, timeout: float | None = 60.0) -> None:
        """Let every loop go (each checkpoints first) without changing job states, so a new
        coordinator on the same state directory picks them up."""
        with self._lock:
            items = list(self._trainers.items())
            threads = dict(self._threads)
        for _, trainer in items:
            trainer.request_release()
        for job_id, _ in items:
            if threads[job_id] is not threading.current_thread():
                threads[job_id].join(timeout)

    def close(self, timeout: float | None = 60.0) -> None:
        """Shut down (see `shutdown`) and close the store; the pool stays open."""
        self.pool.remove_listener(self._workers_changed)
        with self._lock:
            self._closed = True
            if self._sync_retry is not None:
                self._sync_retry.cancel()
        self.shutdown(timeout)
        self.store.close()


class _Described:
    """What the pool says of each worker (live, draining or lost), asked once and only when
    an event needs it; {} for a worker it does not describe."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self._by_id: dict[str, dict] | None = None

    def get(self, worker_id: str) -> dict:
        if self._by_id is None:
            try:
                self._by_id = {d.get("worker_id"): d for d in self.pool.describe()}
            except Exception:  # noqa: BLE001 - a pool in trouble must not stop the sync
                log.exception("describing the %s pool", self.pool.kind)
                self._by_id = {}
        return self._by_id.get(worker_id, {})


def _submitted(config: JobConfig) -> str:
    length = f"{config.steps} steps" if config.steps else f"{config.epochs} epochs"
    name = f"{config.name!r}: " if config.name else ""
    return f"{name}{length} of {config.dataset}, batch size {config.batch_size}"


def _tree_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total
