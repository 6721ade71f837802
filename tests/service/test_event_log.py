"""The event log in the state database: reading it by job and by id, keeping it bounded,
migrating an older database to it, and recording that never fails the caller."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from shardgrad.service import events
from shardgrad.service.store import _MIGRATIONS, EVENT_LEVELS, JobState, Store, StoreError


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "state.db")
    yield s
    s.close()


def test_events_read_back_by_job_and_from_an_id(store):
    a = store.add_event("job_submitted", "first", job_id="job-a", at=100.0)
    b = store.add_event("worker_live", "worker w0 joined", worker_id="w0", at=101.0)
    c = store.add_event(
        "worker_dropped", "w0 failed", level="warning", job_id="job-a", worker_id="w0"
    )
    d = store.add_event("job_failed", "no workers", level="error", job_id="job-b")
    assert a < b < c < d

    every = store.events()
    assert [e.id for e in every] == [a, b, c, d]  # oldest first
    first = every[0]
    assert (first.kind, first.message, first.level, first.job_id, first.worker_id, first.time) == (
        "job_submitted",
        "first",
        "info",
        "job-a",
        None,
        100.0,
    )
    assert [e.kind for e in store.events(job_id="job-a")] == ["job_submitted", "worker_dropped"]
    dropped = store.events(job_id="job-a")[1]
    assert (dropped.level, dropped.worker_id) == ("warning", "w0")
    assert store.events(job_id="nobody") == []

    # A reader that passes the last id it saw gets only what came after, in pages.
    assert [e.id for e in store.events(since_id=b)] == [c, d]
    assert [e.id for e in store.events(since_id=a, limit=2)] == [b, c]
    assert store.events(since_id=d) == []
    # A live view asks for the newest ones, newest first.
    assert [e.id for e in store.events(limit=2, newest_first=True)] == [d, c]
    assert [e.id for e in store.events(job_id="job-a", since_id=a, newest_first=True)] == [c]


def test_events_are_bounded_per_job_and_overall_and_ids_never_repeat(store):
    store.max_events_per_job = 5
    store.max_events = 12
    for i in range(9):
        store.add_event("checkpoint_written", f"step {i}", job_id="busy")
    quiet = store.add_event("job_submitted", "quiet", job_id="quiet")
    busy = store.events(job_id="busy")
    assert [e.message for e in busy] == [f"step {i}" for i in range(4, 9)]  # the newest 5
    assert [e.id for e in store.events(job_id="quiet")] == [quiet]

    for i in range(15):
        last = store.add_event("worker_live", f"w{i}", worker_id=f"w{i}")
    every = store.events(limit=100)
    assert len(every) <= 12
    assert every[-1].id == last
    assert [e.message for e in every][-12:] == [f"w{i}" for i in range(3, 15)]
    # Ids keep growing after pruning, so a reader following by id never misses or repeats.
    assert store.add_event("worker_lost", "w0 gone") == last + 1


def test_bad_levels_and_kinds_are_refused(store):
    with pytest.raises(StoreError, match="level"):
        store.add_event("job_failed", "x", level="fatal")
    with pytest.raises(StoreError, match="kind"):
        store.add_event("", "x")
    assert store.events() == []


def test_long_messages_are_cut(store):
    store.add_event("job_failed", "x" * 10_000, level="error")
    assert len(store.events()[0].message) == 2000


def test_a_deleted_job_keeps_its_events(store):
    job = store.create_job("{}")
    store.add_event("job_submitted", job_id=job.id)
    store.set_state(job.id, JobState.STOPPED)
    assert store.delete_job(job.id)
    store.add_event("job_deleted", "deleted", job_id=job.id)
    assert [e.kind for e in store.events(job_id=job.id)] == ["job_submitted", "job_deleted"]


def test_a_version_1_database_is_migrated_and_keeps_its_jobs(tmp_path):
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    for statement in filter(str.strip, _MIGRATIONS[1].split(";")):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO jobs (id, config_json, state, created_at, updated_at) "
        "VALUES ('old', '{}', 'SUCCEEDED', 1.0, 2.0)"
    )
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with Store(path) as s:
        assert s.schema_version >= 2
        assert s.job("old").state is JobState.SUCCEEDED
        s.add_event("job_deleted", job_id="old")
        assert [e.kind for e in s.events(job_id="old")] == ["job_deleted"]


def test_concurrent_writers_all_land(store):
    def write(n):
        for i in range(40):
            store.add_event("worker_live", f"{n}-{i}", job_id=f"job-{n}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ids = [e.id for e in store.events(limit=1000)]
    assert len(ids) == 160 and ids == sorted(set(ids))


def test_record_never_raises_and_reports_none(tmp_path, caplog):
    s = Store(tmp_path / "state.db")
    assert events.record(s, "job_failed", "why", job_id="j") is not None
    assert s.events()[0].level == "error"  # the kind's level
    assert events.record(s, "job_failed", "why", level="bogus") is None
    s.close()
    with caplog.at_level("WARNING", logger="shardgrad.service.events"):
        assert events.record(s, "job_started", "after close", job_id="j") is None
    assert "not recorded" in caplog.text


def test_every_kind_has_a_known_level():
    assert set(events.KINDS.values()) <= set(EVENT_LEVELS)


def test_job_events_describe_recomputed_micro_shards(store):
    log = events.JobEvents(store, "job-a")
    assert log.shards_recomputed(3, [0, 1], set(), ["w0", "w1"]) is None  # nothing failed yet
    log.shards_recomputed(3, [2, 5], {"w2"}, ["w0", "w1"])
    (e,) = store.events(job_id="job-a")
    assert (e.kind, e.level, e.worker_id) == ("shards_recomputed", "warning", "w2")
    assert e.message == "step 3: micro-shards 2, 5 of w2 recomputed on w0, w1"
