"""The state database: typed records, legal state changes, concurrent use, schema version."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from shardgrad.service.store import SCHEMA_VERSION, JobState, Store, StoreError


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def test_job_lifecycle_and_reopen(tmp_path):
    path = tmp_path / "state.db"
    with Store(path) as s:
        job = s.create_job('{"a": 1}', name="first")
        assert job.state is JobState.PENDING and job.step == 0 and job.started_at is None
        s.set_state(job.id, JobState.RUNNING)
        s.set_progress(job.id, 7, 20)
        s.set_state(job.id, JobState.FAILED, reason="non-finite loss at step 7")
    with Store(path) as s:  # everything survives closing and reopening
        job2 = s.job(job.id)
        assert job2.state is JobState.FAILED
        assert job2.reason == "non-finite loss at step 7"
        assert (job2.step, job2.total_steps) == (7, 20)
        assert job2.started_at is not None and job2.finished_at is not None
        assert job2.config_json == '{"a": 1}' and job2.name == "first"


def test_wal_mode_and_schema_version(store):
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()
    assert store.schema_version == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "state.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version"):
        Store(path)


def test_illegal_transitions_are_refused(store):
    job = store.create_job("{}")
    store.set_state(job.id, JobState.RUNNING)
    store.set_state(job.id, JobState.SUCCEEDED)
    with pytest.raises(StoreError, match="cannot go from SUCCEEDED to RUNNING"):
        store.set_state(job.id, JobState.RUNNING)
    with pytest.raises(StoreError, match="no job"):
        store.set_state("missing", JobState.RUNNING)
    other = store.create_job("{}")
    with pytest.raises(StoreError, match="is PENDING"):
        store.set_state(other.id, JobState.STOPPED, expect=JobState.RUNNING)
    assert store.job(other.id).state is JobState.PENDING
    # a stopped job may be resumed
    store.set_state(other.id, JobState.STOPPED)
    store.set_state(other.id, JobState.PENDING)
    assert store.job(other.id).finished_at is None
    assert [j.id for j in store.list_jobs(JobState.SUCCEEDED)] == [job.id]


def test_duplicate_job_id(store):
    store.create_job("{}", job_id="abc")
    with pytest.raises(StoreError, match="already exists"):
        store.create_job("{}", job_id="abc")


def test_metrics_history(store):
    job = store.create_job("{}")
    for step in range(1, 6):
        store.add_metrics(job.id, step, "train", {"loss": 1.0 / step, "samples_per_s": 100.0})
    store.add_metrics(job.id, 5, "eval", {"accuracy": 0.5})
    train = store.metrics(job.id, kind="train")
    assert [m.step for m in train] == [1, 2, 3, 4, 5]
    assert train[1].values["loss"] == 0.5
    assert [m.step for m in store.metrics(job.id, after_step=3)] == [4, 5, 5]
    assert store.metrics(job.id, kind="eval")[0].values == {"accuracy": 0.5}
    store.delete_metrics_after(job.id, 2)
    assert [m.step for m in store.metrics(job.id)] == [1, 2]


def test_a_step_record_and_the_progress_go_in_together(store):
    job = store.create_job("{}", job_id="j1")
    store.record_step(job.id, 1, {"loss": 2.5})
    store.record_step(job.id, 2, {"loss": 2.0})
    assert store.get_job(job.id).step == 2
    rows = store.metrics(job.id)
    assert [(m.step, m.kind, m.values) for m in rows] == [
        (1, "train", {"loss": 2.5}),
        (2, "train", {"loss": 2.0}),
    ]
    assert rows[1].time == store.get_job(job.id).updated_at  # one write, one moment
    with pytest.raises(StoreError, match="no job nope"):
        store.record_step("nope", 1, {"loss": 1.0})
    assert store.metrics("nope") == []  # nothing half-written


def test_workers_and_datasets(store):
    store.upsert_worker("w1", address="127.0.0.1:5000", kind="grpc", info={"device": "cpu"})
    store.heartbeat("w1", at=123.0)
    store.set_worker_state("w1", "LOST")
    w = store.get_worker("w1")
    assert (w.address, w.kind, w.state, w.last_heartbeat, w.info) == (
        "127.0.0.1:5000",
        "grpc",
        "LOST",
        123.0,
        {"device": "cpu"},
    )
    with pytest.raises(StoreError):
        store.heartbeat("nobody")
    store.put_dataset(
        "ab" * 32,
        name="d",
        size_bytes=10,
        num_samples=3,
        x_shape=[4],
        y_shape=[],
        x_dtype="float32",
        y_dtype="int64",
    )
    d = store.get_dataset("ab" * 32)
    assert (d.num_samples, d.x_shape, d.y_shape) == (3, [4], [])
    assert [r.sha256 for r in store.list_datasets()] == ["ab" * 32]


def test_concurrent_writers_and_readers(tmp_path):
    """Eight threads writing metrics and state while others read lose nothing and never fail."""
    store = Store(tmp_path / "state.db")
    jobs = [store.create_job("{}").id for _ in range(4)]
    errors: list[BaseException] = []
    n_steps = 60

    def writer(job_id: str) -> None:
        try:
            store.set_state(job_id, JobState.RUNNING)
            for step in range(1, n_steps + 1):
                store.add_metrics(job_id, step, "train", {"loss": float(step)})
                store.set_progress(job_id, step, n_steps)
            store.set_state(job_id, JobState.SUCCEEDED)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(60):
                for job_id in jobs:
                    store.metrics(job_id)
                    store.job(job_id)
                store.list_jobs()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def second_store_writer() -> None:
        # a second Store on the same file (another process would look the same to SQLite)
        try:
            with Store(tmp_path / "state.db") as other:
                for i in range(40):
                    other.upsert_worker(f"w{i}", kind="inprocess")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(j,)) for j in jobs]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    threads.append(threading.Thread(target=second_store_writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    for job_id in jobs:
        rec = store.job(job_id)
        assert rec.state is JobState.SUCCEEDED and rec.step == n_steps
        assert [m.step for m in store.metrics(job_id)] == list(range(1, n_steps + 1))
    assert len(store.list_workers()) == 40
    store.close()


def test_only_an_ended_job_is_deleted_with_its_metrics(store):
    active = store.create_job("{}")
    ended = store.create_job("{}")
    for job in (active, ended):
        store.add_metrics(job.id, 1, "train", {"loss": 1.0})
    store.set_state(active.id, JobState.RUNNING)
    store.set_state(ended.id, JobState.FAILED, "boom")
    with pytest.raises(StoreError, match="RUNNING; stop it first"):
        store.delete_job(active.id)
    assert store.get_job(active.id) is not None and len(store.metrics(active.id)) == 1
    assert store.delete_job(ended.id) is True
    assert store.get_job(ended.id) is None and store.metrics(ended.id) == []
    assert [j.id for j in store.list_jobs()] == [active.id]
    assert store.delete_job(ended.id) is False
