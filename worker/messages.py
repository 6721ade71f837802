"""Worker messages to and from the dataclasses of `job`: one place, used by both ends.

Every `*_from_*` function validates what it reads and raises `WireError` (INVALID_ARGUMENT)
with a message that names the offending field.
"""

from __future__ import annotations

import json

import numpy as np

from shardgrad.protos import common_pb2, worker_pb2

from . import codec, wire
from .job import GradientResult, JobSpec, ShardStat
from .reduction import block_range, maximal_blocks
from .wire import WireError

MAX_JSON_BYTES = 1 << 20


def _json_object(text: str, what: str) -> dict:
    if len(text) > MAX_JSON_BYTES:
        raise WireError(f"{what} is larger than 1 MiB")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise WireError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise WireError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def job_to_request(spec: JobSpec, shm_probe: str = "") -> worker_pb2.LoadJobRequest:
    return worker_pb2.LoadJobRequest(
        shm_probe=shm_probe,
        job_id=spec.job_id,
        model_json=json.dumps(spec.model, sort_keys=True),
        loss_json=json.dumps(spec.loss, sort_keys=True),
        layout=wire.layout_to_proto(spec.layout),
        dataset=common_pb2.DatasetRef(
            sha256=spec.dataset_sha256, input_key=spec.input_key, target_key=spec.target_key
        ),
        options=worker_pb2.JobOptions(
            num_micro_shards=spec.num_micro_shards,
            compression=wire.COMPRESSION_TO_PROTO[spec.compression],
            compute_threads=spec.compute_threads,
            seed=spec.seed,
        ),
    )


def job_from_request(req: worker_pb2.LoadJobRequest) -> JobSpec:
    if not req.job_id:
        raise WireError("job_id is empty")
    if not req.HasField("layout"):
        raise WireError("layout is missing")
    if req.options.compression not in wire.COMPRESSION_FROM_PROTO:
        raise WireError(f"unknown gradient compression {req.options.compression}")
    if req.options.num_micro_shards < 1:
        raise WireError("options.num_micro_shards must be at least 1")
    try:
        return JobSpec(
            job_id=req.job_id,
            model=_json_object(req.model_json, "model_json"),
            loss=_json_object(req.loss_json, "loss_json"),
            layout=wire.layout_from_proto(req.layout),
            num_micro_shards=req.options.num_micro_shards,
            seed=req.options.seed,
            compression=wire.COMPRESSION_FROM_PROTO[req.options.compression],
            compute_threads=req.options.compute_threads,
            dataset_sha256=req.dataset.sha256,
            input_key=req.dataset.input_key or "x",
            target_key=req.dataset.target_key or "y",
        )
    except ValueError as exc:
        raise WireError(str(exc)) from None


def shared_buffers(params: tuple[str, int], grads: tuple[str, int]) -> worker_pb2.SharedBuffers:
    """The SharedBuffers of a share whose (params, grads) segments are (name, bytes) each."""
    return worker_pb2.SharedBuffers(
        params=params[0], params_nbytes=params[1], grads=grads[0], grads_capacity=grads[1]
    )


def compute_header(
    job_id: str,
    step: int,
    fingerprint: str,
    shards,
    params_nbytes: int,
    shared: worker_pb2.SharedBuffers | None = None,
) -> worker_pb2.ComputeHeader:
    return worker_pb2.ComputeHeader(
        shared=shared,
        job_id=job_id,
        step=step,
        layout_fingerprint=fingerprint,
        shards=[
            worker_pb2.MicroShard(
                index=int(k), sample_indices=wire.tensor_to_proto(np.asarray(idx, dtype=np.int64))
            )
            for k, idx in shards
        ],
        params_nbytes=params_nbytes,
        byte_order=wire.LITTLE,
    )


def shards_from_header(header: worker_pb2.ComputeHeader, num_micro_shards: int) -> list:
    """[(index, int64 indices)] from a header, checked against K (not against the dataset)."""
    if not header.shards:
        raise WireError("the request names no micro-shards")
    shards = []
    for s in header.shards:
        idx = wire.tensor_from_proto(s.sample_indices, f"micro-shard {s.index} sample_indices")
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise WireError(f"micro-shard {s.index}: sample_indices must be a 1-d int64 tensor")
        shards.append((s.index, idx))
    try:
        maximal_blocks([k for k, _ in shards], num_micro_shards)
    except ValueError as exc:
        raise WireError(str(exc)) from None
    return shards


