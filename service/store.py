"""The coordinator's durable state: jobs, metrics, workers, datasets and events, in SQLite.

One database file under the state directory, in WAL mode so readers (the dashboard, metric
streams) never block the training loops that write. Each thread gets its own connection;
writes are serialised by one lock, so concurrent writers never meet SQLite's "database is
locked". The schema carries a version (`PRAGMA user_version`) and is migrated forward on
open; a database from a newer shardgrad is refused rather than misread.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class JobState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.STOPPED)


# Which state a job may move to from each state. RUNNING -> PENDING is a job that lost all its
# workers and waits for more; FAILED/STOPPED -> PENDING is a resume.
_TRANSITIONS: dict[JobState, set[JobState]] = {
    JobState.PENDING: {JobState.RUNNING, JobState.FAILED, JobState.STOPPED},
    JobState.RUNNING: {JobState.SUCCEEDED, JobState.FAILED, JobState.STOPPED, JobState.PENDING},
    JobState.FAILED: {JobState.PENDING},
    JobState.STOPPED: {JobState.PENDING},
    JobState.SUCCEEDED: set(),
}


class StoreError(RuntimeError):
    """A store operation that cannot be done: unknown id, illegal state change, newer schema."""


# SQLite's primary result codes for a database that cannot take a write now but may later:
# BUSY, LOCKED, IOERR (a failed read or write: EIO, EFBIG, ...), FULL, CANTOPEN, PROTOCOL.
_STORAGE_FAULT_CODES = frozenset({5, 6, 10, 13, 14, 15})
_STORAGE_FAULT_TEXT = (
    "disk i/o error",
    "database or disk is full",
    "database is locked",
    "unable to open database file",
)


def is_storage_fault(exc: BaseException) -> bool:
    """True for a write the database could not take because of its storage (a full or
    failing disk, a lock held too long), which may go through once that is fixed; False for
    errors of the request itself (bad SQL, a constraint, an illegal state change)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _STORAGE_FAULT_CODES
    text = str(exc).lower()
    return any(t in text for t in _STORAGE_FAULT_TEXT)


@dataclass(frozen=True)
class JobRecord:
    id: str
    name: str
    config_json: str
    state: JobState
    reason: str
    step: int
    total_steps: int
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True)
class MetricRecord:
    job_id: str
    step: int
    kind: str
    time: float
    values: dict


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    address: str
    kind: str
    state: str
    registered_at: float
    last_heartbeat: float
    info: dict


@dataclass(frozen=True)
class DatasetRecord:
    sha256: str
    name: str
    size_bytes: int
    num_samples: int
    x_shape: list
    y_shape: list
    x_dtype: str
    y_dtype: str
    created_at: float


@dataclass(frozen=True)
class EventRecord:
    """One entry of the event log: something that happened to a job, a worker or the
    coordinator (a job started, a worker was dropped, a checkpoint could not be written)."""

    id: int
    time: float
    job_id: str | None
    worker_id: str | None
    kind: str
    message: str
    level: str


EVENT_LEVELS = ("info", "warning", "error")
_EVENT_MESSAGE_CHARS = 2000

SCHEMA_VERSION = 2

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        config_json TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        step INTEGER NOT NULL DEFAULT 0,
        total_steps INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL
    );
    CREATE INDEX jobs_state ON jobs(state);
    CREATE TABLE metrics (
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        step INTEGER NOT NULL,
        kind TEXT NOT NULL,
        time REAL NOT NULL,
        values_json TEXT NOT NULL
    );
    CREATE INDEX metrics_job_step ON metrics(job_id, step);
    CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        address TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        registered_at REAL NOT NULL,
        last_heartbeat REAL NOT NULL,
        info_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE datasets (
        sha256 TEXT PRIMARY KEY,
        name TEXT NOT NULL DEFAULT '',
        size_bytes INTEGER NOT NULL,
        num_samples INTEGER NOT NULL,
        x_shape TEXT NOT NULL,
        y_shape TEXT NOT NULL,
        x_dtype TEXT NOT NULL,
        y_dtype TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    # The event log. Not tied to jobs by a foreign key: a job's events (its deletion among
    # them) outlive the job until pruned. AUTOINCREMENT: ids are never reused after pruning,
    # so readers can follow the log by id.
    2: """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        job_id TEXT,
        worker_id TEXT,
        kind TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        level TEXT NOT NULL DEFAULT 'info'
    );
    CREATE INDEX events_job ON events(job_id, id);
    """,
}


