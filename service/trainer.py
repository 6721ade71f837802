"""One job's training loop on the coordinator.

Each step: the batch b is a pure function of (seed, step) (see sampler), cut into the job's K
micro-shards; the live workers each get a contiguous run of micro-shards and return the
aligned block sums of their gradients; a worker that fails or misses the deadline is dropped
and its micro-shards are recomputed by the others within the same step. The blocks are then
added in the fixed tree order (shardgrad.worker.reduction), divided by |b|, and the core's
optimizer steps once over the one flat parameter buffer. Because every addition is the same
addition whatever the workers did, the parameters after every step are the same bytes for
any number of workers and any failures, and a job resumed from a checkpoint continues exactly
as if it had never stopped.

The model's BatchNorm running statistics follow the same rule: every micro-shard's batch
statistics come back with its loss and are folded into the coordinator's model in micro-shard
order (see shardgrad.worker.running_stats), so evaluation, checkpoints and the trained model
hold the buffers of one process that ran each step's micro-shards one after another.
"""

from __future__ import annotations

import errno
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import shardgrad
from shardgrad import nn
from shardgrad.serialization import load_safetensors_bytes, save_safetensors_bytes
from shardgrad.worker import reduction
from shardgrad.worker.finite import all_finite
from shardgrad.worker.layout import ParamLayout
from shardgrad.worker.running_stats import RunningStats

from . import builders, events
from .checkpoint import Checkpoint, CheckpointManager
from .config import MAX_PARAMETERS, JobConfig
from .datasets import DatasetRegistry
from .fsutil import atomic_write
from .gradients import GradientMean
from .pools.base import DispatchResult, JobSpec, ShardStat, StepPayload, WorkerError, WorkerPool
from .sampler import BatchSampler, cut_micro_shards, train_eval_split
from .store import JobState, Store, is_storage_fault
from .validation import loss_targets, model_inputs

log = logging.getLogger(__name__)

_EVAL_BATCH = 512

# A write the storage refuses (a full disk) is retried after these many seconds, doubling up
# to the maximum; a pause that goes on is logged again every _STORAGE_REPORT_EVERY_S.
_STORAGE_RETRY_FIRST_S = 0.05
_STORAGE_RETRY_MAX_S = 2.0
_STORAGE_REPORT_EVERY_S = 60.0
# OSErrors of files in the state directory (checkpoints, the trained model) that more room
# on the disk mends.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class JobFailed(RuntimeError):
    """The job cannot go on; the message becomes its FAILED reason."""


class _Interrupted(Exception):
    """The loop was asked to stop (by the user) or to let go (coordinator shutting down)."""


@dataclass
class TrainerOptions:
    """Coordinator-wide settings of every training loop."""

    # How long a job waits for workers (PENDING at the start, or mid-step after losing all of
    # them) before it fails.
    worker_grace_s: float = 300.0
    # How long one worker may take for its share of a step before it is dropped and its
    # micro-shards go to the others.
    step_timeout_s: float = 120.0
    # Called after every completed step with (job_id, step); tests use it to interfere.
    on_step: Callable[[str, int], None] | None = None
    # Module prefixes that model import paths (and LambdaLR functions) may name.
    allowed_import_prefixes: tuple[str, ...] = ()
    # The most parameters a submitted model may have (see JobConfig.validate).
    max_parameters: int = MAX_PARAMETERS


def job_dir(state_dir: str | Path, job_id: str) -> Path:
    return Path(state_dir) / "jobs" / job_id


def model_path(state_dir: str | Path, job_id: str) -> Path:
    """Where the trained state_dict is kept (safetensors) once a job ends."""
    return job_dir(state_dir, job_id) / "model.safetensors"


