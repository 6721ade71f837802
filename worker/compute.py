"""The transport-free core of a gradient worker.

A `GradientComputer` builds a job's model once, keeps its parameters as views into one flat
buffer in the job's layout, and for a list of micro-shards returns the aligned subtree sums of
their gradients (see `reduction`) with each micro-shard's summed loss and sample count. The
gRPC server, the Ray actor and the coordinator's in-process pool all wrap this class, so a
micro-shard is computed the same way whatever carries it:

- the loss is evaluated with reduction="sum" (the coordinator divides by the batch size);
- each micro-shard's gradient starts from nothing (no accumulation across micro-shards);
- random ops (dropout) draw from a generator seeded from (job seed, step, micro-shard), and
  the process-wide generator is restored afterwards;
- BLAS runs with a fixed thread count (see `threads`);
- inf/nan in a loss or gradient is reported per micro-shard, never dropped or clipped;
- each micro-shard's BatchNorm batch statistics are reported with its loss (see
  `running_stats`): the worker's own running buffers never carry over between micro-shards.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager

import numpy as np

import shardgrad as sg
from shardgrad import backend, nn

from . import codec, threads
from .finite import all_finite
from .job import GradientResult, JobSpec, ModelError, ShardStat
from .layout import ParamLayout
from .reduction import block_range, maximal_blocks, reduce_block
from .running_stats import StatsRecorder
from .shm import Attachments

# Losses a job can name: those computed from (output, target). The others need a third
# input (a second embedding, a negative example, a variance) that a dataset row lacks.
_THREE_INPUTS = frozenset(
    {
        "CosineEmbeddingLoss",
        "GaussianNLLLoss",
        "MarginRankingLoss",
        "TripletMarginLoss",
        "TripletMarginWithDistanceLoss",
    }
)
LOSSES = tuple(n for n in nn.__all__ if n.endswith("Loss") and n not in _THREE_INPUTS)


class Cancelled(Exception):
    """The caller went away or its deadline passed between two micro-shards."""


def shard_seed(seed: int, step: int, shard: int) -> int:
    """The seed of micro-shard `shard` at `step`: the same on every worker."""
    state = np.random.SeedSequence([int(seed), int(step), int(shard)]).generate_state(1, np.uint64)
    return int(state[0]) & ((1 << 63) - 1)


_RNG_LOCK = threading.RLock()


@contextmanager
def _seeded(seed: int):
    """Run with the process-wide generator seeded to `seed`, restoring it afterwards.

    The generator is shared by the whole process, so micro-shards computed by several
    threads of one process (the coordinator's in-process pool) take turns here.
    """
    with _RNG_LOCK:
        previous_seed, previous_state = sg.initial_seed(), sg.get_rng_state()
        sg.manual_seed(seed)
        try:
            yield
        finally:
            sg.manual_seed(previous_seed)
            sg.set_rng_state(previous_state)


def build_model(model: Mapping, allowed_prefixes: Sequence[str] = ()) -> nn.Module:
    """A fresh Module from `{"spec": ...}` or `{"import_path": ..., "kwargs": ...}`."""
    if not isinstance(model, Mapping):
        raise ValueError(f"model must be an object, got {type(model).__name__}")
    spec, path = model.get("spec"), model.get("import_path")
    if (spec is None) == (path is None):
        raise ValueError("model needs exactly one of 'spec' and 'import_path'")
    if spec is None:
        spec = {"import": path, "kwargs": model.get("kwargs") or {}}
    elif model.get("kwargs"):
        raise ValueError("only an import_path model takes kwargs")
    return nn.from_spec(spec, allowed_prefixes=tuple(allowed_prefixes))


def build_loss(loss: Mapping) -> nn.Module:
    """The loss module with reduction="sum", whatever the job's loss would do on its own."""
    name = loss.get("name") if isinstance(loss, Mapping) else None
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}, got {name!r}")
    kwargs = dict(loss.get("kwargs") or {})
    reduction = kwargs.pop("reduction", "sum")
    if reduction != "sum":
        raise ValueError(
            f"loss reduction {reduction!r}: workers sum each micro-shard's loss and the "
            "coordinator divides by the batch size; leave reduction out"
        )
    try:
        return getattr(nn, name)(reduction="sum", **kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments for {name}: {exc}") from None


class _Scratch:
    """Reusable flat buffers for the partial sums inside a block."""

    def __init__(self, xp, numel: int, dtype) -> None:
        self.xp, self.numel, self.dtype, self.free = xp, numel, dtype, []

    def take(self):
        return self.free.pop() if self.free else self.xp.empty(self.numel, dtype=self.dtype)

    def give(self, buf) -> None:
        self.free.append(buf)


class GradientComputer:
    """One job's model, flat parameters and data on one device.

    Not thread-safe: one `compute` at a time (the transports serialise calls per job).
    """

    def __init__(
        self,
        job: JobSpec,
        data: Mapping[str, np.ndarray],
        device: str = "cpu",
        threads_share: int | None = None,
        allowed_import_prefixes: Sequence[str] = (),
    ) -> None:
        self.job = job
        self.device = backend.as_device(device)
        self.xp = backend.xp_for(self.device)
        self.threads = threads.set_blas_threads(
            job.compute_threads or threads_share or threads.cpu_share()
        )
        for key in (job.input_key, job.target_key):
            if key not in data:
                raise ValueError(f"dataset has no array {key!r} (it has {sorted(data)})")
        self.inputs, self.targets = data[job.input_key], data[job.target_key]
        if len(self.inputs) != len(self.targets):
            raise ValueError(
                f"dataset arrays {job.input_key!r} and {job.target_key!r} differ in length "
                f"({len(self.inputs)} vs {len(self.targets)})"
            )
        self.num_samples = len(self.inputs)

        model = build_model(job.model, allowed_import_prefixes)
        built = ParamLayout.from_module(model)
        if built.dtype != job.layout.dtype:
            model = model.to(dtype=getattr(sg, job.layout.dtype))
            built = ParamLayout.from_module(model)
        if built.fingerprint != job.layout.fingerprint:
            raise ValueError(
                "the model built from the job's spec does not match the job's parameter layout: "
                f"{_layout_diff(built, job.layout)}"
            )
        self.layout = job.layout
        self.model = model.to(self.device)
        self.model.train()
        self._bn = StatsRecorder(self.model)
        self.loss_fn = build_loss(job.loss).to(self.device)
        self._params = [p for _, p in self.model.named_parameters()]
        self.flat = self.xp.empty(self.layout.numel, dtype=self.layout.dtype)
        for p, view in zip(self._params, self.layout.views(self.flat).values()):
            view[...] = p._data
            p._data = view
        self._own = self.flat if self.device.type == "cpu" else None
        self._staging: np.ndarray | None = None
        self._buffers: dict[str, object] = {}
        self.params_step: int | None = None
        self._scratch = _Scratch(self.xp, self.layout.numel, self.layout.dtype)

    # ------------------------------------------------------------------ parameters
    def _bind(self, flat) -> None:
        self.flat = flat
        for p, view in zip(self._params, self.layout.views(flat).values()):
            p._data = view
            p._bump_version()

    def set_params(self, flat, step: int) -> None:
        """Use `flat` (the layout's dtype, 1-d) as the parameters of `step`.

        On CPU an aligned, contiguous array (a Ray object, a received message, the
        coordinator's own buffer) is used in place, without copying: the worker never writes
        to its parameters. Anything else is copied.
        """
        if not backend.is_array(flat):
            flat = np.asarray(flat)
        if flat.shape != (self.layout.numel,) or flat.dtype != np.dtype(self.layout.dtype):
            raise ValueError(
                f"parameters must be a ({self.layout.numel},) {self.layout.dtype} array, got "
                f"{flat.shape} {flat.dtype}"
            )
        if self.device.type == "cpu":
            if isinstance(flat, np.ndarray) and flat.flags.c_contiguous and flat.flags.aligned:
                self._bind(flat)
            else:
                self.host_param_buffer()[...] = backend.to_device(flat, self.device)
        elif isinstance(flat, np.ndarray):
            self.flat.set(np.ascontiguousarray(flat))
        else:
            self.flat[...] = flat
        self.params_step = step

    def bind_shared(
        self,
        segments: Attachments,
        step: int,
        params: tuple[str, int],
        grads: tuple[str, int],
        micro_shard_ids: Sequence[int],
    ) -> np.ndarray:
        """Use the coordinator's params segment as `step`'s parameters, and return the view of
        its grads segment that `compute(out=...)` writes these micro-shards' blocks into.

        `params` and `grads` are (segment name, bytes). ValueError when a size does not fit
        the job; shm.SharedMemoryUnavailable when a segment cannot be opened here.
        """
        layout = self.layout
        if params[1] != layout.nbytes:
            raise ValueError(f"shared params_nbytes {params[1]} != {layout.nbytes}")
        shape, dtype = self.output_shape(micro_shard_ids)
        need = shape[0] * shape[1] * dtype.itemsize
        if grads[1] < need:
            raise ValueError(f"shared grads_capacity {grads[1]} < {need} bytes of gradients")
        src = segments.get("params", params[0], layout.nbytes)
        dst = segments.get("grads", grads[0], need, writable=True)
        self.set_params(src.array(layout.dtype, layout.numel), step)
        return dst.array(dtype, shape[0] * shape[1]).reshape(shape)

    def host_param_buffer(self) -> np.ndarray:
        """A writable host buffer to receive parameters into; call `commit_params` after."""
        if self.device.type == "cpu":
            if self.flat is not self._own:
                self._bind(self._own)
            return self._own
        if self._staging is None:
            self._staging = np.empty(self.layout.numel, dtype=self.layout.dtype)
        return self._staging

    def commit_params(self, step: int) -> None:
        """The host buffer now holds `step`'s parameters (copied to the device if needed)."""
        if self.device.type == "cpu":
            for p in self._params:
                p._bump_version()
        else:
            self.flat.set(self._staging)
        self.params_step = step

    def invalidate_params(self) -> None:
        self.params_step = None

    # ------------------------------------------------------------------ gradients
    def compute(
        self,
        step: int,
        shards: Sequence[tuple[int, np.ndarray]],
        should_stop: Callable[[], bool] | None = None,
        reuse_output: bool = False,
        out: np.ndarray | None = None,
    ) -> GradientResult:
        """Gradients of `shards` [(micro-shard index, sample indices)] at the current params.

        With `reuse_output`, the result's `grads` lives in a buffer this computer reuses for
        the next call (no allocation, no page faults per step): the caller must have sent or
        serialised it before calling again. `out`, a host array of (blocks, numel) in the
        wire dtype (see `output_shape`), receives the gradients instead: a shared-memory
        segment the coordinator reads in place.
        """
        if self.params_step is None:
            raise ValueError("no parameters: call set_params (or receive them) first")
        start = time.perf_counter()
        k_total = self.job.num_micro_shards
        by_index = {}
        for k, idx in shards:
            by_index[int(k)] = self.check_indices(int(k), idx)
        blocks = maximal_blocks([int(k) for k, _ in shards], k_total)
        n = len(blocks)
        wdt = codec.numpy_wire_dtype(self.job.compression, self.layout.dtype)
        if out is not None and (out.shape != (n, self.layout.numel) or out.dtype != wdt):
            raise ValueError(
                f"out must be ({n}, {self.layout.numel}) {wdt}, got {out.shape} {out.dtype}"
            )
        direct = self.device.type == "cpu" and self.job.compression == "none"
        if direct and out is not None:
            acc = out
        elif direct:
            acc = self._buffer("host", np, n, self.layout.dtype, fresh=not reuse_output)
        else:
            acc = self._buffer("acc", self.xp, n, self.layout.dtype)
        stats: dict[int, ShardStat] = {}
        finite_blocks: list[bool] = []
        for j, block in enumerate(blocks):
            target = acc[j]
            first = [True]

            def leaf(level: int, index: int, target=target, first=first):
                if level != 0:
                    return None
                buf = target if first[0] else self._scratch.take()
                first[0] = False
                if should_stop is not None and should_stop():
                    raise Cancelled(f"stopped before micro-shard {index}")
                stats[index] = self._leaf(step, index, by_index[index], buf)
                return buf

            def add(a, b):
                self.xp.add(a, b, out=a)
                self._scratch.give(b)
                return a

            total = reduce_block(block, k_total, leaf, add)
            assert total is target  # the leftmost leaf is computed into target, sums added in
            # A sum of finite leaves can still overflow: a block of several is checked too.
            lo, hi = block_range(block, k_total)
            finite_blocks.append(
                all(stats[i].finite for i in range(lo, hi))
                and (hi - lo == 1 or all_finite(target, self.xp))
            )

        overflow = False
        if direct:
            host = acc
        else:
            staged = None
            if self.job.compression != "none":
                if self.device.type == "cpu" and out is not None:
                    staged = out
                else:
                    fresh = self.device.type == "cpu" and not reuse_output
                    staged = self._buffer("wire", self.xp, n, wdt, fresh=fresh)
            wire, overflow = codec.encode(acc, self.job.compression, out=staged)
            if self.device.type == "cpu":
                host = wire
            else:
                if out is None:
                    out = self._buffer("host", np, n, wdt, fresh=not reuse_output)
                host = wire.get(out=out)
        ordered = [stats[int(k)] for k, _ in shards]
        return GradientResult(
            job_id=self.job.job_id,
            step=step,
            blocks=blocks,
            grads=host,
            compression=self.job.compression,
            param_dtype=self.layout.dtype,
            stats=ordered,
            compute_seconds=time.perf_counter() - start,
            wire_overflow=overflow,
            nonfinite_shards=[s.index for s in ordered if not s.finite],
            blocks_finite=all(finite_blocks) and not overflow,
        )

    def output_shape(self, micro_shard_ids: Sequence[int]) -> tuple[tuple[int, int], np.dtype]:
        """The (blocks, numel) shape and dtype of the gradients a compute of these
        micro-shards returns (for a caller that provides `out`)."""
        blocks = maximal_blocks([int(k) for k in micro_shard_ids], self.job.num_micro_shards)
        wdt = codec.numpy_wire_dtype(self.job.compression, self.layout.dtype)
        return (len(blocks), self.layout.numel), np.dtype(wdt)

    def _buffer(self, key: str, xp, n_blocks: int, dtype, fresh: bool = False):
        """An (n_blocks, numel) array: kept and reused across calls unless `fresh`."""
        shape = (n_blocks, self.layout.numel)
        if fresh:
            return xp.empty(shape, dtype=dtype)
        buf = self._buffers.get(key)
        if buf is None or buf.shape[0] < n_blocks or buf.dtype != np.dtype(dtype):
            buf = self._buffers[key] = xp.empty(shape, dtype=dtype)
        return buf[:n_blocks]

    def check_indices(self, k: int, idx) -> np.ndarray:
        """`idx` as a 1-d integer array of rows of this job's dataset, else ValueError."""
        idx = np.asarray(idx)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise ValueError(f"micro-shard {k}: sample indices must be a 1-d integer array")
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.num_samples):
            raise ValueError(
                f"micro-shard {k}: sample indices must lie in [0, {self.num_samples}), got "
                f"[{int(idx.min())}, {int(idx.max())}]"
            )
        return idx

    def _batch(self, array: np.ndarray, idx: np.ndarray) -> sg.Tensor:
        part = array[idx]
        if part.dtype.kind == "f" and part.dtype != np.dtype(self.layout.dtype):
            part = part.astype(self.layout.dtype)
        elif part.dtype.kind in "iu" and part.dtype != np.int64:
            part = part.astype(np.int64)
        return sg.Tensor._make(backend.to_device(np.ascontiguousarray(part), self.device))

    def _leaf(self, step: int, index: int, idx: np.ndarray, dst) -> ShardStat:
        """One micro-shard's loss (sum) and gradient, written into `dst`."""
        if idx.size == 0:
            dst[...] = 0
            return ShardStat(index, 0.0, 0, True)
        for p in self._params:
            p.grad = None
        try:
            with _seeded(shard_seed(self.job.seed, step, index)), self._bn.recording() as bn:
                loss = self.loss_fn(
                    self.model(self._batch(self.inputs, idx)), self._batch(self.targets, idx)
                )
                loss.backward()
        except (Cancelled, MemoryError):  # the caller's or this worker's, not the model's
            raise
        except Exception as exc:
            raise ModelError(f"micro-shard {index}: {type(exc).__name__}: {exc}") from exc
        for slot, p in zip(self.layout.params, self._params):
            view = dst[slot.offset : slot.offset + slot.numel]
            if p.grad is None:
                view[...] = 0
            else:
                view[...] = p.grad._data.reshape(-1)
            p.grad = None
        value = float(loss.item())
        finite = math.isfinite(value) and all_finite(dst, self.xp)
        return ShardStat(index, value, int(idx.size), finite, bn.calls, bn.values)


def _layout_diff(got: ParamLayout, want: ParamLayout) -> str:
    if got.dtype != want.dtype:
        return f"dtype {got.dtype} vs {want.dtype}"
    a = [(p.name, p.shape) for p in got.params]
    b = [(p.name, p.shape) for p in want.params]
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return (
                f"parameter {i} is {x[0]}{list(x[1])} in the model, {y[0]}{list(y[1])} in the job"
            )
    return f"the model has {len(a)} parameters, the job {len(b)}"
