"""What the training loop needs from a set of gradient workers, whatever runs them.

A pool knows which workers are alive, loads a job onto them, and runs one worker's share of a
step: given the step's flat parameters and the ids of some micro-shards, the worker returns
the aligned block sums of those micro-shards' gradients (see shardgrad.worker.reduction) and
each micro-shard's summed loss. The training loop never learns how the work travelled (a
thread, a Ray actor, a gRPC stream); it only sees futures that succeed, fail, or miss their
deadline, and treats the last two alike: the worker is dropped and its micro-shards go to the
others within the same step.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from shardgrad.worker.compute import JobSpec, ShardStat
from shardgrad.worker.job import MODEL_ERROR, GradientResult

from ..datasets import Dataset

__all__ = [
    "DispatchResult",
    "JobSpec",
    "ShardStat",
    "StepPayload",
    "WorkerError",
    "WorkerPool",
]


class WorkerError(RuntimeError):
    """A worker could not deliver its share of a step (crashed, unreachable, refused).

    `model_fault`: the job's model failed on the share's rows (the worker said so with a
    shardgrad.worker.job.ModelError): another worker would fail the same way, so the loop
    fails the job rather than dropping the worker.
    """

    def __init__(self, worker_id: str, message: str, model_fault: bool = False) -> None:
        super().__init__(f"worker {worker_id}: {message}")
        self.worker_id = worker_id
        self.detail = message
        self.model_fault = model_fault

    @classmethod
    def from_status(cls, worker_id: str, code_name: str, details: str) -> WorkerError:
        """From a refusal a worker sent (a gRPC status, or the same on a local channel)."""
        if code_name == "INVALID_ARGUMENT" and details.startswith(MODEL_ERROR):
            return cls(worker_id, details, model_fault=True)
        return cls(worker_id, f"{code_name}: {details}")


@dataclass(frozen=True)
class StepPayload:
    """One step's input, shared by every worker of the step.

    `params` is the flat parameter buffer (read-only for workers); `shards[k]` holds the
    dataset rows of micro-shard k.
    """

    job_id: str
    step: int
    params: np.ndarray
    shards: Sequence[np.ndarray]


@dataclass
class DispatchResult:
    """A worker's answer: gradient block sums keyed by tree node (level, index), widened back
    to the layout's dtype, and one ShardStat per micro-shard it computed."""

    worker_id: str
    blocks: dict[tuple[int, int], np.ndarray]
    shards: list[ShardStat]
    compute_seconds: float
    bytes_sent: int = 0  # over the wire or through Ray's object store
    bytes_received: int = 0
    bytes_shared: int = 0  # gradient bytes read in place from shared memory
    # The worker checked that every block holds only finite numbers (GradientResult).
    blocks_finite: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        worker_id: str,
        result: GradientResult,
        bytes_sent: int,
        bytes_received: int = 0,
        bytes_shared: int = 0,
    ) -> DispatchResult:
        """A worker's GradientResult (its `grads` in hand) as the loop sees it."""
        return cls(
            worker_id=worker_id,
            blocks=result.block_arrays(),
            shards=list(result.stats),
            compute_seconds=result.compute_seconds,
            bytes_sent=bytes_sent,
            bytes_received=bytes_received,
            bytes_shared=bytes_shared,
            blocks_finite=result.blocks_finite,
            extra={"wire_overflow": result.wire_overflow},
        )


class WorkerPool(ABC):
    """A set of workers behind one interface (in-process threads, Ray actors, gRPC servers).

    Implementations call `_notify()` whenever the live set changes, so a job waiting for
    workers wakes up at once instead of polling.
    """

    kind: str = "base"

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._listeners: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ the loop's view
    @abstractmethod
    def live_workers(self) -> list[str]:
        """Ids of the workers that may be given work now, in a stable order."""

    @abstractmethod
    def load_job(self, spec: JobSpec, dataset: Dataset) -> None:
        """Make the job known to the pool; workers load it before their first share of it
        (workers that join later load it lazily). Pools in the coordinator's process use
        `dataset`'s arrays; remote workers fetch it by `spec.dataset_sha256`."""

    @abstractmethod
    def release_job(self, job_id: str) -> None:
        """Free the job's model and data on every worker. Unknown ids are not an error."""

    @abstractmethod
    def dispatch(
        self,
        worker_id: str,
        job_id: str,
        payload: StepPayload,
        micro_shard_ids: Sequence[int],
        deadline: float,
    ) -> Future:
        """Start one worker's share of a step; the future gives a DispatchResult or raises
        WorkerError. `deadline` is a `time.monotonic()` value the worker should give up at."""

    def param_buffer(self, job_id: str, numel: int, dtype) -> np.ndarray:
        """A zeroed buffer for the job's flat parameters, which the loop's optimizer updates in
        place and passes (as `StepPayload.params`) to every step. Pools whose workers can map
        memory of this machine hand out shared memory here, so a step's parameters reach
        those workers without a copy; the default is private memory."""
        return np.zeros(numel, dtype=dtype)

    def report_failure(self, worker_id: str, reason: str) -> None:  # noqa: B027 - optional hook
        """The loop's verdict that a worker failed or missed a deadline. The default keeps no
        record; pools that can tell a dead worker from a slow one override it."""

    def describe(self) -> list[dict]:
        """One dict per worker for listings (keys as in coordinator.proto's WorkerInfo:
        worker_id, pool, state, and whatever else the pool knows)."""
        return [{"worker_id": w, "pool": self.kind, "state": "IDLE"} for w in self.live_workers()]

    # ------------------------------------------------------------------ scaling hooks
    def scale(self, count: int) -> int:
        """Ask for `count` workers; returns the count the pool aims for. Takes effect at the
        next step of each job."""
        raise NotImplementedError(f"the {self.kind} pool cannot be scaled")

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (no arguments, any thread) when the live set changes."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def wait_for_workers(self, count: int, timeout: float) -> bool:
        """Block until at least `count` workers are live or `timeout` seconds pass."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.live_workers()) >= count, timeout)

    def wake(self) -> None:
        """Wake every thread in `wait_for_workers` (e.g. so a stopped job notices)."""
        with self._changed:
            self._changed.notify_all()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()
        for cb in list(self._listeners):
            cb()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Stop the pool's workers and free its resources."""