class Trainer:
    """Runs one job from its current state to SUCCEEDED, FAILED or STOPPED."""

    def __init__(
        self,
        job_id: str,
        config: JobConfig,
        store: Store,
        pool: WorkerPool,
        datasets: DatasetRegistry,
        state_dir: str | Path,
        options: TrainerOptions | None = None,
        resume_from: Checkpoint | None = None,
    ) -> None:
        """`resume_from`: the job's latest intact checkpoint when the caller has already read
        it (a restarted coordinator does, to report the step); read from disk otherwise."""
        self.job_id = job_id
        self._resume_from = resume_from
        self.config = config
        # The loop's own records (state, progress, metrics) pause the job while the database
        # cannot take them instead of failing it: see `_durable`.
        self.store = _PausingStore(store, self._durable)
        self._let_go_while_paused = False
        self.pool = pool
        self.datasets = datasets
        self.dir = job_dir(state_dir, job_id)
        self.state_dir = Path(state_dir)
        self.options = options or TrainerOptions()
        self.stop_requested = threading.Event()  # user asked: end STOPPED
        self.release_requested = threading.Event()  # shutdown: leave the state for a restart
        self.checkpoints = CheckpointManager(self.dir / "checkpoints", keep=config.keep_checkpoints)
        self.step = 0
        self.last_loss: float | None = None
        self.model = None
        self.optimizer = None
        self._last_checkpoint_step = -1
        self._unrecorded: tuple | None = None  # see _record_pending
        self._next_batch: tuple | None = None  # (step, batch, micro-shards): see _batch
        self.events = events.JobEvents(store, job_id)

    # ------------------------------------------------------------------ control
    def request_stop(self) -> None:
        self.stop_requested.set()
        self.pool.wake()

    def request_release(self) -> None:
        self.release_requested.set()
        self.pool.wake()

    def _check_interrupt(self) -> None:
        if self.stop_requested.is_set() or self.release_requested.is_set():
            raise _Interrupted

    # ------------------------------------------------------------------ entry point
    def run(self) -> JobState:
        """Train to the end; never raises for job-level problems (they become FAILED)."""
        try:
            return self._run()
        except _Interrupted:
            # The coordinator let go while the loop was paused on its way out (recording how
            # the job ended, its last checkpoint or its model): the record stays as it was and
            # the next coordinator resumes the job from its last checkpoint.
            try:
                return self.store.job(self.job_id).state
            except Exception:  # noqa: BLE001 - the store may be what is failing
                log.exception("job %s: reading its state", self.job_id)
                return JobState.RUNNING

    def _run(self) -> JobState:
        loaded = False
        try:
            self._setup()
            self._wait_for_workers(self.config.min_workers, starting=True)
            self.pool.load_job(self._job_spec(), self.dataset)
            loaded = True
            self._set_state(JobState.RUNNING)
            self.events.add("job_started", f"at step {self.step} of {self.total_steps}")
            self._train()
            self._finish_model()
            # The event goes first: whoever sees the final state then finds it in the log.
            self.events.add("job_succeeded", f"trained all {self.step} steps")
            self._set_state(JobState.SUCCEEDED)
            return JobState.SUCCEEDED
        except _Interrupted:
            if self.stop_requested.is_set():
                self._save_checkpoint_if_new()
                self._finish_model()
                self.events.add("job_stopped", f"stopped by request at step {self.step}")
                self._set_state(JobState.STOPPED, "stopped by request")
                return JobState.STOPPED
            self._save_checkpoint_if_new()
            return self.store.job(self.job_id).state
        except JobFailed as exc:
            log.warning("job %s failed: %s", self.job_id, exc)
            self.events.add("job_failed", str(exc))
            self._set_state(JobState.FAILED, str(exc))
            return JobState.FAILED
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the coordinator
            log.exception("job %s crashed", self.job_id)
            self.events.add("job_failed", f"internal error at step {self.step}: {exc!r}")
            self._set_state(JobState.FAILED, f"internal error at step {self.step}: {exc!r}")
            return JobState.FAILED
        finally:
            if loaded:
                try:
                    self.pool.release_job(self.job_id)
                except Exception:  # noqa: BLE001
                    log.exception("releasing job %s", self.job_id)

    def _set_state(self, state: JobState, reason: str = "") -> None:
        current = self.store.job(self.job_id).state
        if current != state:
            self.store.set_state(self.job_id, state, reason)

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        cfg = self.config
        self.dataset = self.datasets.resolve(cfg.dataset)
        self.train_rows, self.eval_rows = train_eval_split(
            cfg.seed, len(self.dataset), cfg.eval_fraction
        )
        self.sampler = BatchSampler(self.train_rows, cfg.batch_size, cfg.seed)
        self.total_steps = cfg.total_steps(len(self.train_rows))

        prefixes = self.options.allowed_import_prefixes
        model = builders.build_model(cfg.model, seed=cfg.seed, allowed_prefixes=prefixes)
        if cfg.dtype == "float64":
            model.double()
        else:
            model.float()
        if cfg.initial_weights is not None:
            state = load_safetensors_bytes(bytes(cfg.initial_weights))
            dt = next(model.parameters()).dtype
            model.load_state_dict(
                {k: v.to(dtype=dt) if v.is_floating_point() else v for k, v in state.items()}
            )
        self.model = model
        self.running = RunningStats(model)
        self.layout = ParamLayout.from_shapes(
            ((n, tuple(p.shape)) for n, p in model.named_parameters()), cfg.dtype
        )
        # The pool's buffer: shared memory when its workers can map it, so that the optimizer's
        # update is the parameters those workers read next step, with no copy in between.
        self.flat = self.pool.param_buffer(self.job_id, self.layout.numel, cfg.dtype)
        self.layout.flatten({n: p._data for n, p in model.named_parameters()}, out=self.flat)
        self.param = nn.Parameter(shardgrad.from_numpy(self.flat))
        self.optimizer = builders.build_optimizer(cfg.optimizer, [self.param])
        self._mean_gradient = GradientMean(self.layout.numel, self.flat.dtype)
        self.scheduler = builders.build_scheduler(cfg.lr_scheduler, self.optimizer, prefixes)
        self.loss_fn = builders.build_loss(cfg.loss)

        ck, self._resume_from = self._resume_from or self.checkpoints.latest(), None
        if ck is not None:
            if ck.params.shape != self.flat.shape or ck.params.dtype != self.flat.dtype:
                raise JobFailed(
                    f"checkpoint at step {ck.step} does not match the model's parameter layout"
                )
            self.flat[...] = ck.params
            self._restore_buffers(ck)
            self.optimizer.load_state_dict(ck.optimizer)
            if self.scheduler is not None and ck.scheduler is not None:
                self.scheduler.load_state_dict(ck.scheduler)
            self.step = ck.step
            log.info("job %s resumes from its checkpoint at step %d", self.job_id, ck.step)
            self.events.add("job_resumed", f"from its checkpoint at step {ck.step}")
        # Steps past the checkpoint (from an earlier run of this job) are redone, so their
        # records go; the history then holds every step once.
        self.store.delete_metrics_after(self.job_id, self.step)
        self._last_checkpoint_step = ck.step if ck is not None else -1
        self._bind_model_views()
        self.store.set_progress(self.job_id, self.step, self.total_steps)

    def _restore_buffers(self, ck) -> None:
        if ck.buffers is not None:
            try:
                self.running.load_state(ck.buffers)
            except ValueError as exc:
                raise JobFailed(f"checkpoint at step {ck.step}: {exc}") from None
        elif self.running:
            # Written before checkpoints held the running statistics: training goes on from
            # the initial ones, which the next steps then update.
            log.warning(
                "job %s: checkpoint at step %d holds no BatchNorm running statistics; they "
                "restart from their initial values",
                self.job_id,
                ck.step,
            )

    def _bind_model_views(self) -> None:
        """Point the coordinator's model parameters at the flat buffer (used for eval and the
        final state_dict)."""
        views = self.layout.views(self.param._data)
        for name, p in self.model.named_parameters():
            p._data = views[name]

    def _job_spec(self) -> JobSpec:
        cfg = self.config
        return JobSpec(
            job_id=self.job_id,
            model=builders.model_spec_dict(cfg.model),
            loss=builders.loss_spec_dict(cfg.loss),
            layout=self.layout,
            num_micro_shards=cfg.micro_shards,
            seed=cfg.seed,
            compression=cfg.compression,
            dataset_sha256=self.datasets.sha256_of(cfg.dataset),
        )

    # ------------------------------------------------------------------ workers
    def _usable_workers(self, exclude: set[str] = frozenset()) -> list[str]:
        live = [w for w in self.pool.live_workers() if w not in exclude]
        if len(live) > self.config.max_workers:
            # Jobs start at different offsets so that capped jobs spread over the pool.
            offset = hash(self.job_id) % len(live)
            live = (live[offset:] + live[:offset])[: self.config.max_workers]
        return live

    def _wait_for_workers(
        self, count: int, starting: bool = False, exclude: set[str] = frozenset()
    ) -> list[str]:
        """Live workers, at least `count`; waits PENDING up to the grace period, then fails.

        `exclude` holds workers that already failed this step: they get none of its work.
        """
        workers = self._usable_workers(exclude)
        if len(workers) >= count:
            return workers
        if not starting:
            self._set_state(JobState.PENDING, "waiting for workers")
        self.events.add("job_waiting" if starting else "job_paused", f"at step {self.step}")
        deadline = time.monotonic() + self.options.worker_grace_s
        while True:
            self._check_interrupt()
            left = deadline - time.monotonic()
            if left <= 0:
                raise JobFailed(
                    f"no workers: {len(workers)} of the {count} needed were live for "
                    f"{self.options.worker_grace_s:g} s (step {self.step})"
                )
            self.pool.wait_for_workers(count + len(exclude), min(left, 0.25))
            workers = self._usable_workers(exclude)
            if len(workers) >= count:
                if not starting:
                    self._set_state(JobState.RUNNING)
                    self.events.add("job_continued", f"workers are back at step {self.step}")
                return workers

    # ------------------------------------------------------------------ the loop
    def _train(self) -> None:
        try:
            self._train_steps()
        except BaseException:
            try:  # the last finished step's metrics, unless the store is what failed
                self._record_pending()
            except Exception as exc:  # noqa: BLE001 - the first failure is the one to report
                log.warning(
                    "job %s: metrics of step %d not recorded: %s", self.job_id, self.step, exc
                )
            raise
        self._record_pending()
        self._save_checkpoint_if_new()

    def _train_steps(self) -> None:
        cfg = self.config
        while self.step < self.total_steps:
            self._check_interrupt()
            t0 = time.perf_counter()
            batch, shards = self._batch(self.step)
            blocks, shard_losses, shard_stats, stats = self._compute_step(shards)
            n = len(batch)
            loss = reduction.tree_sum_values(shard_losses) / n
            grad = self._mean_gradient(blocks, len(shards), n)
            # Workers check the blocks they send; the sum is checked here only when some
            # worker did not (an older worker), and GradientMean reports its own overflow.
            finite = (
                bool(np.isfinite(loss))
                and grad is not None
                and (stats["blocks_finite"] or all_finite(grad))
            )
            step_no = self.step + 1
            skipped = False
            if not finite:
                if not cfg.skip_nonfinite:
                    what = "loss" if not np.isfinite(loss) else "gradient"
                    raise JobFailed(f"non-finite {what} at step {step_no}")
                skipped = True
                self.events.add("step_skipped", f"non-finite loss or gradient at step {step_no}")
            else:
                self.param.grad = shardgrad.from_numpy(grad)
                self.optimizer.step()
                self.param.grad = None
            # Running statistics are updated on a skipped step too: they come from the
            # forwards, which happened, as they would in torch when only the update is skipped.
            for i, shard in enumerate(shards):
                if len(shard):
                    self.running.fold(shard_stats[i].bn_calls, shard_stats[i].bn_stats)
            lr = float(self.optimizer.param_groups[0]["lr"])
            # A skipped step still counts: the schedule follows steps, not updates.
            if self.scheduler is not None:
                self.scheduler.step()
            self.step = step_no
            elapsed = time.perf_counter() - t0
            self.last_loss = loss
            # Written while the workers compute the next step (see `_record_pending`), or
            # before anything below reads the history.
            self._unrecorded = (step_no, loss, lr, n, elapsed, stats, skipped)
            if cfg.eval_fraction > 0 and (
                (cfg.eval_interval and step_no % cfg.eval_interval == 0)
                or step_no == self.total_steps
            ):
                self._record_pending()
                self._evaluate(step_no)
            if cfg.checkpoint_interval and step_no % cfg.checkpoint_interval == 0:
                self._record_pending()
                try:
                    self._save_checkpoint()
                except OSError as exc:  # a full disk must not end the job: the next one retries
                    log.warning(
                        "job %s: checkpoint at step %d not written: %s", self.job_id, step_no, exc
                    )
                    self.events.add("checkpoint_failed", f"step {step_no} not written: {exc}")
            if self.options.on_step is not None:
                self._record_pending()
                self.options.on_step(self.job_id, step_no)

    def _compute_step(self, shards: list[np.ndarray]):
        """The gradient blocks that partition the micro-shards, each micro-shard's loss, each
        non-empty micro-shard's ShardStat (by index), and stats."""
        k = len(shards)
        # A read-only view, not a copy: the optimizer writes the buffer only after every
        # share of this step is answered or abandoned (an abandoned share's answer is unused).
        params = self.flat.view()
        params.setflags(write=False)
        payload = StepPayload(self.job_id, self.step, params, shards)
        blocks: dict[tuple[int, int], np.ndarray] = {}
        losses: dict[int, float] = {}
        shard_stats: dict[int, ShardStat] = {}
        # Empty micro-shards (a last batch smaller than K) are known zeros: they never travel,
        # so they are always added at the leaves, whoever holds their neighbours.
        empty = [i for i, s in enumerate(shards) if len(s) == 0]
        if empty:
            zero = np.zeros(self.layout.numel, dtype=self.flat.dtype)
            for i in empty:
                blocks[(0, i)] = zero
                losses[i] = 0.0
        todo = [i for i, s in enumerate(shards) if len(s)]
        stats = {
            "compute_seconds": {},
            "bytes_sent": 0,
            "bytes_received": 0,
            "bytes_shared": 0,
            "workers": 0,
            "blocks_finite": True,  # every answer's blocks checked finite by its worker
        }
        used: set[str] = set()
        failed_workers: set[str] = set()
        model_failed = False  # a worker reported that the model failed on its share
        while todo:
            self._check_interrupt()
            workers = self._wait_for_workers(1, exclude=failed_workers)
            groups = [g for g in np.array_split(np.asarray(todo), len(workers)) if len(g)]
            self.events.shards_recomputed(self.step + 1, todo, failed_workers, workers)
            deadline = time.monotonic() + self.options.step_timeout_s
            futures = {}
            failed: list[int] = []
            for worker, group in zip(workers, groups):
                ids = [int(i) for i in group]
                try:
                    fut = self.pool.dispatch(worker, self.job_id, payload, ids, deadline)
                except WorkerError as exc:
                    self._drop(worker, str(exc))
                    failed_workers.add(worker)
                    failed.extend(ids)
                    continue
                futures[fut] = (worker, ids)
            pending = set(futures)
            self._while_workers_compute()
            while pending:
                left = deadline - time.monotonic()
                done, pending = wait(pending, timeout=max(left, 0), return_when=FIRST_COMPLETED)
                if not done:  # deadline passed for everything still pending
                    for fut in pending:
                        worker, ids = futures[fut]
                        fut.cancel()
                        self._drop(worker, f"missed its deadline at step {self.step + 1}")
                        failed_workers.add(worker)
                        failed.extend(ids)
                    break
                for fut in done:
                    worker, ids = futures[fut]
                    try:
                        res: DispatchResult = fut.result()
                        self._accept(res, ids, k, blocks, losses, shard_stats)
                    except Exception as exc:  # noqa: BLE001 - any failure drops the worker...
                        if isinstance(exc, WorkerError) and exc.model_fault:
                            # ...but the model's: once may be a worker's fault dressed as the
                            # model's, twice (on the retry) is the job's.
                            if model_failed:
                                raise JobFailed(f"step {self.step + 1}: {exc.detail}") from None
                            model_failed = True
                            log.warning("job %s: %s; trying once more", self.job_id, exc)
                        else:
                            self._drop(worker, f"failed at step {self.step + 1}: {exc}")
                            failed_workers.add(worker)
                        failed.extend(ids)
                        continue
                    used.add(worker)
                    stats["blocks_finite"] = stats["blocks_finite"] and res.blocks_finite
                    stats["compute_seconds"][worker] = (
                        stats["compute_seconds"].get(worker, 0.0) + res.compute_seconds
                    )
                    stats["bytes_sent"] += res.bytes_sent
                    stats["bytes_received"] += res.bytes_received
                    stats["bytes_shared"] += res.bytes_shared
            todo = sorted(failed)
        stats["workers"] = len(used)
        return blocks, [losses[i] for i in range(k)], shard_stats, stats

    def _accept(
        self, res: DispatchResult, ids: list[int], k: int, blocks, losses, shard_stats
    ) -> None:
        """Check a worker's answer covers exactly what it was asked, then keep it."""
        expected = reduction.maximal_blocks(ids, k)
        if sorted(res.blocks) != sorted(expected):
            raise WorkerError(
                res.worker_id, f"returned blocks {sorted(res.blocks)}, expected {expected}"
            )
        got = {s.index: s for s in res.shards}
        if sorted(got) != sorted(ids):
            raise WorkerError(res.worker_id, "returned stats for the wrong micro-shards")
        for key, arr in res.blocks.items():
            if arr.shape != (self.layout.numel,):
                raise WorkerError(res.worker_id, f"block {key} has shape {arr.shape}")
        for i in ids:
            try:
                self.running.check(got[i].bn_calls, got[i].bn_stats)
            except ValueError as exc:
                raise WorkerError(res.worker_id, f"micro-shard {i}: {exc}") from None
        for key, arr in res.blocks.items():
            blocks[key] = arr if arr.dtype == self.flat.dtype else arr.astype(self.flat.dtype)
        for i in ids:
            losses[i] = float(got[i].loss)
            shard_stats[i] = got[i]

    def _drop(self, worker: str, reason: str) -> None:
        log.warning("job %s drops worker %s: %s", self.job_id, worker, reason)
        self.events.add("worker_dropped", f"worker {worker} dropped: {reason}", worker)
        self.pool.report_failure(worker, reason)

    def _batch(self, step: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """The step's batch and its micro-shards: prepared while the last step computed, or
        drawn now."""
        ready, self._next_batch = self._next_batch, None
        if ready is not None and ready[0] == step:
            return ready[1], ready[2]
        batch = self.sampler.batch(step)
        return batch, cut_micro_shards(batch, self.config.micro_shards)

    def _while_workers_compute(self) -> None:
        """What needs nothing from the step in flight, done while its shares compute instead
        of between steps, where every worker would wait for it: the last step's metrics row,
        and the next step's batch (the batch is a function of the step alone; a new epoch's
        permutation of a large dataset takes milliseconds)."""
        self._record_pending()
        following = self.step + 1
        if following < self.total_steps and self._next_batch is None:
            self._next_batch = (following, *self._batch(following))

    # ------------------------------------------------------------------ metrics, eval
    def _record_pending(self) -> None:
        """Write the last finished step's metrics row, if not yet written.

        The loop writes a step's row once the next step's shares are out: the row is a
        database transaction (about 0.3 ms), and written between steps it would keep every
        worker waiting for it. Whatever reads the history (evaluation, checkpoints, the
        `on_step` hook, the end of the job) has the row written first.
        """
        if self._unrecorded is not None:
            args, self._unrecorded = self._unrecorded, None
            self._record(*args)

    def _record(self, step, loss, lr, n, elapsed, stats, skipped) -> None:
        values = {
            "loss": loss,
            "lr": lr,
            "samples": n,
            "samples_per_s": n / elapsed if elapsed > 0 else 0.0,
            "step_seconds": elapsed,
            "workers": stats["workers"],
            "worker_compute_seconds": stats["compute_seconds"],
            "bytes_sent": stats["bytes_sent"],
            "bytes_received": stats["bytes_received"],
            "bytes_shared": stats["bytes_shared"],
        }
        if skipped:
            values["skipped_nonfinite"] = True
        self.store.record_step(self.job_id, step, values)

    def _evaluate(self, step: int) -> dict:
        """Loss and/or accuracy of the current parameters on the held-out rows."""
        cfg = self.config
        self._bind_model_views()
        self.model.eval()
        ds = self.dataset
        total_loss, correct = 0.0, 0
        with shardgrad.no_grad():
            for start in range(0, len(self.eval_rows), _EVAL_BATCH):
                rows = self.eval_rows[start : start + _EVAL_BATCH]
                out = self.model(model_inputs(ds.x[rows], cfg.dtype))
                if "loss" in cfg.eval_metrics:
                    total_loss += float(self.loss_fn(out, loss_targets(ds.y[rows], cfg.dtype)))
                if "accuracy" in cfg.eval_metrics:
                    pred = np.asarray(out.detach().numpy()).argmax(axis=1)
                    correct += int((pred == ds.y[rows]).sum())
        self.model.train()
        n = len(self.eval_rows)
        values: dict = {"samples": n}
        if "loss" in cfg.eval_metrics:
            values["loss"] = total_loss / n
        if "accuracy" in cfg.eval_metrics:
            values["accuracy"] = correct / n
        self.store.add_metrics(self.job_id, step, "eval", values)
        return values

    # ------------------------------------------------------------------ persistence
    def _save_checkpoint(self) -> None:
        sampler_state = self.sampler.state(self.step)
        self.checkpoints.save(
            self.step,
            self.flat,
            self.optimizer.state_dict(),
            self.scheduler.state_dict() if self.scheduler is not None else None,
            buffers=self.running.state() if self.running else None,
            meta={
                "job_id": self.job_id,
                "sampler": sampler_state,
                # The data order and every worker-side random draw derive from (seed, step).
                "rng": {"seed": self.config.seed, "step": self.step},
                "layout_fingerprint": self.layout.fingerprint,
                "last_loss": self.last_loss,
            },
        )
        self._last_checkpoint_step = self.step
        self.events.add("checkpoint_written", f"checkpoint at step {self.step} written")

    def _save_checkpoint_if_new(self) -> None:
        if self.optimizer is None:
            return
        if self._let_go_while_paused:
            # The parameters in memory may be a step ahead of the recorded history: the last
            # checkpoint written stays the point to resume from.
            return
        if self._last_checkpoint_step != self.step:
            self._durable(f"its checkpoint at step {self.step}", self._save_checkpoint)

    def _finish_model(self) -> None:
        """Keep the trained state_dict as safetensors for clients to fetch."""
        if self.model is None:
            return
        self._bind_model_views()
        data = save_safetensors_bytes(self.model.state_dict())
        self._durable(
            "its trained model", atomic_write, model_path(self.state_dir, self.job_id), data
        )

    # ------------------------------------------------------------------ storage faults
    def _durable(self, what: str, write: Callable, *args, **kwargs):
        """`write(*args, **kwargs)`, pausing the job while the storage cannot take it.

        A full or failing disk is not the job's fault and mends once someone makes room, so
        the loop neither fails the job (recording FAILED needs the same disk) nor trains past
        what it could record: it retries in place, with backoff, and then carries on as if
        nothing had happened, so the history, the checkpoints and the parameters are those of
        an undisturbed run. A stop request waits for the write (recording STOPPED needs the
        database too). Only the coordinator letting go ends a pause early: the job then
        resumes from its last checkpoint, which never runs ahead of the recorded history.
        """
        delay = _STORAGE_RETRY_FIRST_S
        paused_at = reported_at = None
        while True:
            try:
                result = write(*args, **kwargs)
            except Exception as exc:
                if not _is_storage_fault(exc):
                    raise
                now = time.monotonic()
                if paused_at is None:
                    paused_at = reported_at = now
                    log.warning(
                        "job %s paused at step %d: cannot write %s (%s); retrying until the "
                        "disk takes it",
                        self.job_id,
                        self.step,
                        what,
                        exc,
                    )
                elif now - reported_at >= _STORAGE_REPORT_EVERY_S:
                    reported_at = now
                    log.warning(
                        "job %s still paused at step %d after %.0f s: cannot write %s (%s)",
                        self.job_id,
                        self.step,
                        now - paused_at,
                        what,
                        exc,
                    )
                if self.release_requested.wait(delay):
                    self._let_go_while_paused = True
                    log.warning(
                        "job %s let go while paused at step %d; it resumes from its last "
                        "checkpoint",
                        self.job_id,
                        self.step,
                    )
                    raise _Interrupted from None
                delay = min(2 * delay, _STORAGE_RETRY_MAX_S)
                continue
            if paused_at is not None:
                log.warning(
                    "job %s continues at step %d: wrote %s after a pause of %.1f s",
                    self.job_id,
                    self.step,
                    what,
                    time.monotonic() - paused_at,
                )
            return result


class _PausingStore:
    """The store as a training loop sees it: the loop's own records go through
    `Trainer._durable` (a storage fault pauses the job); reads and every other call, such
    as best-effort events, go straight to the store."""

    _RECORDS = {
        "set_state": "its state",
        "set_progress": "its progress",
        "add_metrics": "its metrics",
        "record_step": "its metrics and progress",
        "delete_metrics_after": "its metrics",
    }

    def __init__(self, store: Store, durable: Callable) -> None:
        self._store = store
        self._durable = durable

    def __getattr__(self, name: str):
        attr = getattr(self._store, name)
        what = self._RECORDS.get(name)
        if what is None:
            return attr
        return functools.partial(self._durable, f"{what} to the job database", attr)


def _is_storage_fault(exc: BaseException) -> bool:
    """A write refused for want of room or by a failing database, which may go through later."""
    if isinstance(exc, OSError) and exc.errno in _NO_ROOM:
        return True
    return is_storage_fault(exc)