# The values of a job's train record at its current step: the first (by step, then by write
# order) at or after that step, nothing before step 1. `{job}` and `{step}` name the job's id
# and step: columns of a query over jobs, or parameters (the step's two before the id's).
_LAST_TRAIN_VALUES = (
    "CASE WHEN {step} > 0 THEN (SELECT m.values_json FROM metrics AS m WHERE m.job_id = {job} "
    "AND m.kind = 'train' AND m.step >= {step} ORDER BY m.step, m.seq LIMIT 1) END"
)
_JOBS_WITH_LAST_TRAIN_VALUES = (
    f"SELECT jobs.*, ({_LAST_TRAIN_VALUES.format(job='jobs.id', step='jobs.step')}) "
    "AS last_train_values FROM jobs"
)
_LAST_TRAIN_VALUES_OF = f"SELECT {_LAST_TRAIN_VALUES.format(job='?', step='?')}"


class Store:
    """Typed access to the state database; safe to share between threads."""

    # The event log keeps at most this many events, and this many per job (newest kept).
    max_events = 20_000
    max_events_per_job = 2_000

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        self._migrate()

    # ------------------------------------------------------------------ connections
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the store is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            try:
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA busy_timeout=30000")
            except BaseException:
                conn.close()  # e.g. a disk that cannot take the WAL: the next call tries again
                raise
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                self._recover(conn)
                raise

    def _recover(self, conn: sqlite3.Connection) -> None:
        """Leave this thread's connection ready for the next write after a failed one.

        After an I/O error or a full disk SQLite rolls the transaction back by itself or keeps
        it open, depending on where the write failed (a failed COMMIT can keep it), and a
        connection left inside a transaction would refuse every later BEGIN. So roll back if
        a transaction is still open; a connection that cannot even do that is closed, and
        the next call opens a fresh one.
        """
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not conn.in_transaction:
                return
        except sqlite3.Error:
            pass
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._all_lock:
            if conn in self._all:
                self._all.remove(conn)
        try:
            conn.close()
        except sqlite3.Error:
            pass

    def close(self) -> None:
        self._closed = True
        with self._all_lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _migrate(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {version}; this shardgrad reads up to "
                    f"{SCHEMA_VERSION}. Upgrade shardgrad or use another --state-dir."
                )
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in filter(str.strip, _MIGRATIONS[v].split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={v}")

    @property
    def schema_version(self) -> int:
        return self._conn().execute("PRAGMA user_version").fetchone()[0]

    # ------------------------------------------------------------------ jobs
    def create_job(self, config_json: str, name: str = "", job_id: str | None = None) -> JobRecord:
        job_id = job_id or uuid.uuid4().hex[:16]
        now = time.time()
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO jobs (id, name, config_json, state, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (job_id, name, config_json, JobState.PENDING.value, now, now),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"job {job_id} already exists") from None
        return self.get_job(job_id)

    def get_job(self, job_id: str) -> JobRecord | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def job(self, job_id: str) -> JobRecord:
        rec = self.get_job(job_id)
        if rec is None:
            raise StoreError(f"no job {job_id}")
        return rec

    def list_jobs(self, state: JobState | None = None) -> list[JobRecord]:
        if state is None:
            rows = self._conn().execute("SELECT * FROM jobs ORDER BY created_at, id").fetchall()
        else:
            rows = (
                self._conn()
                .execute(
                    "SELECT * FROM jobs WHERE state = ? ORDER BY created_at, id", (state.value,)
                )
                .fetchall()
            )
        return [_job(r) for r in rows]

    def jobs_with_last_loss(
        self,
        job_id: str | None = None,
        states: Collection[JobState] | None = None,
        newest: int | None = None,
    ) -> list[tuple[JobRecord, float | None]]:
        """Jobs (one, or those in `states`, or all), oldest first, each with the training loss
        at its current step (see `last_train_loss`), read in one query however many there are.

        `newest` keeps only that many of the most recently created. An API listing jobs
        answers from this, so its cost does not grow by a query per job listed.
        """
        sql = _JOBS_WITH_LAST_TRAIN_VALUES
        where, args = [], []
        if job_id is not None:
            where.append("id = ?")
            args.append(job_id)
        if states is not None:
            wanted = sorted({JobState(s).value for s in states})
            where.append(f"state IN ({', '.join('?' * len(wanted))})")
            args.extend(wanted)
        if where:
            sql += " WHERE " + " AND ".join(where)
        if newest is None:
            sql += " ORDER BY created_at, id"
        else:
            sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
            args.append(max(0, int(newest)))
        rows = self._conn().execute(sql, args).fetchall()
        if newest is not None:
            rows.reverse()
        return [(_job(r), _loss_of(r["last_train_values"])) for r in rows]

    def last_train_loss(self, job_id: str, step: int) -> float | None:
        """The loss of a job's training record at `step`: the first train record at or after
        it (a job resumed from a checkpoint shows the step it resumes from). None at step 0 or
        when there is no such record; 0.0 for a record without a loss."""
        row = self._conn().execute(_LAST_TRAIN_VALUES_OF, (step, job_id, step)).fetchone()
        return _loss_of(row[0])

    def set_state(
        self,
        job_id: str,
        state: JobState,
        reason: str = "",
        expect: JobState | tuple[JobState, ...] | None = None,
    ) -> JobRecord:
        """Move a job to `state`; raise StoreError on an illegal move or unmet expectation."""
        state = JobState(state)
        now = time.time()
        with self._write() as conn:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise StoreError(f"no job {job_id}")
            current = JobState(row["state"])
            if expect is not None:
                allowed = (expect,) if isinstance(expect, JobState) else tuple(expect)
                if current not in allowed:
                    raise StoreError(f"job {job_id} is {current.value}, not {allowed[0].value}")
            if state != current and state not in _TRANSITIONS[current]:
                raise StoreError(f"job {job_id} cannot go from {current.value} to {state.value}")
            started = ", started_at = COALESCE(started_at, ?)" if state == JobState.RUNNING else ""
            finished = ", finished_at = ?" if state.is_terminal else ", finished_at = NULL"
            args: list = [state.value, reason, now]
            if started:
                args.append(now)
            if state.is_terminal:
                args.append(now)
            conn.execute(
                f"UPDATE jobs SET state = ?, reason = ?, updated_at = ?{started}{finished} "
                "WHERE id = ?",
                (*args, job_id),
            )
        return self.job(job_id)

    def set_progress(self, job_id: str, step: int, total_steps: int | None = None) -> None:
        with self._write() as conn:
            if total_steps is None:
                cur = conn.execute(
                    "UPDATE jobs SET step = ?, updated_at = ? WHERE id = ?",
                    (step, time.time(), job_id),
                )
            else:
                cur = conn.execute(
                    "UPDATE jobs SET step = ?, total_steps = ?, updated_at = ? WHERE id = ?",
                    (step, total_steps, time.time(), job_id),
                )
            if cur.rowcount == 0:
                raise StoreError(f"no job {job_id}")

    def delete_job(self, job_id: str) -> bool:
        """Delete an ended job's record and metrics in one transaction; False if there is no
        such job. A job that is not SUCCEEDED, FAILED or STOPPED raises StoreError and stays."""
        with self._write() as conn:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return False
            state = JobState(row["state"])
            if not state.is_terminal:
                raise StoreError(f"job {job_id} is {state.value}; stop it first")
            conn.execute("DELETE FROM metrics WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return True

    # ------------------------------------------------------------------ metrics
    def add_metrics(
        self, job_id: str, step: int, kind: str, values: dict, at: float | None = None
    ) -> None:
        """Append one record (e.g. kind 'train' or 'eval') of JSON-able values at `step`."""
        text = json.dumps(values, allow_nan=True, sort_keys=True)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO metrics (job_id, step, kind, time, values_json) VALUES (?, ?, ?, ?, ?)",
                (job_id, step, kind, time.time() if at is None else at, text),
            )

    def record_step(self, job_id: str, step: int, values: dict) -> None:
        """A training step's metrics record and the job's progress, in one transaction: the
        loop writes both every step, and one commit costs about half of two."""
        text = json.dumps(values, allow_nan=True, sort_keys=True)
        now = time.time()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET step = ?, updated_at = ? WHERE id = ?", (step, now, job_id)
            )
            if cur.rowcount == 0:
                raise StoreError(f"no job {job_id}")
            conn.execute(
                "INSERT INTO metrics (job_id, step, kind, time, values_json) VALUES (?, ?, ?, ?, ?)",
                (job_id, step, "train", now, text),
            )

    def metrics(
        self,
        job_id: str,
        kind: str | None = None,
        after_step: int = -1,
        limit: int | None = None,
    ) -> list[MetricRecord]:
        sql = "SELECT * FROM metrics WHERE job_id = ? AND step > ?"
        args: list = [job_id, after_step]
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        sql += " ORDER BY step, seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        rows = self._conn().execute(sql, args).fetchall()
        return [
            MetricRecord(r["job_id"], r["step"], r["kind"], r["time"], json.loads(r["values_json"]))
            for r in rows
        ]

    def delete_metrics_after(self, job_id: str, step: int) -> None:
        """Forget records past `step` (a job resumed from an earlier checkpoint redoes them)."""
        with self._write() as conn:
            conn.execute("DELETE FROM metrics WHERE job_id = ? AND step > ?", (job_id, step))

    # ------------------------------------------------------------------ workers
    def upsert_worker(
        self,
        worker_id: str,
        address: str = "",
        kind: str = "",
        state: str = "LIVE",
        info: dict | None = None,
    ) -> WorkerRecord:
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO workers (id, address, kind, state, registered_at, last_heartbeat, "
                "info_json) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "address = excluded.address, kind = excluded.kind, state = excluded.state, "
                "last_heartbeat = excluded.last_heartbeat, info_json = excluded.info_json",
                (worker_id, address, kind, state, now, now, json.dumps(info or {})),
            )
        return self.get_worker(worker_id)

    def heartbeat(self, worker_id: str, at: float | None = None) -> None:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE workers SET last_heartbeat = ? WHERE id = ?",
                (time.time() if at is None else at, worker_id),
            )
            if cur.rowcount == 0:
                raise StoreError(f"no worker {worker_id}")

    def set_worker_state(self, worker_id: str, state: str) -> None:
        with self._write() as conn:
            cur = conn.execute("UPDATE workers SET state = ? WHERE id = ?", (state, worker_id))
            if cur.rowcount == 0:
                raise StoreError(f"no worker {worker_id}")

    def get_worker(self, worker_id: str) -> WorkerRecord | None:
        row = self._conn().execute("SELECT * FROM workers WHERE id = ?", (worker_id,)).fetchone()
        return None if row is None else _worker(row)

    def list_workers(self, state: str | None = None) -> list[WorkerRecord]:
        if state is None:
            rows = self._conn().execute("SELECT * FROM workers ORDER BY id").fetchall()
        else:
            rows = (
                self._conn()
                .execute("SELECT * FROM workers WHERE state = ? ORDER BY id", (state,))
                .fetchall()
            )
        return [_worker(r) for r in rows]

    # ------------------------------------------------------------------ events
    def add_event(
        self,
        kind: str,
        message: str = "",
        *,
        level: str = "info",
        job_id: str | None = None,
        worker_id: str | None = None,
        at: float | None = None,
    ) -> int:
        """Append one event; returns its id. Older events beyond `max_events` (and a job's
        beyond `max_events_per_job`) go in the same transaction, so the log stays bounded."""
        if level not in EVENT_LEVELS:
            raise StoreError(f"event level {level!r} is not one of {list(EVENT_LEVELS)}")
        if not kind:
            raise StoreError("an event needs a kind")
        message = message[:_EVENT_MESSAGE_CHARS]
        with self._write() as conn:
            event_id = conn.execute(
                "INSERT INTO events (time, job_id, worker_id, kind, message, level) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (time.time() if at is None else at, job_id, worker_id, kind, message, level),
            ).lastrowid
            # Ids only grow, so the newest max_events are those within max_events of this one.
            conn.execute("DELETE FROM events WHERE id <= ?", (event_id - self.max_events,))
            if job_id is not None:
                oldest_kept = conn.execute(
                    "SELECT id FROM events WHERE job_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
                    (job_id, self.max_events_per_job - 1),
                ).fetchone()
                if oldest_kept is not None:
                    conn.execute(
                        "DELETE FROM events WHERE job_id = ? AND id < ?", (job_id, oldest_kept[0])
                    )
        return event_id

    def events(
        self,
        job_id: str | None = None,
        since_id: int = 0,
        limit: int = 200,
        newest_first: bool = False,
        kinds: Sequence[str] | None = None,
    ) -> list[EventRecord]:
        """Events with ids above `since_id` (of one job, or all), at most `limit`.

        Oldest first by default: the first `limit` after `since_id`, so a reader that passes
        the last id it saw as `since_id` pages through the log without a gap. `newest_first`
        gives the newest `limit` instead, newest first (what a live view shows). `kinds`, when
        given, keeps only events of those kinds, before `limit` counts them.
        """
        sql = "SELECT * FROM events WHERE id > ?"
        args: list = [int(since_id)]
        if job_id is not None:
            sql += " AND job_id = ?"
            args.append(job_id)
        if kinds:
            wanted = sorted(set(kinds))
            sql += f" AND kind IN ({', '.join('?' * len(wanted))})"
            args.extend(wanted)
        sql += " ORDER BY id DESC LIMIT ?" if newest_first else " ORDER BY id LIMIT ?"
        args.append(max(0, int(limit)))
        return [_event(r) for r in self._conn().execute(sql, args).fetchall()]

    # ------------------------------------------------------------------ datasets
    def put_dataset(
        self,
        sha256: str,
        *,
        name: str,
        size_bytes: int,
        num_samples: int,
        x_shape: list,
        y_shape: list,
        x_dtype: str,
        y_dtype: str,
    ) -> DatasetRecord:
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO datasets (sha256, name, size_bytes, num_samples, x_shape, "
                "y_shape, x_dtype, y_dtype, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sha256,
                    name,
                    size_bytes,
                    num_samples,
                    json.dumps(list(x_shape)),
                    json.dumps(list(y_shape)),
                    x_dtype,
                    y_dtype,
                    time.time(),
                ),
            )
        return self.get_dataset(sha256)

    def get_dataset(self, sha256: str) -> DatasetRecord | None:
        row = self._conn().execute("SELECT * FROM datasets WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else _dataset(row)

    def list_datasets(self) -> list[DatasetRecord]:
        rows = self._conn().execute("SELECT * FROM datasets ORDER BY created_at").fetchall()
        return [_dataset(r) for r in rows]


def _job(r: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=r["id"],
        name=r["name"],
        config_json=r["config_json"],
        state=JobState(r["state"]),
        reason=r["reason"],
        step=r["step"],
        total_steps=r["total_steps"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
    )


@functools.lru_cache(maxsize=4096)
def _loss_of(values_json: str | None) -> float | None:
    """A train record's loss (0.0 when it has none); None for no record.

    Remembered by the record's text: the jobs a listing shows are mostly ended, and their
    last records, decoded once, never change.
    """
    if values_json is None:
        return None
    return float(json.loads(values_json).get("loss", 0.0))


def _worker(r: sqlite3.Row) -> WorkerRecord:
    return WorkerRecord(
        id=r["id"],
        address=r["address"],
        kind=r["kind"],
        state=r["state"],
        registered_at=r["registered_at"],
        last_heartbeat=r["last_heartbeat"],
        info=json.loads(r["info_json"]),
    )


def _event(r: sqlite3.Row) -> EventRecord:
    return EventRecord(
        id=r["id"],
        time=r["time"],
        job_id=r["job_id"],
        worker_id=r["worker_id"],
        kind=r["kind"],
        message=r["message"],
        level=r["level"],
    )


def _dataset(r: sqlite3.Row) -> DatasetRecord:
    return DatasetRecord(
        sha256=r["sha256"],
        name=r["name"],
        size_bytes=r["size_bytes"],
        num_samples=r["num_samples"],
        x_shape=json.loads(r["x_shape"]),
        y_shape=json.loads(r["y_shape"]),
        x_dtype=r["x_dtype"],
        y_dtype=r["y_dtype"],
        created_at=r["created_at"],
    )
