"""What the dashboard shows, read from the coordinator's store and kept up to date cheaply.

The training loops write one metrics record per step into SQLite. Re-reading a job's whole
history on every page refresh or Prometheus scrape would grow with the job, so this module
reads each job's records once, incrementally (only steps past the last one seen), into compact
per-job series, and answers every view from those. A job resumed from an earlier checkpoint
has its later records deleted and redone; a one-record probe per refresh notices that (the
last record read is gone or newer) and the job is read again, so the curve shows each step
once. Cumulative totals for Prometheus (steps, samples, bytes, compute
time, the step-time histogram, events by kind) only ever grow, as counters must.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import threading
import time
from array import array
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .checkpoint import list_checkpoint_files
from .events import KINDS as EVENT_KINDS
from .store import EventRecord, JobRecord, JobState, Store
from .trainer import job_dir, model_path

log = logging.getLogger(__name__)

STEP_SECONDS_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
# A worker whose recent compute time per step is this many times the median of the live
# workers' is flagged as a straggler. Shares of a step differ by at most one micro-shard, so
# an honest worker stays within 2x of the median unless K is tiny.
STRAGGLER_FACTOR = 2.0
_RECENT_WORKER_STEPS = 20
_MAX_POINTS = 50_000  # per series, before halving its resolution
_WORKER_STATES = ("IDLE", "BUSY", "DRAINING", "LOST")
_EVENT_PAGE = 5000  # events read per query when counting them


@dataclass
class _Series:
    """One job's per-step values, columnar."""

    step: array = field(default_factory=lambda: array("q"))
    time: array = field(default_factory=lambda: array("d"))
    loss: array = field(default_factory=lambda: array("d"))
    lr: array = field(default_factory=lambda: array("d"))
    samples_per_second: array = field(default_factory=lambda: array("d"))
    step_seconds: array = field(default_factory=lambda: array("d"))
    stride: int = 1  # keep one record in `stride` once the series has been thinned

    COLUMNS = ("step", "time", "loss", "lr", "samples_per_second", "step_seconds")

    def append(self, step: int, values: dict, at: float) -> None:
        if self.stride > 1 and step % self.stride != 0:
            return
        self.step.append(step)
        self.time.append(at)
        self.loss.append(_num(values.get("loss")))
        self.lr.append(_num(values.get("lr")))
        self.samples_per_second.append(_num(values.get("samples_per_s")))
        self.step_seconds.append(_num(values.get("step_seconds")))
        if len(self.step) > _MAX_POINTS:
            self.stride *= 2
            keep = [i for i, s in enumerate(self.step) if s % self.stride == 0]
            for name in self.COLUMNS:
                col = getattr(self, name)
                setattr(self, name, array(col.typecode, (col[i] for i in keep)))

    def slice_after(self, after_step: int, max_points: int) -> dict:
        start = bisect_right(self.step, after_step)
        idx = _thin(range(start, len(self.step)), max_points)
        return {name: [_json_num(getattr(self, name)[i]) for i in idx] for name in self.COLUMNS}


@dataclass
class _EvalSeries:
    step: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)

    def append(self, step: int, values: dict) -> None:
        self.step.append(step)
        self.loss.append(_json_num(values.get("loss")))
        self.accuracy.append(_json_num(values.get("accuracy")))

    def slice_after(self, after_step: int) -> dict:
        start = bisect_right(self.step, after_step)
        return {
            "step": self.step[start:],
            "loss": self.loss[start:],
            "accuracy": self.accuracy[start:],
        }

    def latest(self) -> dict | None:
        if not self.step:
            return None
        return {"step": self.step[-1], "loss": self.loss[-1], "accuracy": self.accuracy[-1]}


@dataclass
class _JobCache:
    train: _Series = field(default_factory=_Series)
    eval: _EvalSeries = field(default_factory=_EvalSeries)
    train_seen: int = 0
    last_time: float = 0.0  # written-at time of the record at train_seen
    eval_seen: int = 0
    counted_until: float = 0.0  # newest record time already added to the totals
    settled_at: float | None = None  # updated_at of the ended job once fully read


@dataclass
class Totals:
    """Cumulative counts since this dashboard started reading the store."""

    steps: int = 0
    samples: float = 0.0
    bytes_sent: float = 0.0
    bytes_received: float = 0.0
    bytes_shared: float = 0.0  # gradients read in place from shared memory, not over the wire
    skipped_nonfinite: int = 0
    step_seconds_sum: float = 0.0
    step_seconds_count: int = 0
    step_seconds_buckets: list = field(default_factory=lambda: [0] * len(STEP_SECONDS_BUCKETS))
    worker_compute_seconds: dict = field(default_factory=dict)
    worker_steps: dict = field(default_factory=dict)
    # every known kind from the start (at 0), so rates work before the first one happens
    events_by_kind: dict = field(default_factory=lambda: dict.fromkeys(EVENT_KINDS, 0))


