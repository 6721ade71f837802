"""The coordinator's records as coordinator.proto messages, in one place."""

from __future__ import annotations

import functools
import math

from shardgrad.protos import common_pb2, coordinator_pb2

from .config import JobConfig, ValidationError
from .store import DatasetRecord, EventRecord, JobRecord, JobState, MetricRecord

JOB_STATE_TO_PROTO = {s: coordinator_pb2.JobState.Value(f"JOB_STATE_{s.value}") for s in JobState}
JOB_STATE_FROM_PROTO = {v: k for k, v in JOB_STATE_TO_PROTO.items()}

WORKER_STATES = {
    "UNSPECIFIED": coordinator_pb2.WORKER_STATE_UNSPECIFIED,
    "IDLE": coordinator_pb2.WORKER_STATE_IDLE,
    "BUSY": coordinator_pb2.WORKER_STATE_BUSY,
    "DRAINING": coordinator_pb2.WORKER_STATE_DRAINING,
    "LOST": coordinator_pb2.WORKER_STATE_LOST,
}
WORKER_STATE_NAMES = {v: k for k, v in WORKER_STATES.items()}

_DTYPES = {
    "float32": common_pb2.DTYPE_FLOAT32,
    "float64": common_pb2.DTYPE_FLOAT64,
    "float16": common_pb2.DTYPE_FLOAT16,
    "int64": common_pb2.DTYPE_INT64,
    "int32": common_pb2.DTYPE_INT32,
    "uint8": common_pb2.DTYPE_UINT8,
    "bool": common_pb2.DTYPE_BOOL,
}


def shown_config(config_json: str) -> str:
    """A stored config as the API shows it: every default filled in.

    The answer depends on the text alone, and a job's config never changes, so listing jobs
    over and over parses each config once: texts up to `_CACHED_CONFIG_CHARS` are remembered.
    """
    if len(config_json) > _CACHED_CONFIG_CHARS:
        return _normalised_config(config_json)
    return _cached_config(config_json)


def _normalised_config(config_json: str) -> str:
    try:
        return JobConfig.from_json(config_json).to_json()
    except ValidationError:  # written by an older shardgrad: show it as stored
        return config_json


# A config is ~1 KB (the model's spec, not its weights): 1024 of the largest remembered keep
# at most ~32 MB, and a coordinator's listings of up to 1024 jobs stay parsed.
_CACHED_CONFIG_CHARS = 16 * 1024
_cached_config = functools.lru_cache(maxsize=1024)(_normalised_config)


def job(rec: JobRecord, last_loss: float | None = None) -> coordinator_pb2.Job:
    """A job record as the API shows it: the config with every default filled in."""
    return coordinator_pb2.Job(
        job_id=rec.id,
        name=rec.name,
        config_json=shown_config(rec.config_json),
        state=JOB_STATE_TO_PROTO[rec.state],
        step=rec.step,
        total_steps=rec.total_steps,
        last_loss=last_loss if last_loss is not None else 0.0,
        error=rec.reason if rec.state is JobState.FAILED else "",
        created_at=rec.created_at,
        started_at=rec.started_at or 0.0,
        finished_at=rec.finished_at or 0.0,
    )


def dataset(rec: DatasetRecord) -> coordinator_pb2.DatasetInfo:
    return coordinator_pb2.DatasetInfo(
        sha256=rec.sha256,
        name=rec.name,
        nbytes=rec.size_bytes,
        num_samples=rec.num_samples,
        arrays=[
            coordinator_pb2.ArrayInfo(
                name="x",
                dtype=_DTYPES.get(rec.x_dtype, common_pb2.DTYPE_UNSPECIFIED),
                shape=[rec.num_samples, *rec.x_shape],
            ),
            coordinator_pb2.ArrayInfo(
                name="y",
                dtype=_DTYPES.get(rec.y_dtype, common_pb2.DTYPE_UNSPECIFIED),
                shape=[rec.num_samples, *rec.y_shape],
            ),
        ],
        created_at=rec.created_at,
    )


def worker(info: dict) -> coordinator_pb2.WorkerInfo:
    return coordinator_pb2.WorkerInfo(
        worker_id=info["worker_id"],
        pool=info.get("pool", ""),
        address=info.get("address", ""),
        device=info.get("device", ""),
        state=WORKER_STATES.get(info.get("state", ""), coordinator_pb2.WORKER_STATE_UNSPECIFIED),
        hostname=info.get("hostname", ""),
        cpu_cores=int(info.get("cpu_cores", 0) or 0),
        compute_threads=int(info.get("compute_threads", 0) or 0),
        last_heartbeat=float(info.get("last_heartbeat", 0.0) or 0.0),
        loaded_jobs=list(info.get("loaded_jobs", ())),
        version=info.get("version", ""),
    )


def _number(value) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


def metrics_event(
    m: MetricRecord, state: JobState, train_loss: float | None = None
) -> coordinator_pb2.MetricsEvent:
    """One metrics record as an event.

    A training record fills the event's named fields; its other numbers go to `values`
    (samples, bytes_sent, bytes_received, worker_compute_seconds_max, ...). An evaluation
    record becomes an event of the same step whose `values` hold `eval_<name>` entries
    (eval_loss, eval_accuracy, eval_samples) and whose `loss` repeats that step's training loss.
    """
    v = m.values
    event = coordinator_pb2.MetricsEvent(
        job_id=m.job_id, step=m.step, state=JOB_STATE_TO_PROTO[state], time=m.time
    )
    if m.kind == "train":
        event.loss = float(v.get("loss", math.nan))
        event.lr = float(v.get("lr", 0.0))
        event.samples_per_second = float(v.get("samples_per_s", 0.0))
        event.step_seconds = float(v.get("step_seconds", 0.0))
        event.workers = int(v.get("workers", 0))
        skip = {"loss", "lr", "samples_per_s", "step_seconds", "workers"}
        for key, value in v.items():
            if key == "worker_compute_seconds" and isinstance(value, dict) and value:
                event.values["worker_compute_seconds_max"] = max(map(float, value.values()))
            elif key not in skip and (num := _number(value)) is not None:
                event.values[key] = num
    else:
        if train_loss is not None:
            event.loss = train_loss
        for key, value in v.items():
            if (num := _number(value)) is not None:
                event.values[f"{m.kind}_{key}"] = num
    return event


def event(rec: EventRecord) -> coordinator_pb2.Event:
    return coordinator_pb2.Event(
        id=rec.id,
        time=rec.time,
        kind=rec.kind,
        level=rec.level,
        job_id=rec.job_id or "",
        worker_id=rec.worker_id or "",
        message=rec.message,
    )
