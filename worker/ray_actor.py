"""A gradient worker as a Ray actor: the same `GradientComputer`, carried by Ray.

The coordinator puts a step's flat parameters into the object store once (`ray.put`) and
passes the same ObjectRef to every actor; Ray hands each actor a read-only numpy array over
shared memory, which the computer uses in place as its parameters (no copy on CPU). The
dataset is put once per job the same way. Gradients come back as one (blocks, numel) array
that Ray writes into the object store once; the actor builds it in a buffer it reuses, which
is safe because Ray has serialised the return value before the next call starts.

An actor on the coordinator's own machine skips the object store for the per-step buffers:
`load_job` tells the pool whether the actor can attach its shared-memory probe, and
`compute_shared` then reads the parameters from, and writes the gradients into, segments the
pool names (see shardgrad.worker.shm). Only ids, stats and names travel through Ray. Such an
actor also serves the same step on a Unix socket (see .local_channel), named in its
`load_job` answer: a Ray actor call costs about as much as a gRPC one, several percent of a
small step, and the socket a tenth of that. Its calls run on the channel's threads beside
Ray's, so every method takes the actor's lock.

`import ray` happens only in `create_actors`, so this module imports without Ray.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .compute import Cancelled, GradientComputer
from .job import MODEL_ERROR, GradientResult, JobSpec, ModelError
from .memory import retain_freed_memory
from .shm import Attachments, SharedMemoryUnavailable, can_attach

log = logging.getLogger("shardgrad.worker")


class GradientActor:
    """The actor's methods; `create_actors` turns this class into Ray actors."""

    def __init__(
        self,
        device: str = "cpu",
        threads_share: int | None = None,
        allowed_import_prefixes: Sequence[str] = (),
    ) -> None:
        self.device = device
        self.threads_share = threads_share
        self.allowed_import_prefixes = tuple(allowed_import_prefixes)
        self.jobs: dict[str, GradientComputer] = {}
        self.attached: dict[str, Attachments] = {}
        self._lock = threading.Lock()  # Ray's calls and the local channel's
        self._channel = None  # a LocalChannelServer once a same-machine pool needs one
        self._channel_failed = False
        retain_freed_memory()  # the actor's process is its own: steps reuse their pages

    def ping(self) -> str:
        return self.device

    def load_job(self, spec: JobSpec, data: Mapping[str, np.ndarray], shm_probe: str = "") -> dict:
        """Build the job's model; `data` is the dataset's arrays (an ObjectRef put once).
        `shm_probe` names the pool's probe segment: the answer says whether this actor can
        use `compute_shared`, and where its local channel is."""
        with self._lock:
            info = self._load_job(spec, data)
        info["shared_memory"] = can_attach(shm_probe)
        channel = self._local_channel() if info["shared_memory"] else None
        if channel is not None:
            info["local_channel"], info["local_channel_secret"] = channel.path, channel.secret
        return info

    def _load_job(self, spec: JobSpec, data: Mapping[str, np.ndarray]) -> dict:
        held = self.jobs.get(spec.job_id)
        if held is not None:
            if held.job != spec:
                raise ValueError(
                    f"job {spec.job_id} is already loaded with another configuration; "
                    "release it first"
                )
        else:
            held = self.jobs[spec.job_id] = GradientComputer(
                spec,
                data,
                device=self.device,
                threads_share=self.threads_share,
                allowed_import_prefixes=self.allowed_import_prefixes,
            )
        return {
            "job_id": spec.job_id,
            "device": str(held.device),
            "num_samples": held.num_samples,
            "layout_fingerprint": spec.layout.fingerprint,
            "threads": held.threads,
        }

    def _local_channel(self):
        """The actor's LocalChannelServer, started on first use (grpc, which the channel
        borrows its status codes from, is imported only then: an actor used across hosts
        never needs it)."""
        if self._channel is None and not self._channel_failed:
            try:
                from shardgrad.protos import worker_pb2  # noqa: PLC0415

                from .local_channel import LocalChannelServer  # noqa: PLC0415

                self._channel = LocalChannelServer(
                    self._compute_local, worker_pb2.ComputeHeader.FromString
                )
            except (ImportError, OSError) as exc:
                log.info("no local channel (%s); steps come through Ray", exc)
                self._channel_failed = True
        return self._channel

    def compute(
        self,
        job_id: str,
        step: int,
        params: np.ndarray,
        shards: Sequence[tuple[int, np.ndarray]],
    ) -> GradientResult:
        """Gradient blocks for `shards` at `step`; `params` arrives from an ObjectRef."""
        with self._lock:
            computer = self._computer(job_id)
            computer.set_params(params, step)
            # Reusing the output buffer is safe: Ray serialises the result before the next
            # call, and the lock keeps the local channel's calls out until this one returns.
            return computer.compute(step, shards, reuse_output=True)

    def _computer(self, job_id: str) -> GradientComputer:
        computer = self.jobs.get(job_id)
        if computer is None:
            raise ValueError(f"job {job_id!r} is not loaded on this actor; call load_job first")
        return computer

    def compute_shared(
        self,
        job_id: str,
        step: int,
        params: tuple[str, int],
        grads: tuple[str, int],
        shards: Sequence[tuple[int, np.ndarray]],
    ) -> GradientResult:
        """`compute` through shared memory: `params` and `grads` are (segment name, bytes).
        The result's `grads` is None: the blocks are in the grads segment, in order."""
        with self._lock:
            result = self._compute_shared(job_id, step, params, grads, shards)
        result.grads = None
        return result

    def _compute_shared(
        self, job_id, step, params, grads, shards, should_stop: Callable[[], bool] | None = None
    ) -> GradientResult:
        computer = self._computer(job_id)
        segments = self.attached.setdefault(job_id, Attachments())
        out = computer.bind_shared(segments, step, params, grads, [k for k, _ in shards])
        return computer.compute(step, shards, should_stop=should_stop, out=out)

    def _compute_local(self, header, context):
        """`compute_shared` for a request on the local channel (a CallContext), refused with
        the statuses the gRPC worker uses for the same faults."""
        import grpc  # noqa: PLC0415 - loaded with the channel, see _local_channel

        from . import messages  # noqa: PLC0415
        from .wire import WireError  # noqa: PLC0415

        if not header.HasField("shared"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the local channel needs header.shared")
        with self._lock:
            computer = self.jobs.get(header.job_id)
            if computer is None:
                context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"job {header.job_id!r} is not loaded on this actor; call load_job first",
                )
            if header.layout_fingerprint != computer.job.layout.fingerprint:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"layout {header.layout_fingerprint[:12]!r} is not job {header.job_id}'s",
                )
            shared = header.shared
            try:
                shards = messages.shards_from_header(header, computer.job.num_micro_shards)
                result = self._compute_shared(
                    header.job_id,
                    header.step,
                    (shared.params, shared.params_nbytes),
                    (shared.grads, shared.grads_capacity),
                    shards,
                    should_stop=lambda: not context.is_active(),
                )
            except ModelError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{MODEL_ERROR}{exc}")
            except (WireError, ValueError) as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except SharedMemoryUnavailable as exc:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            except Cancelled:
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed mid-step")
            return messages.result_header(result, shared=True)

    def release_job(self, job_id: str) -> bool:
        with self._lock:
            attached = self.attached.pop(job_id, None)
            if attached is not None:
                attached.close()
            return self.jobs.pop(job_id, None) is not None


def create_actors(
    count: int,
    *,
    num_cpus: float = 1,
    use_gpu: bool | None = None,
    allowed_import_prefixes: Sequence[str] = (),
    **options,
) -> list:
    """`count` GradientActor handles; one GPU each when the cluster has GPUs.

    Each actor's BLAS uses as many threads as the CPUs it reserves (`num_cpus`, at least 1).
    Extra keyword arguments go to `.options()` (e.g. `scheduling_strategy`, `runtime_env`).
    """
    import ray  # noqa: PLC0415

    if use_gpu is None:
        use_gpu = ray.cluster_resources().get("GPU", 0) > 0
    remote = ray.remote(GradientActor).options(
        num_cpus=num_cpus, num_gpus=1 if use_gpu else 0, max_concurrency=1, **options
    )
    return [
        remote.remote(
            device="cuda" if use_gpu else "cpu",
            threads_share=max(1, int(num_cpus)),
            allowed_import_prefixes=allowed_import_prefixes,
        )
        for _ in range(count)
    ]
