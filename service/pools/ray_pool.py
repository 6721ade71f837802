"""Gradient workers as Ray actors (`serve --pool ray`).

The pool joins the Ray cluster at `address` (`ray.init(address=...)`), or starts a local Ray
when none is given and this process has not initialised Ray already. Each worker is one
`shardgrad.worker.ray_actor.GradientActor`, with one GPU when the cluster has GPUs.

Per job, the dataset's arrays are put into the object store once and each actor loads the job
before its first share of it. Per step, the flat parameters are put once (`ray.put`) and the
same reference goes to every actor; the gradients come back through the object store and
are read in place.

Actors on the coordinator's machine (those that can attach the pool's shared-memory probe,
found out when they load a job) skip the object store for the per-step buffers: they read the
parameters from, and write their gradients into, shared-memory segments the pool owns (see
.shared). A job's first share on an actor goes through the object store while the actor's
answer to the probe is on its way. Once it has answered, its shares go to the Unix socket the
answer names (see shardgrad.worker.local_channel) instead of through Ray's actor calls, which
cost about ten times as much per step; a socket that cannot be reached is given up for Ray.

An actor counts as live once it has answered a ping. `scale(n)` starts actors or retires the
newest ones: a retired actor gets no new work and is killed once its calls in flight are
done, so scaling takes effect at the next step. An actor that fails or misses a deadline is
killed and, while the pool is below its target, replaced by a fresh one.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import grpc

from shardgrad.worker import messages
from shardgrad.worker.client import SentShare
from shardgrad.worker.job import MODEL_ERROR, ModelError
from shardgrad.worker.local_channel import LocalChannel, LocalChannelUnavailable
from shardgrad.worker.ray_actor import create_actors

from ..datasets import Dataset
from .base import DispatchResult, JobSpec, StepPayload, WorkerError, WorkerPool
from .shared import SharedSteps

log = logging.getLogger(__name__)

STARTING, LIVE, DRAINING = "STARTING", "LIVE", "DRAINING"


@dataclass
class _Actor:
    id: str
    handle: object
    state: str = STARTING
    device: str = ""
    inflight: int = 0
    loaded: dict[str, object] = field(default_factory=dict)  # job id -> load_job ObjectRef
    shared: dict[str, bool] = field(default_factory=dict)  # job id -> can use shared memory
    local: LocalChannel | None = None  # the actor's Unix socket, once it named one

    def describe(self) -> dict:
        if self.state == DRAINING:
            state = "DRAINING"
        elif self.state == STARTING:
            state = "UNSPECIFIED"
        else:
            state = "BUSY" if self.inflight else "IDLE"
        return {
            "worker_id": self.id,
            "pool": "ray",
            "address": "",
            "device": self.device,
            "state": state,
            "loaded_jobs": sorted(self.loaded),
        }


class RayPool(WorkerPool):
    """Ray actors running shardgrad's gradient computer; see the module docstring."""

    kind = "ray"

    def __init__(
        self,
        workers: int | None = None,
        *,
        address: str | None = None,
        num_cpus_per_worker: float = 1.0,
        use_gpu: bool | None = None,
        compute_threads: int = 0,
        allowed_import_prefixes: Sequence[str] = (),
        init_kwargs: dict | None = None,
        actor_options: dict | None = None,
        shared_memory: bool = True,
    ) -> None:
        super().__init__()
        import ray  # noqa: PLC0415 - Ray is only needed by this pool

        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            kwargs = dict(init_kwargs or {})
            if address is None:
                kwargs.setdefault("include_dashboard", False)
            ray.init(address=address, **kwargs)
            self._owns_ray = True
        self.use_gpu = (
            bool(ray.cluster_resources().get("GPU", 0) > 0) if use_gpu is None else use_gpu
        )
        self.num_cpus_per_worker = num_cpus_per_worker
        self.compute_threads = int(compute_threads)
        self.allowed_import_prefixes = tuple(allowed_import_prefixes)
        self.actor_options = dict(actor_options or {})
        if workers is None:  # one per GPU, else one
            workers = max(1, int(ray.cluster_resources().get("GPU", 0)))
        self.target = 0
        self._lock = threading.RLock()
        self._actors: dict[str, _Actor] = {}
        self._jobs: dict[str, tuple[JobSpec, object]] = {}
        self._params: dict[str, tuple[StepPayload, object]] = {}
        self._ids = itertools.count()
        self._closed = False
        self._shared = SharedSteps() if shared_memory else None
        # Ray runs future callbacks on its own thread, where blocking Ray calls must not run;
        # results are turned into DispatchResults (and failed actors killed) here instead.
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sg-ray-results")
        # Each call on an actor's local channel waits for its answer on a thread of its own.
        self._local_calls = ThreadPoolExecutor(max_workers=32, thread_name_prefix="sg-ray-local")
        self.scale(workers)

    # ------------------------------------------------------------------ membership
    def live_workers(self) -> list[str]:
        with self._lock:
            return [a.id for a in self._actors.values() if a.state == LIVE]

    def describe(self) -> list[dict]:
        with self._lock:
            return [a.describe() for a in self._actors.values()]

    def _start_actor(self) -> None:
        (handle,) = create_actors(
            1,
            num_cpus=self.num_cpus_per_worker,
            use_gpu=self.use_gpu,
            allowed_import_prefixes=self.allowed_import_prefixes,
            **self.actor_options,
        )
        actor = _Actor(f"ray-{next(self._ids)}", handle)
        with self._lock:
            self._actors[actor.id] = actor
        ping = handle.ping.remote().future()
        ping.add_done_callback(lambda fut: self._defer(self._on_ready, actor, fut))

    def _on_ready(self, actor: _Actor, fut: Future) -> None:
        try:
            actor.device = fut.result()
        except Exception as exc:  # noqa: BLE001 - an actor that cannot start is dropped
            log.warning("ray actor %s did not start: %s", actor.id, exc)
            self._kill(actor.id)
            return
        with self._lock:
            if actor.state != STARTING or self._actors.get(actor.id) is not actor:
                return
            actor.state = LIVE
        log.info("ray actor %s is live on %s", actor.id, actor.device)
        self._notify()

    def _kill(self, actor_id: str) -> None:
        with self._lock:
            actor = self._actors.pop(actor_id, None)
        if actor is None:
            return
        if self._shared is not None:
            self._shared.forget_worker(actor_id)
        if actor.local is not None:
            actor.local.close()
        try:
            self._ray.kill(actor.handle, no_restart=True)
        except Exception as exc:  # noqa: BLE001 - already gone
            log.debug("killing ray actor %s: %s", actor_id, exc)
        self._notify()

    def scale(self, count: int) -> int:
        if count < 0:
            raise ValueError(f"worker count must be >= 0, got {count}")
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is closed")
            self.target = int(count)
            kept = [a for a in self._actors.values() if a.state != DRAINING]
            # Retire starting actors first, then the newest live ones.
            order = sorted(kept, key=lambda a: (a.state != STARTING, -int(a.id.split("-")[1])))
            retire = order[: max(0, len(kept) - count)]
            idle = []
            for a in retire:
                a.state = DRAINING
                if a.inflight == 0:
                    idle.append(a.id)
            missing = count - (len(kept) - len(retire))
        for actor_id in idle:
            self._kill(actor_id)
        for _ in range(max(0, missing)):
            self._start_actor()
        if retire:
            self._notify()
        return count

    def report_failure(self, worker_id: str, reason: str) -> None:
        log.warning("ray actor %s dropped: %s", worker_id, reason)
        self._kill(worker_id)
        self._replace_missing()

    def _replace_missing(self) -> None:
        with self._lock:
            if self._closed:
                return
            missing = self.target - sum(1 for a in self._actors.values() if a.state != DRAINING)
        for _ in range(max(0, missing)):
            self._start_actor()

    # ------------------------------------------------------------------ jobs
    def load_job(self, spec: JobSpec, dataset: Dataset) -> None:
        if self.compute_threads:
            spec = replace(spec, compute_threads=self.compute_threads)
        data = self._ray.put({spec.input_key: dataset.x, spec.target_key: dataset.y})
        with self._lock:
            self._jobs[spec.job_id] = (spec, data)
            for a in self._actors.values():
                a.loaded.pop(spec.job_id, None)
                a.shared.pop(spec.job_id, None)

    def release_job(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)
            self._params.pop(job_id, None)
            holders = [a for a in self._actors.values() if a.loaded.pop(job_id, None) is not None]
            for a in holders:
                a.shared.pop(job_id, None)
        if self._shared is not None:
            self._shared.release(job_id)
        for a in holders:
            a.handle.release_job.remote(job_id)  # fire and forget: unknown ids are no error

    def _params_ref(self, job_id: str, payload: StepPayload):
        """The step's parameters in the object store: put once, shared by every actor."""
        with self._lock:
            held = self._params.get(job_id)
            if held is not None and held[0] is payload:
                return held[1]
        ref = self._ray.put(payload.params)
        with self._lock:
            self._params[job_id] = (payload, ref)
        return ref

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
            actor = self._actors.get(worker_id)
            job = self._jobs.get(job_id)
            if actor is None or actor.state == STARTING:
                raise WorkerError(worker_id, "not a live actor of this pool")
            if job is None:
                raise WorkerError(worker_id, f"job {job_id} is not loaded")
            spec, data = job
            load = actor.loaded.get(job_id)
            if load is None:
                # Calls from one caller to an actor run in order: the load precedes the step.
                probe = self._shared.probe_name if self._shared is not None else ""
                load = actor.loaded[job_id] = actor.handle.load_job.remote(spec, data, probe)
            shared = actor.shared.get(job_id, False)
            actor.inflight += 1
        shards = [(int(k), payload.shards[int(k)]) for k in micro_shard_ids]
        sent = sum(int(idx.nbytes) for _, idx in shards)
        buffers = self._shared.share(spec, actor.id, payload, micro_shard_ids) if shared else None
        out: Future = Future()
        if buffers is not None and actor.local is not None:
            try:
                sent_share = self._send_local(actor, spec, payload.step, buffers, shards, deadline)
            except Exception as exc:  # noqa: BLE001 - a failed send fails the share
                self._settle(actor, WorkerError(actor.id, _details(exc)), out)
                return out
            if sent_share is not None:
                try:
                    self._local_calls.submit(
                        self._receive_local, actor, spec, load, sent_share, shards, deadline, out
                    )
                except RuntimeError as exc:  # the pool is closing
                    self._settle(actor, WorkerError(actor.id, str(exc)), out)
                return out
        if buffers is not None:
            ref = actor.handle.compute_shared.remote(job_id, payload.step, *buffers, shards)
        else:
            sent += payload.params.nbytes
            params = self._params_ref(job_id, payload)
            ref = actor.handle.compute.remote(job_id, payload.step, params, shards)
        ref.future().add_done_callback(
            lambda fut: self._defer(self._finish, actor, spec, load, fut, out, sent)
        )
        return out

    def _defer(self, fn, *args) -> None:
        try:
            self._finisher.submit(fn, *args)
        except RuntimeError:  # the pool closed: nobody waits for this any more
            pass

    def _send_local(self, actor: _Actor, spec, step, buffers, shards, deadline):
        """Send a share on the actor's local channel from the caller's thread, so that a
        step's requests leave back to back; None when the socket cannot be reached (the share
        then goes through Ray)."""
        channel = actor.local
        if channel is None:  # given up by another share meanwhile
            return None
        shared = messages.shared_buffers(*buffers)
        left = max(deadline - time.monotonic(), 1e-3)
        try:
            return SentShare.send(channel, spec, step, shards, shared, left)
        except LocalChannelUnavailable as exc:
            log.info("ray actor %s: local channel given up for Ray: %s", actor.id, exc)
            with self._lock:
                if actor.local is channel:
                    actor.local = None
            channel.close()
            return None

    def _receive_local(self, actor: _Actor, spec, load, sent, shards, deadline, out) -> None:
        """The answer to a share `_send_local` sent, settled into `out`."""
        try:
            result = sent.result(spec, max(deadline - time.monotonic(), 1e-3))
            value = self._result(actor, spec, load, result, sum(int(i.nbytes) for _, i in shards))
        except grpc.RpcError as exc:  # the actor's refusal
            value = WorkerError.from_status(actor.id, exc.code().name, exc.details() or "")
        except Exception as exc:  # noqa: BLE001 - every failure reaches the loop the same way
            value = WorkerError(actor.id, _details(exc))
        self._settle(actor, value, out)

    def _settle(self, actor: _Actor, value, out: Future) -> None:
        """The end of every share: the actor's count of calls in flight (a retired actor is
        killed after its last), then the loop's future."""
        kill = False
        with self._lock:
            actor.inflight -= 1
            if actor.state == DRAINING and actor.inflight == 0:
                kill = True
        if kill:
            self._kill(actor.id)
        if out.set_running_or_notify_cancel():
            if isinstance(value, WorkerError):
                out.set_exception(value)
            else:
                out.set_result(value)

    def _result(self, actor: _Actor, spec: JobSpec, load, result, sent: int) -> DispatchResult:
        if result.grads is None:  # written into the actor's shared-memory segment
            shared_bytes = self._shared.take_blocks(spec, actor.id, result)
            return DispatchResult.of(actor.id, result, sent, bytes_shared=shared_bytes)
        self._learn_shared(actor, spec.job_id, load)
        return DispatchResult.of(actor.id, result, sent, result.grads.nbytes)

    def _finish(self, actor: _Actor, spec: JobSpec, load, fut: Future, out: Future, sent: int):
        try:
            value = self._result(actor, spec, load, fut.result(), sent)
        except Exception as exc:  # noqa: BLE001 - every failure reaches the loop the same way
            cause = getattr(exc, "cause", None)  # what the actor raised, for a RayTaskError
            if isinstance(cause, ModelError):
                value = WorkerError(actor.id, f"{MODEL_ERROR}{cause}", model_fault=True)
            else:
                value = WorkerError(actor.id, self._explain(exc, load))
        self._settle(actor, value, out)

    def _learn_shared(self, actor: _Actor, job_id: str, load) -> None:
        """After a share through the object store, read the actor's answer to the probe
        (its load finished before the share did) to pick the path of its next shares."""
        if self._shared is None or job_id in actor.shared:
            return
        try:
            info = self._ray.get(load, timeout=5)
        except Exception:  # noqa: BLE001 - keep the object store for this actor
            info = {}
        with self._lock:
            if actor.loaded.get(job_id) is load:
                actor.shared[job_id] = bool(info.get("shared_memory", False))
                if actor.shared[job_id] and info.get("local_channel") and actor.local is None:
                    actor.local = LocalChannel(info["local_channel"], info["local_channel_secret"])

    def _explain(self, exc: Exception, load) -> str:
        """The failure's cause: a failed load_job explains a 'not loaded' compute."""
        try:
            self._ray.get(load, timeout=0)
        except self._ray.exceptions.RayTaskError as load_exc:
            return f"loading the job failed: {load_exc}"
        except Exception:  # noqa: BLE001, S110 - not finished, or the actor itself died
            pass
        return f"{type(exc).__name__}: {exc}"

    # ------------------------------------------------------------------ shutdown
    def close(self) -> None:
        with self._lock:
            self._closed = True
            actors = list(self._actors)
            self._jobs.clear()
            self._params.clear()
        for actor_id in actors:
            self._kill(actor_id)
        if self._shared is not None:
            self._shared.close()
        self._finisher.shutdown(wait=False, cancel_futures=True)
        self._local_calls.shutdown(wait=False, cancel_futures=True)
        if self._owns_ray:
            self._ray.shutdown()
        self._notify()


def _details(exc: Exception) -> str:
    """What went wrong on a local channel call: the worker's status, else the exception."""
    details = exc.details() if hasattr(exc, "details") else None
    return details or f"{type(exc).__name__}: {exc}"
