"""The coordinator's shared-memory step buffers, for workers on its own machine.

Per job, one segment holds the step's parameters: written once per step, read by every
same-machine worker in place. Per (job, worker), one segment receives that worker's gradient
blocks. The RPC then carries only names and micro-shard ids; see shardgrad.worker.shm.

Who may write when:
- the parameters are written by `params()` at the step's first dispatch, and not again until
  the next step's, after the loop has every answer of this one (or dropped the worker);
- a worker's gradient segment is written by that worker during its share and read by the loop
  until the step ends. A second share of the same step for the same worker (it recomputes
  micro-shards another worker lost) would overwrite blocks the loop still holds, so `grads()`
  returns None for it and the pool sends that share over the wire instead.

A worker proves it can use shared memory once, when the job is loaded, by attaching the
pool's probe segment; workers that cannot (another host, another /dev/shm, another user) keep
using the wire. Nothing here changes a result: the same bytes arrive either way.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import numpy as np

from shardgrad.worker import codec
from shardgrad.worker.reduction import maximal_blocks
from shardgrad.worker.shm import Segment, remove_stale

from .base import JobSpec, StepPayload

log = logging.getLogger(__name__)

_PROBE_BYTES = 4096


@dataclass
class _Grads:
    segment: Segment
    step: int = -1  # the step whose blocks the segment holds


@dataclass
class _JobBuffers:
    params: Segment | None = None
    payload: StepPayload | None = None  # the payload the params segment holds
    grads: dict[str, _Grads] = field(default_factory=dict)


class SharedSteps:
    """Shared-memory parameters and gradient buffers of a pool's jobs (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, _JobBuffers] = {}
        self._closed = False
        removed = remove_stale()
        if removed:
            log.info("removed %d shared-memory segments left by stopped processes", len(removed))
        try:
            self._probe: Segment | None = Segment.create(_PROBE_BYTES)
        except OSError as exc:
            log.info("no shared memory for same-machine workers (%s); using the wire", exc)
            self._probe = None

    @property
    def probe_name(self) -> str:
        """The segment a worker attaches to show it shares this machine; "" when unavailable."""
        return self._probe.name if self._probe is not None else ""

    def param_buffer(self, job_id: str, numel: int, dtype) -> np.ndarray | None:
        """The job's params segment as a writable array for the loop to keep its parameters
        in: steps whose parameters are this array need no copy. None without shared memory."""
        nbytes = numel * np.dtype(dtype).itemsize
        fresh = self._create(nbytes)
        if fresh is None:
            return None
        with self._lock:
            job = self._jobs.setdefault(job_id, _JobBuffers())
            if job.params is not None:
                job.params.close()
            job.params, job.payload = fresh, None
        return fresh.array(dtype, numel)  # zero-filled, writable: this process owns it

    def params(self, job_id: str, payload: StepPayload) -> tuple[str, int] | None:
        """(segment name, bytes) holding the step's parameters, written on the step's first
        call unless they already live there (see `param_buffer`); None when no segment can
        be had (the caller uses the wire)."""
        flat = payload.params
        with self._lock:
            job = self._jobs.setdefault(job_id, _JobBuffers())
            if job.params is None or job.params.nbytes != flat.nbytes:
                fresh = self._create(flat.nbytes)
                if fresh is None:
                    return None
                if job.params is not None:
                    job.params.close()
                job.params, job.payload = fresh, None
            if job.payload is not payload:
                held = job.params.array(flat.dtype, flat.size)
                if held.ctypes.data != flat.ctypes.data:
                    held[...] = flat
                job.payload = payload
            return job.params.name, flat.nbytes

    def grads(self, job_id: str, worker_id: str, step: int, nbytes: int) -> tuple[str, int] | None:
        """(segment name, capacity) for `worker_id`'s blocks at `step`; None when the worker's
        segment already holds blocks of this step, or no segment can be had."""
        with self._lock:
            job = self._jobs.setdefault(job_id, _JobBuffers())
            held = job.grads.get(worker_id)
            if held is not None and held.step == step:
                return None
            if held is None or held.segment.nbytes < nbytes:
                fresh = self._create(nbytes)
                if fresh is None:
                    return None
                if held is not None:
                    held.segment.close()
                held = job.grads[worker_id] = _Grads(fresh)
            held.step = step
            return held.segment.name, held.segment.nbytes

    def share(
        self, spec: JobSpec, worker_id: str, payload: StepPayload, ids
    ) -> tuple[tuple[str, int], tuple[str, int]] | None:
        """The (params, grads) segments, as (name, bytes) each, for `worker_id`'s share of a
        step with micro-shards `ids`; None: send that share over the wire."""
        params = self.params(spec.job_id, payload)
        if params is None:
            return None
        n_blocks = len(maximal_blocks([int(k) for k in ids], spec.num_micro_shards))
        itemsize = codec.numpy_wire_dtype(spec.compression, spec.layout.dtype).itemsize
        nbytes = n_blocks * spec.layout.numel * itemsize
        grads = self.grads(spec.job_id, worker_id, payload.step, nbytes)
        return None if grads is None else (params, grads)

    def blocks(self, spec: JobSpec, worker_id: str, n_blocks: int) -> np.ndarray:
        """The `n_blocks` gradient blocks `worker_id` wrote for its share (in the wire dtype,
        one row each), viewed in place."""
        dtype = codec.numpy_wire_dtype(spec.compression, spec.layout.dtype)
        return self.grads_view(spec.job_id, worker_id, dtype, (n_blocks, spec.layout.numel))

    def take_blocks(self, spec: JobSpec, worker_id: str, result) -> int:
        """Point a result whose gradients a worker wrote into its segment (`result.grads` is
        None) at them, in place; returns their bytes."""
        result.grads = self.blocks(spec, worker_id, len(result.blocks))
        return int(result.grads.nbytes)

    def grads_view(self, job_id: str, worker_id: str, dtype, shape: tuple[int, int]) -> np.ndarray:
        """The blocks a worker wrote, viewed in place (valid until its next share)."""
        with self._lock:
            segment = self._jobs[job_id].grads[worker_id].segment
        count = shape[0] * shape[1]
        return segment.array(dtype, count).reshape(shape)

    def forget_worker(self, worker_id: str) -> None:
        """Free a departed worker's gradient segments."""
        with self._lock:
            held = [job.grads.pop(worker_id, None) for job in self._jobs.values()]
        for g in held:
            if g is not None:
                g.segment.close()

    def release(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is not None:
            _close_job(job)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            jobs, self._jobs = list(self._jobs.values()), {}
            probe, self._probe = self._probe, None
        for job in jobs:
            _close_job(job)
        if probe is not None:
            probe.close()

    def _create(self, nbytes: int) -> Segment | None:
        if self._closed or self._probe is None:
            return None
        try:
            return Segment.create(nbytes)
        except OSError as exc:
            log.warning("shared memory of %d bytes not available (%s); using the wire", nbytes, exc)
            return None


def _close_job(job: _JobBuffers) -> None:
    if job.params is not None:
        job.params.close()
    for g in job.grads.values():
        g.segment.close()
