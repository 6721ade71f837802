"""A job database that refuses writes, as on a full disk: the job pauses rather than fails,
carries on with the bytes of an undisturbed run once there is room, and stays resumable from
its last checkpoint when the coordinator lets go while it is paused; the store's connection
is usable again after a failed write."""

from __future__ import annotations

import dataclasses
import logging
import resource
import sqlite3
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

from shardgrad import nn
from shardgrad.service import trainer as trainer_module
from shardgrad.service.checkpoint import CheckpointManager
from shardgrad.service.config import Component, JobConfig, ModelSource
from shardgrad.service.jobs import JobManager
from shardgrad.service.pools.inprocess import InProcessPool
from shardgrad.service.store import JobState, Store, is_storage_fault
from shardgrad.service.trainer import TrainerOptions, job_dir

TIMEOUT = 60.0
STEPS = 12


def config() -> JobConfig:
    return JobConfig(
        model=ModelSource(spec=nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).spec()),
        dataset="synthetic:classification:n=90,features=8,classes=3,seed=3",
        loss=Component("CrossEntropyLoss"),
        optimizer=Component("SGD", {"lr": 0.05, "momentum": 0.9}),
        batch_size=20,
        steps=STEPS,
        micro_shards=4,
        seed=11,
        checkpoint_interval=4,
    )


class FullDisk:
    """Makes every write to `store` fail as SQLite fails on a full disk, while armed."""

    def __init__(self, store: Store) -> None:
        self.left = 0
        self.refused = 0
        self._lock = threading.Lock()
        real = store._write

        @contextmanager
        def write():
            with self._lock:
                refuse = self.left > 0
                if refuse:
                    self.left -= 1
                    self.refused += 1
            if refuse:
                raise sqlite3.OperationalError("database or disk is full")
            with real() as conn:
                yield conn

        store._write = write

    def refuse(self, count: int = 1 << 30) -> None:
        with self._lock:
            self.left = count

    def room(self) -> None:
        with self._lock:
            self.left = 0

    def wait_refused(self, count: int = 1) -> None:
        deadline = time.monotonic() + TIMEOUT
        while self.refused < count:
            assert time.monotonic() < deadline, "no write was refused"
            time.sleep(0.01)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(trainer_module, "_STORAGE_RETRY_FIRST_S", 0.002)
    monkeypatch.setattr(trainer_module, "_STORAGE_RETRY_MAX_S", 0.02)


def final_params(mgr: JobManager, job_id: str) -> np.ndarray:
    ck = CheckpointManager(job_dir(mgr.state_dir, job_id) / "checkpoints").latest()
    assert ck.step == STEPS
    return ck.params


