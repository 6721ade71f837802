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
pool names (see shardgrad.worker.shm). Only ids, stats and names travel through Ray.

`import ray` happens only in `create_actors`, so this module imports without Ray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .compute import GradientComputer
from .job import GradientResult, JobSpec
from .memory import retain_freed_memory
from .shm import Attachments, can_attach


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
        retain_freed_memory()  # the actor's process is its own: steps reuse their pages

    def ping(self) -> str:
        return self.device

    def load_job(self, spec: JobSpec, data: Mapping[str, np.ndarray], shm_probe: str = "") -> dict:
        """Build the job's model; `data` is the dataset's arrays (an ObjectRef put once).
        `shm_probe` names the pool's probe segment: the answer says whether this actor can
        use `compute_shared`."""
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
            "shared_memory": can_attach(shm_probe),
        }

    def compute(
        self,
        job_id: str,
        step: int,
        params: np.ndarray,
        shards: Sequence[tuple[int, np.ndarray]],
    ) -> GradientResult:
        """Gradient blocks for `shards` at `step`; `params` arrives from an ObjectRef."""
        computer = self.jobs.get(job_id)
        if computer is None:
            raise ValueError(f"job {job_id!r} is not loaded on this actor; call load_job first")
        computer.set_params(params, step)
        # Reusing the output buffer is safe: Ray serialises the result before the next call.
        return computer.compute(step, shards, reuse_output=True)

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
        computer = self.jobs.get(job_id)
        if computer is None:
            raise ValueError(f"job {job_id!r} is not loaded on this actor; call load_job first")
        segments = self.attached.setdefault(job_id, Attachments())
        out = computer.bind_shared(segments, step, params, grads, [k for k, _ in shards])
        result = computer.compute(step, shards, out=out)
        result.grads = None
        return result

    def release_job(self, job_id: str) -> bool:
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