def result_header(result: GradientResult, shared: bool = False) -> worker_pb2.ComputeResult:
    """The reply header; `shared`: the gradients are in the request's shared grads segment."""
    return worker_pb2.ComputeResult(
        grads_shared=shared,
        job_id=result.job_id,
        step=result.step,
        blocks=[worker_pb2.Block(level=lv, index=i) for lv, i in result.blocks],
        dtype=wire.dtype_to_proto(codec.wire_dtype(result.compression, result.param_dtype)),
        byte_order=wire.LITTLE,
        grads_nbytes=result.grads.nbytes,
        shards=[_stat_to_proto(s) for s in result.stats],
        nonfinite_shards=result.nonfinite_shards,
        compute_seconds=result.compute_seconds,
        wire_overflow=result.wire_overflow,
        blocks_finite=result.blocks_finite,
    )


_COMPRESSION_OF_DTYPE = {
    common_pb2.DTYPE_FLOAT16: "fp16",
    common_pb2.DTYPE_BFLOAT16: "bf16",
    common_pb2.DTYPE_FLOAT32: "none",
    common_pb2.DTYPE_FLOAT64: "none",
}


def result_from_header(
    header: worker_pb2.ComputeResult, num_micro_shards: int, numel: int, grads: np.ndarray | None
) -> GradientResult:
    """The result a header describes, around the gradient array already received (None for
    gradients in shared memory, which the receiver views itself)."""
    if header.dtype not in _COMPRESSION_OF_DTYPE:
        raise WireError(f"gradients cannot travel as dtype {header.dtype}")
    blocks = [(b.level, b.index) for b in header.blocks]
    try:
        for b in blocks:
            block_range(b, num_micro_shards)
    except ValueError as exc:
        raise WireError(str(exc)) from None
    dt = wire.dtype_from_proto(header.dtype, header.byte_order)
    if header.grads_nbytes != len(blocks) * numel * dt.itemsize:
        raise WireError(
            f"grads_nbytes {header.grads_nbytes} != {len(blocks)} blocks x {numel} x {dt.itemsize}"
        )
    return GradientResult(
        job_id=header.job_id,
        step=header.step,
        blocks=blocks,
        grads=grads,
        compression=_COMPRESSION_OF_DTYPE[header.dtype],
        param_dtype="float64" if header.dtype == common_pb2.DTYPE_FLOAT64 else "float32",
        stats=[_stat_from_proto(s) for s in header.shards],
        compute_seconds=header.compute_seconds,
        wire_overflow=header.wire_overflow,
        nonfinite_shards=list(header.nonfinite_shards),
        blocks_finite=header.blocks_finite,
    )


def _stat_to_proto(s: ShardStat) -> worker_pb2.ShardStats:
    msg = worker_pb2.ShardStats(
        index=s.index, loss=s.loss, num_samples=s.num_samples, finite=s.finite
    )
    if s.bn_calls:
        msg.bn_calls.extend(s.bn_calls)
    if s.bn_stats is not None:
        msg.bn_stats.CopyFrom(wire.tensor_to_proto(s.bn_stats))
    return msg


def _stat_from_proto(s: worker_pb2.ShardStats) -> ShardStat:
    """A ShardStat, with its running statistics checked for what the message alone can tell:
    one 1-d float array exactly when some layer ran. Whether they fit the model's layers is
    for the receiver, which knows the model (see running_stats.RunningStats.check)."""
    values = None
    if s.HasField("bn_stats"):
        values = wire.tensor_from_proto(s.bn_stats, f"micro-shard {s.index} bn_stats")
        if values.ndim != 1 or values.dtype.kind != "f":
            raise WireError(
                f"micro-shard {s.index}: bn_stats must be a 1-d float tensor, got "
                f"{values.ndim}-d {values.dtype}"
            )
    if any(s.bn_calls) != (values is not None and values.size > 0):
        raise WireError(
            f"micro-shard {s.index}: bn_stats holds {0 if values is None else values.size} "
            f"values for bn_calls {list(s.bn_calls)}"
        )
    return ShardStat(
        s.index, s.loss, s.num_samples, s.finite, tuple(int(c) for c in s.bn_calls), values
    )