def train_steps(mgr: JobManager, job_id: str) -> list[int]:
    return [m.step for m in mgr.store.metrics(job_id, kind="train")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The parameters of an undisturbed run."""
    pool = InProcessPool(1)
    mgr = JobManager(tmp_path_factory.mktemp("ref"), pool)
    try:
        job_id = mgr.submit(config()).id
        assert mgr.wait(job_id, TIMEOUT).state is JobState.SUCCEEDED
        return final_params(mgr, job_id)
    finally:
        mgr.close()
        pool.close()


def _filling_disk(tmp_path, workers: int, at_step: int, writes: int = 1 << 30):
    """A pool, a JobManager on `tmp_path` and its FullDisk, which refuses the next `writes`
    writes once the loop has finished step `at_step`."""
    holder = {}

    def on_step(job_id, step):
        if step == at_step:
            holder["disk"].refuse(writes)

    pool = InProcessPool(workers)
    mgr = JobManager(tmp_path, pool, TrainerOptions(on_step=on_step))
    holder["disk"] = disk = FullDisk(mgr.store)
    return pool, mgr, disk


def test_a_full_job_database_pauses_the_job_which_then_ends_as_if_undisturbed(
    tmp_path, reference, caplog
):
    pool, mgr, disk = _filling_disk(tmp_path, workers=2, at_step=5, writes=8)
    try:
        with caplog.at_level(logging.WARNING, logger="shardgrad.service.trainer"):
            job_id = mgr.submit(config()).id
            rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        assert disk.refused == 8
        assert final_params(mgr, job_id).tobytes() == reference.tobytes()
        assert train_steps(mgr, job_id) == list(range(1, STEPS + 1))  # each step once
        assert rec.step == STEPS
        text = caplog.text
        assert f"job {job_id} paused at step" in text and "database or disk is full" in text
        assert f"job {job_id} continues at step" in text
    finally:
        mgr.close()
        pool.close()


def test_a_coordinator_that_lets_go_of_a_paused_job_leaves_it_resumable(tmp_path, reference):
    """Paused at step 7 (checkpoints at 4 and 8): the loop may not checkpoint the step it
    could not record, so the next coordinator redoes steps 5 to 7 from the checkpoint at 4."""
    pool, mgr, disk = _filling_disk(tmp_path, workers=1, at_step=6)
    try:
        job_id = mgr.submit(config()).id
        disk.wait_refused()
        assert mgr.is_active(job_id)  # paused, not ended
    finally:
        mgr.close(timeout=TIMEOUT)  # lets go of the job while every write is still refused
    assert not mgr.is_active(job_id)
    assert CheckpointManager(job_dir(tmp_path, job_id) / "checkpoints").steps() == [4]

    mgr2 = JobManager(tmp_path, pool)
    try:
        assert mgr2.get(job_id).state is JobState.RUNNING
        assert mgr2.recover() == [job_id]
        rec = mgr2.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        assert final_params(mgr2, job_id).tobytes() == reference.tobytes()
        assert train_steps(mgr2, job_id) == list(range(1, STEPS + 1))
    finally:
        mgr2.close()
        pool.close()


def test_a_job_stopped_while_paused_stops_once_there_is_room(tmp_path, reference):
    pool, mgr, disk = _filling_disk(tmp_path, workers=1, at_step=6)
    try:
        job_id = mgr.submit(config()).id
        disk.wait_refused()
        mgr.stop(job_id, timeout=0.2)  # STOPPED cannot be recorded yet
        assert mgr.is_active(job_id)
        disk.room()
        rec = mgr.wait(job_id, TIMEOUT)
        # Step 7's records went in first: the history and the checkpoint agree.
        assert rec.state is JobState.STOPPED and rec.step == 7, (rec.state, rec.step)
        assert train_steps(mgr, job_id) == list(range(1, 8))
        assert CheckpointManager(job_dir(tmp_path, job_id) / "checkpoints").steps()[-1] == 7
        mgr.resume(job_id)
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        assert final_params(mgr, job_id).tobytes() == reference.tobytes()
        assert train_steps(mgr, job_id) == list(range(1, STEPS + 1))
    finally:
        mgr.close()
        pool.close()


def test_other_errors_still_fail_the_job(tmp_path):
    """Only storage faults pause: a bug in a write is no reason to wait."""

    def on_step(job_id, step):
        if step == 2:
            store.record_step = broken

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("no such table: metrics")

    pool = InProcessPool(1)
    mgr = JobManager(tmp_path, pool, TrainerOptions(on_step=on_step))
    store = mgr.store
    try:
        job_id = mgr.submit(config()).id
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.FAILED and "no such table" in rec.reason
    finally:
        mgr.close()
        pool.close()


# ---------------------------------------------------------------------------- the store
class _CommitFails:
    """A connection whose next COMMIT fails and leaves the transaction open, as SQLite may
    after an I/O error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.armed = True

    def execute(self, sql, *args):
        if sql == "COMMIT" and self.armed:
            self.armed = False
            raise sqlite3.OperationalError("disk I/O error")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_a_failed_commit_leaves_the_store_usable(tmp_path):
    with Store(tmp_path / "state.db") as store:
        job = store.create_job("{}")
        real = store._conn()
        store._local.conn = _CommitFails(real)
        with pytest.raises(sqlite3.OperationalError) as e:
            store.add_metrics(job.id, 1, "train", {"loss": 1.0})
        assert is_storage_fault(e.value)
        assert not real.in_transaction
        store.add_metrics(job.id, 2, "train", {"loss": 2.0})
        assert [m.step for m in store.metrics(job.id)] == [2]  # the failed write left nothing


def test_a_real_write_error_is_a_storage_fault_and_the_store_recovers(tmp_path):
    """RLIMIT_FSIZE makes every write of this process to a regular file fail (EFBIG), as a
    full disk does; Python ignores the SIGXFSZ that comes with it."""
    with Store(tmp_path / "state.db") as store:
        job = store.create_job("{}")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
        try:
            with pytest.raises(sqlite3.OperationalError) as e:
                store.add_metrics(job.id, 1, "train", {"loss": 1.0})
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert is_storage_fault(e.value), e.value
        store.add_metrics(job.id, 2, "train", {"loss": 2.0})
        store.set_progress(job.id, 2, 12)
        assert [m.step for m in store.metrics(job.id)] == [2]
        assert store.job(job.id).step == 2


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (sqlite3.OperationalError("disk I/O error"), True),
        (sqlite3.OperationalError("database or disk is full"), True),
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("near 'SELEC': syntax error"), False),
        (sqlite3.IntegrityError("UNIQUE constraint failed: jobs.id"), False),
        (OSError(28, "No space left on device"), False),  # not the database's
    ],
)
def test_which_errors_are_storage_faults(error, fault):
    assert is_storage_fault(error) is fault


def test_storage_faults_by_sqlite_result_code():
    full = sqlite3.OperationalError("whatever the text")
    full.sqlite_errorcode = 13  # SQLITE_FULL
    io_write = sqlite3.OperationalError("whatever the text")
    io_write.sqlite_errorcode = 10 | (3 << 8)  # SQLITE_IOERR_WRITE
    error = sqlite3.OperationalError("whatever the text")
    error.sqlite_errorcode = 1  # SQLITE_ERROR
    assert is_storage_fault(full) and is_storage_fault(io_write)
    assert not is_storage_fault(error)


def test_worker_records_refused_by_the_database_are_written_later(tmp_path):
    pool = InProcessPool(1)
    mgr = JobManager(tmp_path, pool)
    disk = FullDisk(mgr.store)
    try:
        disk.refuse()
        pool.scale(2)  # the listener runs in this thread: a refusal must not reach it
        assert {w.id for w in mgr.store.list_workers()} == {"inproc-0"}
        disk.room()
        deadline = time.monotonic() + 10
        while {w.id for w in mgr.store.list_workers()} != {"inproc-0", "inproc-1"}:
            assert time.monotonic() < deadline, "the worker records were never written"
            time.sleep(0.05)
    finally:
        mgr.close()
        pool.close()


def test_a_final_state_that_cannot_be_recorded_does_not_leave_a_dangling_thread(tmp_path):
    """Ending FAILED needs the database too: the loop waits for room, then records it."""

    def on_step(job_id, step):
        if step == 2:
            disk.refuse(5)
            raise RuntimeError("boom")

    pool = InProcessPool(1)
    mgr = JobManager(tmp_path, pool, TrainerOptions(on_step=on_step))
    disk = FullDisk(mgr.store)
    try:
        job_id = mgr.submit(dataclasses.replace(config(), steps=4)).id
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.FAILED and "boom" in rec.reason
        assert disk.refused == 5
    finally:
        mgr.close()
        pool.close()
