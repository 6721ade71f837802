"""What a worker is asked to do and what it answers, independent of the transport.

`JobSpec` is fixed for a job's lifetime (sent once per job: the LoadJob RPC, or
`GradientActor.load_job`); `GradientResult` is a worker's answer for one step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import codec
from .layout import ParamLayout
from .reduction import Block

MODEL_ERROR = "model error: "
"""How a worker's refusal starts when the job's model failed (see ModelError)."""


class ModelError(Exception):
    """The job's model or loss raised on a micro-shard's rows. The same rows and parameters
    fail the same way on every worker, so the job is at fault, not the worker: the training
    loop fails the job with this message instead of dropping worker after worker. Running
    out of memory is not one: it depends on the worker."""


@dataclass(frozen=True)
class JobSpec:
    """What a worker needs to compute a job's gradients; fixed for the job's lifetime.

    `model` is `{"spec": Module.spec()}` or `{"import_path": "pkg.mod:Class", "kwargs": {...}}`;
    `loss` is `{"name": "CrossEntropyLoss", "kwargs": {...}}`.
    """

    job_id: str
    model: dict
    loss: dict
    layout: ParamLayout
    num_micro_shards: int
    seed: int = 0
    compression: str = "none"
    compute_threads: int = 0
    dataset_sha256: str = ""
    input_key: str = "x"
    target_key: str = "y"

    def __post_init__(self) -> None:
        if not self.job_id:
            raise ValueError("job_id must not be empty")
        if not isinstance(self.num_micro_shards, int) or self.num_micro_shards < 1:
            raise ValueError(f"num_micro_shards must be >= 1, got {self.num_micro_shards!r}")
        codec.check_compression(self.compression)
        if self.compute_threads < 0:
            raise ValueError("compute_threads must be >= 0")


@dataclass(frozen=True)
class ShardStat:
    """One micro-shard's summed loss and sample count, and what its forward contributes to
    the model's BatchNorm running statistics (see `running_stats`): `bn_calls[l]` is how many
    times tracked layer l ran, `bn_stats` their batch means and unbiased variances, flat
    (None for a model without such layers or an empty micro-shard)."""

    index: int
    loss: float
    num_samples: int
    finite: bool
    bn_calls: tuple[int, ...] = ()
    # An array has no single truth value, so it takes no part in == and hash.
    bn_stats: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass
class GradientResult:
    """A worker's answer for one step.

    `grads[j]` is the sum of the gradients of the micro-shards in `blocks[j]`, in the wire
    dtype of `compression` (bfloat16 as uint16); `block_arrays()` widens them back. A worker
    that wrote them into a shared-memory segment answers with `grads` None; the receiver
    puts its view of the segment there.
    """

    job_id: str
    step: int
    blocks: list[Block]
    grads: np.ndarray | None
    compression: str
    param_dtype: str
    stats: list[ShardStat]
    compute_seconds: float = 0.0
    wire_overflow: bool = False
    nonfinite_shards: list[int] = field(default_factory=list)
    # Every block, as sent, checked to hold only finite numbers (see ComputeResult).
    blocks_finite: bool = False

    def block_arrays(self) -> dict[Block, np.ndarray]:
        """Each block's gradient sum in the parameters' dtype, keyed by (level, index)."""
        dtype = "float32" if self.compression != "none" else self.param_dtype
        return {
            b: codec.decode(self.grads[j], self.compression, dtype)
            for j, b in enumerate(self.blocks)
        }
