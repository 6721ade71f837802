"""Plain Python views of the coordinator's messages: job status, metric events, workers,
the event log.

Users get dataclasses and dicts, never protobuf objects, so their code does not depend on the
wire format; every view has `to_dict()` for JSON output.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

TERMINAL_STATES = ("SUCCEEDED", "FAILED", "STOPPED")
JOB_STATES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "STOPPED")


def job_state_name(value: int) -> str:
    from shardgrad.protos import coordinator_pb2  # noqa: PLC0415

    return coordinator_pb2.JobState.Name(value).removeprefix("JOB_STATE_")


def job_state_value(name: str) -> int:
    from shardgrad.protos import coordinator_pb2  # noqa: PLC0415

    key = name.upper()
    if key not in JOB_STATES:
        raise ValueError(f"unknown job state {name!r}; use one of {list(JOB_STATES)}")
    return coordinator_pb2.JobState.Value(f"JOB_STATE_{key}")


def worker_state_name(value: int) -> str:
    from shardgrad.protos import coordinator_pb2  # noqa: PLC0415

    return coordinator_pb2.WorkerState.Name(value).removeprefix("WORKER_STATE_")


def _time_or_none(t: float) -> float | None:
    return t if t else None


@dataclass(frozen=True)
class JobStatus:
    """Where a job stands. `error` says why it failed, when it did."""

    job_id: str
    name: str
    state: str
    step: int
    total_steps: int
    last_loss: float | None
    error: str
    created_at: float | None
    started_at: float | None
    finished_at: float | None
    config: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_proto(cls, m) -> JobStatus:
        try:
            config = json.loads(m.config_json) if m.config_json else {}
        except ValueError:
            config = {}
        return cls(
            job_id=m.job_id,
            name=m.name,
            state=job_state_name(m.state),
            step=int(m.step),
            total_steps=int(m.total_steps),
            last_loss=m.last_loss if m.step else None,
            error=m.error,
            created_at=_time_or_none(m.created_at),
            started_at=_time_or_none(m.started_at),
            finished_at=_time_or_none(m.finished_at),
            config=config,
        )

    @property
    def done(self) -> bool:
        """True once the job has ended (SUCCEEDED, FAILED or STOPPED)."""
        return self.state in TERMINAL_STATES

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def metric_record(m) -> dict:
    """One metrics event as a flat dict: step, time, loss, lr, throughput, `kind` ("train",
    or "eval" for an evaluation, whose values are named `eval_*`), and every extra value
    under its own name."""
    rec = {
        "step": int(m.step),
        "kind": "eval" if any(k.startswith("eval_") for k in m.values) else "train",
        "time": m.time,
        "loss": m.loss,
        "lr": m.lr,
        "samples_per_second": m.samples_per_second,
        "step_seconds": m.step_seconds,
        "workers": int(m.workers),
        "state": job_state_name(m.state) if m.state else None,
    }
    for key in sorted(m.values):
        rec[key] = m.values[key]
    return rec


def merge_by_step(records: list[dict]) -> list[dict]:
    """One row per step: each evaluation's `eval_*` values joined to its step's train row."""
    rows: dict[int, dict] = {}
    for rec in records:
        row = rows.get(rec["step"])
        if rec["kind"] == "eval":
            extra = {k: v for k, v in rec.items() if k.startswith("eval_")}
            if row is None:
                rows[rec["step"]] = {"step": rec["step"], "loss": rec["loss"], **extra}
            else:
                row.update(extra)
        else:
            base = {k: v for k, v in rec.items() if k != "kind"}
            rows[rec["step"]] = {**(row or {}), **base}
    return [rows[s] for s in sorted(rows)]


@dataclass(frozen=True)
class WorkerInfo:
    worker_id: str
    pool: str
    address: str
    device: str
    state: str
    hostname: str
    cpu_cores: int
    compute_threads: int
    last_heartbeat: float | None
    loaded_jobs: list
    version: str

    @classmethod
    def from_proto(cls, m) -> WorkerInfo:
        return cls(
            worker_id=m.worker_id,
            pool=m.pool,
            address=m.address,
            device=m.device,
            state=worker_state_name(m.state),
            hostname=m.hostname,
            cpu_cores=int(m.cpu_cores),
            compute_threads=int(m.compute_threads),
            last_heartbeat=_time_or_none(m.last_heartbeat),
            loaded_jobs=list(m.loaded_jobs),
            version=m.version,
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Event:
    """One entry of the coordinator's event log: what happened (`kind`, e.g. "job_started",
    "worker_dropped", "checkpoint_failed"), how much it matters (`level`: "info", "warning"
    or "error"), to which job and worker (None when not about one), and when (Unix
    seconds). Ids only grow: pass the last one seen as `after_id` to read only newer ones."""

    id: int
    time: float
    kind: str
    level: str
    job_id: str | None
    worker_id: str | None
    message: str

    @classmethod
    def from_proto(cls, m) -> Event:
        return cls(
            id=int(m.id),
            time=m.time,
            kind=m.kind,
            level=m.level,
            job_id=m.job_id or None,
            worker_id=m.worker_id or None,
            message=m.message,
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ScaleResult:
    """The worker count the pool now aims for, and the workers it has."""

    count: int
    workers: list

    def to_dict(self) -> dict:
        return {"count": self.count, "workers": [w.to_dict() for w in self.workers]}


@dataclass(frozen=True)
class ModelInfo:
    job_id: str
    step: int
    model: dict  # {"spec": ...} or {"import_path": ..., "kwargs": ...}
    nbytes: int

    def to_dict(self) -> dict:
        return asdict(self)
