"""The event log on the dashboard: `/api/v1/events` (token, job filter, newest first, paging
by id) and `shardgrad_events_total` on /metrics."""

from __future__ import annotations

import json
import time

import pytest
from dashtest_helpers import close_coordinator, job_config, start_coordinator
from prometheus_client.parser import text_string_to_metric_families

from shardgrad.service.events import KINDS
from shardgrad.service.store import JobState


@pytest.fixture
def faulty(tmp_path):
    """A coordinator whose worker inproc-1 crashes at step 3 of every job."""

    def fault(worker_id, job_id, step, ids):
        if worker_id == "inproc-1" and step == 2:
            raise RuntimeError("simulated crash")

    c = start_coordinator(tmp_path, workers=3, fault=fault)
    try:
        yield c
    finally:
        close_coordinator(c)


def run_job(c, **changes) -> str:
    rec = c.manager.submit(job_config(**changes))
    done = c.manager.wait(rec.id, 60)
    assert done.state is JobState.SUCCEEDED, done.reason
    return rec.id


def events_counter(c) -> dict:
    status, _, body = c.request("/metrics")
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "shardgrad_events":
            return {s.labels["kind"]: s.value for s in family.samples if s.name.endswith("_total")}
    raise AssertionError("no shardgrad_events family on /metrics")


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_events_need_the_token(coordinator, token):
    status, headers, body = coordinator.request("/api/v1/events", token=token)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert b'"events"' not in body


def test_a_jobs_events_newest_first_then_only_newer_ones(faulty):
    job_id = run_job(faulty, steps=10)
    out = faulty.get_json(f"/api/v1/events?job_id={job_id}")
    evs = out["events"]
    assert [e["kind"] for e in evs][0] == "job_succeeded"
    assert [e["kind"] for e in evs][-2:] == ["job_started", "job_submitted"]
    assert [e["id"] for e in evs] == sorted((e["id"] for e in evs), reverse=True)
    assert out["last_id"] == evs[0]["id"]
    assert {e["job_id"] for e in evs} == {job_id}

    (dropped,) = [e for e in evs if e["kind"] == "worker_dropped"]
    assert dropped["worker_id"] == "inproc-1" and dropped["level"] == "warning"
    assert "failed at step 3" in dropped["message"]
    (recomputed,) = [e for e in evs if e["kind"] == "shards_recomputed"]
    # Four micro-shards over three workers are cut [0, 1], [2], [3]: inproc-1 held 2.
    assert (
        recomputed["message"]
        == "step 3: micro-shards 2 of inproc-1 recomputed on inproc-0, inproc-2"
    )
    assert set(evs[0]) == {"id", "time", "job_id", "worker_id", "kind", "level", "message"}

    # Polling from the last id seen: nothing new until something happens.
    again = faulty.get_json(f"/api/v1/events?job_id={job_id}&since_id={out['last_id']}")
    assert again == {"events": [], "last_id": out["last_id"]}

    # Without a job: every job's events and the workers' (the crashed worker left the pool).
    every = faulty.get_json("/api/v1/events?limit=1000")["events"]
    lost = [e for e in every if e["kind"] == "worker_lost"]
    assert [e["worker_id"] for e in lost] == ["inproc-1"] and lost[0]["job_id"] is None
    assert {e["kind"] for e in every} <= set(KINDS)

    # The next job's events are only the newer ones.
    second = run_job(faulty, steps=5)
    newer = faulty.get_json(f"/api/v1/events?since_id={out['last_id']}")["events"]
    assert newer and all(e["id"] > out["last_id"] for e in newer)
    assert {e["job_id"] for e in newer} == {second}


def test_reading_the_whole_log_oldest_first_in_pages(coordinator):
    job_id = run_job(coordinator, steps=10)
    stored = [e.id for e in coordinator.manager.store.events(limit=1000)]
    seen, since = [], 0
    while True:
        page = coordinator.get_json(f"/api/v1/events?order=oldest&limit=3&since_id={since}")
        if not page["events"]:
            break
        assert len(page["events"]) <= 3
        seen += [e["id"] for e in page["events"]]
        since = page["last_id"]
    assert seen == stored
    mine = coordinator.get_json(f"/api/v1/events?job_id={job_id}&order=oldest&limit=2")
    assert [e["kind"] for e in mine["events"]] == ["job_submitted", "job_started"]


@pytest.mark.parametrize(
    "query", ["since_id=abc", "limit=1.5", "order=sideways"], ids=["since", "limit", "order"]
)
def test_bad_event_queries_are_refused(coordinator, query):
    status, _, body = coordinator.request(f"/api/v1/events?{query}")
    assert status == 400
    assert "error" in json.loads(body)


def test_limit_is_kept_within_bounds(coordinator):
    run_job(coordinator, steps=5)
    assert len(coordinator.get_json("/api/v1/events?limit=0")["events"]) == 1
    assert len(coordinator.get_json("/api/v1/events?limit=-5")["events"]) == 1


def test_prometheus_counts_events_by_kind(faulty):
    before = events_counter(faulty)
    assert set(KINDS) <= set(before)  # every kind is there from the start
    assert before["job_failed"] == 0 and before["worker_live"] == 3
    run_job(faulty, steps=10)
    time.sleep(0.3)  # past the dashboard's refresh throttle
    after = events_counter(faulty)
    assert after["job_succeeded"] == 1 and after["job_submitted"] == 1
    assert after["worker_dropped"] == 1 and after["shards_recomputed"] == 1
    assert after["worker_lost"] == 1
    run_job(faulty, steps=5)  # inproc-1 is gone: nothing is dropped this time
    time.sleep(0.3)
    later = events_counter(faulty)
    assert later["job_succeeded"] == 2 and later["worker_dropped"] == 1
    assert all(later[k] >= after[k] for k in after)  # counters never go down