class DashboardData:
    """Incrementally mirrored metrics of every job in a store, and the views built on them."""

    def __init__(
        self, store: Store, state_dir: str | Path, pool=None, min_refresh_s: float = 0.2
    ) -> None:
        self.store = store
        self.pool = pool
        self.state_dir = Path(state_dir)
        self.min_refresh_s = min_refresh_s
        self._lock = threading.RLock()
        self._jobs: dict[str, _JobCache] = {}
        self._records: dict[str, JobRecord] = {}
        self._refreshed = 0.0
        self.totals = Totals()
        # (worker, seconds per step) of the most recent steps, newest last, per worker
        self._recent: dict[str, deque] = {}
        self._events_counted = 0  # id of the newest event added to totals.events_by_kind

    # ------------------------------------------------------------------ reading the store
    def refresh(self, force: bool = False) -> None:
        """Read the jobs' states, and the metrics the store gained since the last call (those
        at most every `min_refresh_s`, however many pages poll at once)."""
        with self._lock:
            records = self.store.list_jobs()  # one cheap query: states are always current
            self._records = {r.id: r for r in records}
            # A deleted job's series go with it; the cumulative totals keep what it counted.
            for gone in set(self._jobs) - self._records.keys():
                del self._jobs[gone]
            now = time.monotonic()
            if not force and now - self._refreshed < self.min_refresh_s:
                return
            self._refreshed = now
            for rec in records:
                self._refresh_job(rec)
            self._count_events()

    def _count_events(self) -> None:
        """Add the events written since the last refresh to the per-kind counts."""
        while True:
            new = self.store.events(since_id=self._events_counted, limit=_EVENT_PAGE)
            for e in new:
                by_kind = self.totals.events_by_kind
                by_kind[e.kind] = by_kind.get(e.kind, 0) + 1
            if new:
                self._events_counted = new[-1].id
            if len(new) < _EVENT_PAGE:
                return

    def _refresh_job(self, rec: JobRecord) -> None:
        cache = self._jobs.get(rec.id)
        if cache is None:
            cache = self._jobs[rec.id] = _JobCache()
        if rec.state.is_terminal and cache.settled_at == rec.updated_at:
            return
        if cache.train_seen and self._rewritten(rec, cache):
            # Resumed from an earlier checkpoint: its later records were deleted and redone.
            # Read the job again; records already counted (older than any redone one) are
            # not counted twice.
            cache = self._jobs[rec.id] = _JobCache(counted_until=cache.counted_until)
        for m in self.store.metrics(rec.id, kind="train", after_step=cache.train_seen):
            cache.train.append(m.step, m.values, m.time)
            cache.train_seen, cache.last_time = m.step, m.time
            if m.time > cache.counted_until:
                self._count(m.values)
                cache.counted_until = m.time
        for m in self.store.metrics(rec.id, kind="eval", after_step=cache.eval_seen):
            cache.eval.append(m.step, m.values)
            cache.eval_seen = m.step
        cache.settled_at = rec.updated_at if rec.state.is_terminal else None

    def _rewritten(self, rec: JobRecord, cache: _JobCache) -> bool:
        """Whether the job's history changed under the cache: it went back in steps, or the
        record of the last step read is gone or was written again."""
        if rec.step < cache.train_seen:
            return True
        probe = self.store.metrics(rec.id, kind="train", after_step=cache.train_seen - 1, limit=1)
        return not probe or probe[0].step != cache.train_seen or probe[0].time != cache.last_time

    def _count(self, values: dict) -> None:
        t = self.totals
        t.steps += 1
        t.samples += _num(values.get("samples"), 0.0)
        t.bytes_sent += _num(values.get("bytes_sent"), 0.0)
        t.bytes_received += _num(values.get("bytes_received"), 0.0)
        t.bytes_shared += _num(values.get("bytes_shared"), 0.0)
        if values.get("skipped_nonfinite"):
            t.skipped_nonfinite += 1
        secs = _num(values.get("step_seconds"), math.nan)
        if math.isfinite(secs):
            t.step_seconds_sum += secs
            t.step_seconds_count += 1
            for i, bound in enumerate(STEP_SECONDS_BUCKETS):
                if secs <= bound:
                    t.step_seconds_buckets[i] += 1
        compute = values.get("worker_compute_seconds") or {}
        shares = values.get("worker_micro_shards") or {}
        if isinstance(compute, dict):
            for worker, secs in compute.items():
                secs = _num(secs, 0.0)
                t.worker_compute_seconds[worker] = t.worker_compute_seconds.get(worker, 0.0) + secs
                t.worker_steps[worker] = t.worker_steps.get(worker, 0) + 1
                per = secs / shares[worker] if shares.get(worker) else secs
                self._recent.setdefault(worker, deque(maxlen=_RECENT_WORKER_STEPS)).append(per)

    # ------------------------------------------------------------------ views
    def job_ids(self) -> list[str]:
        with self._lock:
            return list(self._records)

    def record(self, job_id: str) -> JobRecord | None:
        with self._lock:
            rec = self._records.get(job_id)
        return rec if rec is not None else self.store.get_job(job_id)

    def job_summary(self, rec: JobRecord, curve_points: int = 60) -> dict:
        with self._lock:
            cache = self._jobs.get(rec.id) or _JobCache()
            train = cache.train
            last = len(train.step) - 1
            curve = train.slice_after(-1, curve_points)
            summary = {
                "id": rec.id,
                "name": rec.name,
                "state": rec.state.value,
                "reason": rec.reason,
                "step": rec.step,
                "total_steps": rec.total_steps,
                "progress": rec.step / rec.total_steps if rec.total_steps else 0.0,
                "loss": _json_num(train.loss[last]) if last >= 0 else None,
                "samples_per_second": _json_num(train.samples_per_second[last])
                if last >= 0
                else None,
                "step_seconds": _json_num(train.step_seconds[last]) if last >= 0 else None,
                "eval": cache.eval.latest(),
                "created_at": rec.created_at,
                "updated_at": rec.updated_at,
                "started_at": rec.started_at,
                "finished_at": rec.finished_at,
                "curve": {"step": curve["step"], "loss": curve["loss"]},
            }
        return summary

    def jobs(self) -> list[dict]:
        self.refresh()
        with self._lock:
            records = list(self._records.values())
        return [self.job_summary(r) for r in sorted(records, key=lambda r: -r.created_at)]

    def job(self, job_id: str) -> dict | None:
        self.refresh()
        rec = self.record(job_id)
        if rec is None:
            return None
        out = self.job_summary(rec)
        try:
            out["config"] = json.loads(rec.config_json)
        except ValueError:
            out["config"] = None
        out["checkpoints"] = self.checkpoints(job_id)
        out["model_available"] = model_path(self.state_dir, job_id).exists()
        return out

    def metrics(
        self,
        job_id: str,
        after_step: int = -1,
        max_points: int = 2000,
        after_eval: int | None = None,
    ) -> dict | None:
        """Train records past `after_step` (thinned to `max_points`) and eval records past
        `after_eval` (default: `after_step`); evals are asked for apart because an eval at
        step s is written just after the train record of s."""
        self.refresh()
        rec = self.record(job_id)
        if rec is None:
            return None
        with self._lock:
            cache = self._jobs.get(job_id) or _JobCache()
            return {
                "job_id": job_id,
                "state": rec.state.value,
                "step": rec.step,
                "total_steps": rec.total_steps,
                "train": cache.train.slice_after(after_step, max_points),
                "eval": cache.eval.slice_after(after_step if after_eval is None else after_eval),
            }

    def events(
        self,
        job_id: str | None = None,
        since_id: int = 0,
        limit: int = 200,
        newest_first: bool = True,
    ) -> dict:
        """Events past `since_id` (see Store.events) and `last_id`, the id to pass as
        `since_id` next time to get only newer ones."""
        found = self.store.events(job_id, since_id, limit, newest_first)
        last = max((e.id for e in found), default=since_id)
        return {"events": [_event_dict(e) for e in found], "last_id": last}

    def checkpoints(self, job_id: str) -> list[dict]:
        folder = job_dir(self.state_dir, job_id) / "checkpoints"
        return [
            {"step": f.step, "bytes": f.bytes, "time": f.mtime, "file": f.path.name}
            for f in list_checkpoint_files(folder)
        ]

    def worker_rows(self) -> list[dict]:
        """Every worker the store has seen, overlaid with what the live pool says of it now
        (device, host, state, heartbeat), plus live workers the store has not recorded."""
        rows: dict[str, dict] = {}
        for r in self.store.list_workers():
            rows[r.id] = {
                "id": r.id,
                "pool": r.kind,
                "state": r.state,
                "address": r.address,
                "device": r.info.get("device", ""),
                "hostname": r.info.get("hostname", ""),
                "last_heartbeat": r.last_heartbeat,
                "registered_at": r.registered_at,
            }
        described = []
        if self.pool is not None and hasattr(self.pool, "describe"):
            try:
                described = self.pool.describe()
            except Exception:  # noqa: BLE001 - a pool in trouble must not break the page
                log.exception("describing the worker pool")
        for d in described:
            wid = d.get("worker_id")
            if not wid:
                continue
            row = rows.setdefault(
                wid, {"id": wid, "address": "", "device": "", "hostname": "", "registered_at": None}
            )
            row.setdefault("last_heartbeat", None)
            for key in ("pool", "state", "address", "device", "hostname", "last_heartbeat"):
                if d.get(key):
                    row[key] = d[key]
        for row in rows.values():
            if not row.get("device") and row.get("pool") == "inprocess":
                row["device"] = "cpu"  # threads of the coordinator, which computes on numpy
        return sorted(rows.values(), key=lambda r: r["id"])

    def workers(self) -> list[dict]:
        self.refresh()
        now = time.time()
        with self._lock:
            recent = {w: statistics.fmean(d) for w, d in self._recent.items() if d}
            compute_totals = dict(self.totals.worker_compute_seconds)
        rows = self.worker_rows()
        live = [recent[r["id"]] for r in rows if r["state"] != "LOST" and r["id"] in recent]
        median = statistics.median(live) if len(live) >= 2 else None
        for r in rows:
            step_time = recent.get(r["id"])
            r["heartbeat_age_s"] = (
                max(0.0, now - r["last_heartbeat"]) if r.get("last_heartbeat") else None
            )
            r["step_time_s"] = step_time
            r["compute_seconds_total"] = compute_totals.get(r["id"], 0.0)
            r["straggler"] = bool(
                median
                and step_time is not None
                and r["state"] != "LOST"
                and step_time > STRAGGLER_FACTOR * median
            )
        return rows

    def overview(self) -> dict:
        self.refresh()
        with self._lock:
            records = list(self._records.values())
            by_state = {s.value: 0 for s in JobState}
            throughput = 0.0
            for r in records:
                by_state[r.state.value] += 1
                cache = self._jobs.get(r.id)
                if r.state is JobState.RUNNING and cache and len(cache.train.step):
                    throughput += _num(cache.train.samples_per_second[-1], 0.0)
        workers = dict.fromkeys(_WORKER_STATES, 0)
        for w in self.worker_rows():
            workers[w["state"]] = workers.get(w["state"], 0) + 1
        return {
            "jobs": by_state,
            "workers": workers,
            "samples_per_second": throughput,
            "time": time.time(),
        }

    def snapshot(self) -> Snapshot:
        """A consistent copy of what the Prometheus exporter reports."""
        self.refresh()
        with self._lock:
            t = self.totals
            totals = Totals(
                steps=t.steps,
                samples=t.samples,
                bytes_sent=t.bytes_sent,
                bytes_received=t.bytes_received,
                bytes_shared=t.bytes_shared,
                skipped_nonfinite=t.skipped_nonfinite,
                step_seconds_sum=t.step_seconds_sum,
                step_seconds_count=t.step_seconds_count,
                step_seconds_buckets=list(t.step_seconds_buckets),
                worker_compute_seconds=dict(t.worker_compute_seconds),
                worker_steps=dict(t.worker_steps),
                events_by_kind=dict(t.events_by_kind),
            )
            records = list(self._records.values())
            latest = {}
            for jid, c in self._jobs.items():
                if len(c.train.step):
                    latest[jid] = (c.train.loss[-1], c.train.samples_per_second[-1])
        return Snapshot(records, totals, self.worker_rows(), latest)


@dataclass
class Snapshot:
    jobs: list
    totals: Totals
    workers: list  # worker_rows()
    latest: dict  # job id -> (last loss, last samples/s)


def _event_dict(e: EventRecord) -> dict:
    return {
        "id": e.id,
        "time": e.time,
        "job_id": e.job_id,
        "worker_id": e.worker_id,
        "kind": e.kind,
        "level": e.level,
        "message": e.message,
    }


def _num(v, default: float = math.nan) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return default
    return float(v)


def _json_num(v):
    """Floats JSON can carry: NaN and infinities become None."""
    if v is None:
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _thin(indices: range, max_points: int) -> list[int]:
    n = len(indices)
    if max_points <= 0 or n <= max_points:
        return list(indices)
    stride = math.ceil(n / max_points)
    picked = list(indices[::stride])
    if picked[-1] != indices[-1]:
        picked.append(indices[-1])
    return picked
