"""DataLoader worker processes, as torch's: each worker is a process that loads and collates
whole batches, so Python-heavy datasets (decoding, augmentation) load in parallel instead of
taking turns on one GIL.

The loader hands each worker batch indices through the worker's own queue, at most
`prefetch_factor` batches per worker ahead, and reorders what comes back on the shared result
queue by batch number. With an IterableDataset every worker iterates its own copy of the
dataset (`get_worker_info()` lets the dataset split the work) and batches are taken from the
workers in turn. A worker's exception comes back with its traceback and is raised in the
loader; a worker that dies, or a `timeout` that passes, is an error naming it.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ... import random as _random

# how often a waiting loader checks that its workers are alive
_POLL_SECONDS = 1.0


@dataclass
class WorkerInfo:
    """What get_worker_info() returns inside a worker."""

    id: int
    num_workers: int
    seed: int
    dataset: object


_info: WorkerInfo | None = None


def worker_info() -> WorkerInfo | None:
    return _info


class _Failure:
    """An exception raised in a worker, carried back with its formatted traceback."""

    def __init__(self, worker_id: int, exc: BaseException) -> None:
        self.worker_id = worker_id
        self.kind = type(exc)
        self.text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def reraise(self):
        message = f"Caught {self.kind.__name__} in DataLoader worker process {self.worker_id}.\n"
        message += f"Original {self.text}"
        try:
            error = self.kind(message)
        except Exception:  # noqa: BLE001 - an exception type that takes other arguments
            error = RuntimeError(message)
        raise error


class _End:
    """Sent by an IterableDataset worker whose copy of the dataset ran out."""


def _worker_loop(
    worker_id: int,
    num_workers: int,
    seed: int,
    dataset,
    fetch: Callable,
    index_queue,
    result_queue,
    init_fn: Callable | None,
    iterable: bool,
) -> None:
    """The body of a worker process: seed, initialise, then serve batches until told to stop."""
    global _info
    _info = WorkerInfo(worker_id, num_workers, seed, dataset)
    _random.manual_seed(seed % (2**63))
    np.random.seed(seed % (2**32))
    try:
        if init_fn is not None:
            init_fn(worker_id)
    except Exception as exc:  # noqa: BLE001 - reported to the loader
        result_queue.put((worker_id, (0, -1), _Failure(worker_id, exc)))
        return
    stream = iter(dataset) if iterable else None
    while True:
        task = index_queue.get()
        if task is None:
            return
        number, index = task
        try:
            batch = fetch(stream) if iterable else fetch(index)
        except StopIteration:
            result_queue.put((worker_id, number, _End()))
            continue
        except Exception as exc:  # noqa: BLE001 - reported to the loader
            batch = _Failure(worker_id, exc)
        result_queue.put((worker_id, number, batch))


class WorkerPool:
    """The worker processes of one DataLoader iteration (or of all, when persistent)."""

    def __init__(self, loader, fetch: Callable, iterable: bool) -> None:
        method = loader.multiprocessing_context
        ctx = (
            method
            if isinstance(method, multiprocessing.context.BaseContext)
            else multiprocessing.get_context(method)
        )
        self.timeout = loader.timeout
        self.num_workers = loader.num_workers
        self.result_queue = ctx.Queue()
        self.index_queues = []
        self.workers = []
        self.epoch = 0  # tags tasks, so a persistent pool ignores an abandoned epoch's batches
        base_seed = int(_random.stream(None, loader.generator).integers(0, 2**62))
        for worker_id in range(self.num_workers):
            index_queue = ctx.Queue()
            process = ctx.Process(
                target=_worker_loop,
                args=(
                    worker_id,
                    self.num_workers,
                    base_seed + worker_id,
                    loader.dataset,
                    fetch,
                    index_queue,
                    self.result_queue,
                    loader.worker_init_fn,
                    iterable,
                ),  # fmt: skip
                daemon=True,
            )
            process.start()
            self.index_queues.append(index_queue)
            self.workers.append(process)

    def send(self, worker_id: int, number: int, index) -> None:
        self.index_queues[worker_id].put((number, index))

    def receive(self) -> tuple[int, int, object]:
        """The next (worker, batch number, batch) from any worker, checking that they live."""
        waited = 0.0
        while True:
            step = _POLL_SECONDS if not self.timeout else min(_POLL_SECONDS, self.timeout - waited)
            try:
                return self.result_queue.get(timeout=max(step, 0.01))
            except queue.Empty:
                waited += step
            dead = [p for p in self.workers if not p.is_alive()]
            if dead:
                pids = ", ".join(str(p.pid) for p in dead)
                codes = ", ".join(str(p.exitcode) for p in dead)
                self.close()
                raise RuntimeError(
                    f"DataLoader worker (pid(s) {pids}) exited unexpectedly (exit code {codes})"
                )
            if self.timeout and waited >= self.timeout:
                self.close()
                raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds")

    def close(self) -> None:
        for index_queue in self.index_queues:
            try:
                index_queue.put(None)
            except (OSError, ValueError):
                pass
        for process in self.workers:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for q in [*self.index_queues, self.result_queue]:
            q.close()
            q.join_thread()
        self.workers, self.index_queues = [], []

    def __del__(self) -> None:
        if self.workers:
            self.close()


def map_style_batches(pool: WorkerPool, indices, prefetch: int):
    """Batches for `indices` (an iterator of sampler output), in order, workers in turn."""
    pool.epoch += 1
    epoch = pool.epoch
    sent = received = 0
    ready: dict[int, object] = {}
    exhausted = False

    def send_more() -> None:
        nonlocal sent, exhausted
        while not exhausted and sent - received < prefetch * pool.num_workers:
            try:
                index = next(indices)
            except StopIteration:
                exhausted = True
                return
            pool.send(sent % pool.num_workers, (epoch, sent), index)
            sent += 1

    send_more()
    while received < sent:
        while received not in ready:
            _, (batch_epoch, number), batch = pool.receive()
            if isinstance(batch, _Failure):
                pool.close()
                batch.reraise()
            if batch_epoch != epoch:
                continue  # left over from an epoch the caller stopped early
            ready[number] = batch
        batch = ready.pop(received)
        received += 1
        send_more()
        yield batch


def iterable_batches(pool: WorkerPool, prefetch: int):
    """Batches from workers that each iterate their own copy of the dataset, taken from the
    workers in turn until every one has run out."""
    live = list(range(pool.num_workers))
    asked = {w: 0 for w in live}
    taken = {w: 0 for w in live}
    ready: dict[tuple[int, int], object] = {}
    for w in live:
        for _ in range(prefetch):
            pool.send(w, asked[w], None)
            asked[w] += 1
    turn = 0
    while live:
        w = live[turn % len(live)]
        key = (w, taken[w])
        while key not in ready:
            worker, number, batch = pool.receive()
            if isinstance(batch, _Failure):
                pool.close()
                batch.reraise()
            ready[(worker, number)] = batch
        batch = ready.pop(key)
        taken[w] += 1
        if isinstance(batch, _End):
            live.remove(w)
            continue
        pool.send(w, asked[w], None)
        asked[w] += 1
        turn += 1
        yield batch
