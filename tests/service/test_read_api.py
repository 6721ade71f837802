"""The read handlers (GetJob, ListJobs, StreamMetrics) against a real state database: what
they answer, and that the SQL they run does not grow with the number of jobs listed."""

from __future__ import annotations

import json
import math
import types

import grpc
import pytest

from shardgrad.protos import coordinator_pb2 as pb
from shardgrad.service import api as api_module
from shardgrad.service import convert
from shardgrad.service.api import CoordinatorService
from shardgrad.service.config import JobConfig
from shardgrad.service.store import JobState, Store

DATASET = "synthetic:classification:n=90,features=8,classes=3,seed=3"


class Aborted(Exception):
    def __init__(self, code, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code, self.details = code, details


class Context:
    """What the handlers use of a grpc.ServicerContext; abort raises, as gRPC's does."""

    def abort(self, code, details):
        raise Aborted(code, details)

    def is_active(self) -> bool:
        return True

    def time_remaining(self):
        return None


def config_json(**changes) -> str:
    cfg = {"model": {"spec": {"modules": []}}, "dataset": DATASET, "steps": 100}
    cfg.update(changes)
    return JobConfig.from_dict(cfg).to_json()


def train(loss, step: int) -> dict:
    values = {"lr": 0.1, "samples": 20, "samples_per_s": 100.0, "step_seconds": 0.2}
    values.update(workers=2, worker_compute_seconds={"a": 0.01, "b": 0.03}, bytes_sent=10)
    if loss is not None:
        values["loss"] = loss
    return values


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "state.db") as s:
        yield s


@pytest.fixture
def api(store):
    manager = types.SimpleNamespace(store=store, pool=None, datasets=None)
    return CoordinatorService(manager)


def make_job(store, name: str, steps: int, at: int | None = None, state=JobState.RUNNING):
    """A job with a train record per step (loss 1/step) and an eval record every 5 steps,
    whose progress shows step `at` (default: the last)."""
    rec = store.create_job(config_json(name=name), name=name)
    if state is not JobState.PENDING:
        store.set_state(rec.id, JobState.RUNNING)
    for step in range(1, steps + 1):
        store.add_metrics(rec.id, step, "train", train(1.0 / step, step), at=1000.0 + step)
        if step % 5 == 0:
            store.add_metrics(rec.id, step, "eval", {"loss": 9.0, "samples": 30}, at=1000.5 + step)
    store.set_progress(rec.id, steps if at is None else at, 100)
    if state.is_terminal:
        store.set_state(rec.id, state, "done")
    return rec.id


def old_last_loss(store, job_id: str) -> float | None:
    """The rule a job's last_loss follows: the first train record at or after its step."""
    rec = store.job(job_id)
    if rec.step <= 0:
        return None
    found = store.metrics(job_id, kind="train", after_step=rec.step - 1, limit=1)
    return float(found[0].values.get("loss", 0.0)) if found else None


class Statements:
    """Counts the SQL statements this thread's connection to the store runs."""

    def __init__(self, store) -> None:
        self.conn = store._conn()
        self.sql: list[str] = []

    def __enter__(self):
        self.conn.set_trace_callback(self.sql.append)
        return self

    def __exit__(self, *exc) -> None:
        self.conn.set_trace_callback(None)


def test_list_jobs_runs_the_same_few_statements_for_3_jobs_and_for_30(store, api):
    counts = []
    for total in (3, 30):
        while len(store.list_jobs()) < total:
            make_job(store, f"j{len(store.list_jobs())}", steps=4)
        with Statements(store) as st:
            answer = api.ListJobs(pb.ListJobsRequest(), Context())
        assert len(answer.jobs) == total
        assert all(j.last_loss == pytest.approx(0.25) for j in answer.jobs)
        counts.append(len(st.sql))
    assert counts[0] == counts[1] <= 2, counts


def test_get_job_reads_the_database_once_and_stream_metrics_twice(store, api):
    job_id = make_job(store, "one", steps=50)
    with Statements(store) as st:
        api.GetJob(pb.GetJobRequest(job_id=job_id), Context())
    assert len(st.sql) == 1, st.sql
    with Statements(store) as st:
        events = list(api.StreamMetrics(pb.StreamMetricsRequest(job_id=job_id), Context()))
    assert len(events) == 60 and len(st.sql) == 2, st.sql


def test_each_listed_job_shows_the_loss_at_its_current_step(store, api):
    jobs = {
        "pending": make_job(store, "pending", steps=0, state=JobState.PENDING),
        "running": make_job(store, "running", steps=7),
        "ended": make_job(store, "ended", steps=10, state=JobState.SUCCEEDED),
        # Resumed from a checkpoint at step 3: records past it are still there.
        "resumed": make_job(store, "resumed", steps=6, at=3),
        # Its step's record is gone: the next one's loss.
        "gap": make_job(store, "gap", steps=0, at=4),
        # Progress ahead of the records: no loss yet.
        "ahead": make_job(store, "ahead", steps=5, at=9),
    }
    store.add_metrics(jobs["gap"], 6, "train", train(0.6, 6))
    store.add_metrics(jobs["gap"], 4, "eval", {"loss": 7.0})  # not a train record
    # Two records of one step (a step redone after a failure): the first written counts.
    twice = make_job(store, "twice", steps=2)
    store.add_metrics(twice, 3, "train", train(0.3, 3))
    store.add_metrics(twice, 3, "train", train(0.33, 3))
    store.set_progress(twice, 3)
    jobs["twice"] = twice
    no_loss = make_job(store, "no-loss", steps=1)
    store.add_metrics(no_loss, 2, "train", train(None, 2))
    store.set_progress(no_loss, 2)
    jobs["no-loss"] = no_loss
    nan = make_job(store, "nan", steps=1)
    store.add_metrics(nan, 2, "train", train(math.nan, 2))
    store.set_progress(nan, 2)
    jobs["nan"] = nan

    expected = {
        "pending": 0.0,
        "running": 1 / 7,
        "ended": 1 / 10,
        "resumed": 1 / 3,
        "gap": 0.6,
        "ahead": 0.0,
        "twice": 0.3,
        "no-loss": 0.0,
        "nan": math.nan,
    }
    listed = {j.name: j for j in api.ListJobs(pb.ListJobsRequest(), Context()).jobs}
    assert [j.name for j in listed.values()] == list(jobs)  # oldest first
    for name, job_id in jobs.items():
        got = api.GetJob(pb.GetJobRequest(job_id=job_id), Context())
        assert got == listed[name]
        rule = old_last_loss(store, job_id)
        assert got.last_loss == pytest.approx(expected[name], nan_ok=True)
        assert got.last_loss == pytest.approx(0.0 if rule is None else rule, nan_ok=True)
        assert store.last_train_loss(job_id, store.job(job_id).step) == (
            pytest.approx(rule, nan_ok=True) if rule is not None else None
        )


def test_list_jobs_filters_by_state_and_keeps_the_newest(store, api):
    states = [JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.RUNNING] * 3
    ids = [make_job(store, f"j{i}", steps=i + 1, state=s) for i, s in enumerate(states)]
    ctx = Context()

    def listed(**kw):
        return [j.job_id for j in api.ListJobs(pb.ListJobsRequest(**kw), ctx).jobs]

    running = [i for i, s in zip(ids, states, strict=True) if s is JobState.RUNNING]
    assert listed() == ids
    assert listed(limit=5) == ids[-5:]
    assert listed(limit=100) == ids
    assert listed(states=[pb.JOB_STATE_RUNNING]) == running
    assert listed(states=[pb.JOB_STATE_RUNNING], limit=2) == running[-2:]
    both = listed(states=[pb.JOB_STATE_FAILED, pb.JOB_STATE_SUCCEEDED])
    assert both == [i for i, s in zip(ids, states, strict=True) if s is not JobState.RUNNING]
    assert listed(states=[pb.JOB_STATE_STOPPED]) == []
    jobs = api.ListJobs(pb.ListJobsRequest(limit=3), ctx).jobs
    assert [j.last_loss for j in jobs] == pytest.approx([1 / 10, 1 / 11, 1 / 12])
    assert [j.error for j in jobs] == ["", "done", ""]  # FAILED shows its reason
    with pytest.raises(Aborted) as err:
        api.ListJobs(pb.ListJobsRequest(states=[pb.JOB_STATE_RUNNING, 77]), ctx)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details == "states[1]: 77 is not a job state"


def test_get_job_answers_bad_and_unknown_ids_as_before(store, api):
    ctx = Context()
    for job_id, code, details in [
        ("", grpc.StatusCode.INVALID_ARGUMENT, "job_id: required"),
        ("no such!", grpc.StatusCode.INVALID_ARGUMENT, "job_id: 'no such!' is not a job id"),
        ("abc123", grpc.StatusCode.NOT_FOUND, "job_id: no job abc123"),
    ]:
        with pytest.raises(Aborted) as err:
            api.GetJob(pb.GetJobRequest(job_id=job_id), ctx)
        assert (err.value.code, err.value.details) == (code, details)


def test_a_job_shows_its_config_with_every_default_filled_in(store, api):
    job_id = make_job(store, "cfg", steps=1)
    shown = json.loads(api.GetJob(pb.GetJobRequest(job_id=job_id), Context()).config_json)
    assert shown == JobConfig.from_json(store.job(job_id).config_json).to_dict()
    # A config the current schema does not read (an older shardgrad's) is shown as stored,
    # and so is one too large to remember: both, every time they are asked for.
    old = json.dumps({"model": {"spec": {}}, "dataset": DATASET, "retired_field": 1})
    big = config_json(name="x" * (convert._CACHED_CONFIG_CHARS + 1))
    sparse = json.dumps({"model": {"spec": {"modules": []}}, "dataset": DATASET, "steps": 3})
    for _ in range(2):
        assert convert.shown_config(old) == old
        assert convert.shown_config(big) == big
        assert json.loads(convert.shown_config(sparse))["batch_size"] == 32


def test_stream_metrics_sends_each_record_once_as_an_event(store, api):
    job_id = make_job(store, "stream", steps=23)
    ctx = Context()
    events = list(api.StreamMetrics(pb.StreamMetricsRequest(job_id=job_id, from_step=18), ctx))
    assert [(e.step, "eval_loss" in e.values) for e in events] == [
        (18, False),
        (19, False),
        (20, False),
        (20, True),
        (21, False),
        (22, False),
        (23, False),
    ]
    rows = store.metrics(job_id, after_step=17)
    train_loss = {m.step: m.values["loss"] for m in rows if m.kind == "train"}
    assert events == [
        convert.metrics_event(m, JobState.RUNNING, train_loss[m.step] if m.kind == "eval" else None)
        for m in rows
    ]
    first = events[0]
    assert (first.job_id, first.state, first.time) == (job_id, pb.JOB_STATE_RUNNING, 1018.0)
    assert (first.loss, first.lr, first.samples_per_second, first.workers) == (1 / 18, 0.1, 100, 2)
    assert dict(first.values) == {
        "samples": 20,
        "worker_compute_seconds_max": 0.03,
        "bytes_sent": 10,
    }
    evaluated = events[3]
    assert evaluated.loss == 1 / 20  # the step's training loss
    assert dict(evaluated.values) == {"eval_loss": 9.0, "eval_samples": 30}

    store.set_state(job_id, JobState.STOPPED, "stopped by request")
    ended = list(api.StreamMetrics(pb.StreamMetricsRequest(job_id=job_id, from_step=23), ctx))
    assert [e.state for e in ended] == [pb.JOB_STATE_STOPPED]
    everything = list(api.StreamMetrics(pb.StreamMetricsRequest(job_id=job_id), ctx))
    assert len(everything) == 23 + 4


def test_batches_hold_the_same_events_a_reading_at_a_time(store, api, monkeypatch):
    job_id = make_job(store, "batches", steps=23)
    request = pb.StreamMetricsRequest(job_id=job_id, from_step=3)
    one_by_one = list(api.StreamMetrics(request, Context()))
    batches = list(api.StreamMetricsBatches(request, Context()))
    assert len(batches) == 1  # one reading of a job's history, one message
    assert list(batches[0].events) == one_by_one and len(one_by_one) == 21 + 4
    monkeypatch.setattr(api_module, "_METRICS_PER_BATCH", 10)
    split = list(api.StreamMetricsBatches(request, Context()))
    assert [len(b.events) for b in split] == [10, 10, 5]
    assert [e for b in split for e in b.events] == one_by_one

    # Followed: each reading that finds something is one message; the job's end ends it.
    stream = api.StreamMetricsBatches(
        pb.StreamMetricsRequest(job_id=job_id, from_step=23, follow=True), Context()
    )
    assert [e.step for e in next(stream).events] == [23]
    store.add_metrics(job_id, 24, "train", train(0.5, 24))
    store.add_metrics(job_id, 25, "train", train(0.4, 25))
    assert [e.step for e in next(stream).events] == [24, 25]
    store.set_state(job_id, JobState.SUCCEEDED, "done")
    assert list(stream) == []


def test_a_followed_stream_sends_records_as_they_come_and_ends_with_the_job(store, api):
    job_id = make_job(store, "follow", steps=2)
    stream = api.StreamMetrics(pb.StreamMetricsRequest(job_id=job_id, follow=True), Context())
    assert [(e.step, e.state) for e in (next(stream), next(stream))] == [
        (1, pb.JOB_STATE_RUNNING),
        (2, pb.JOB_STATE_RUNNING),
    ]
    # Written while the stream waits: step 3, then its eval record after it, then the end.
    store.add_metrics(job_id, 3, "train", train(0.3, 3))
    third = next(stream)
    store.add_metrics(job_id, 3, "eval", {"loss": 8.0})
    store.set_state(job_id, JobState.SUCCEEDED, "done")
    rest = list(stream)
    assert (third.step, third.loss, third.state) == (3, 0.3, pb.JOB_STATE_RUNNING)
    assert [(e.step, e.loss, dict(e.values), e.state) for e in rest] == [
        (3, 0.3, {"eval_loss": 8.0}, pb.JOB_STATE_SUCCEEDED)
    ]

    gone = make_job(store, "gone", steps=1)
    stream = api.StreamMetrics(pb.StreamMetricsRequest(job_id=gone, follow=True), Context())
    assert next(stream).step == 1
    store.set_state(gone, JobState.STOPPED)
    store.set_state(gone, JobState.PENDING)  # resumed, then deleted by another request
    store.set_state(gone, JobState.FAILED)
    store.delete_job(gone)
    with pytest.raises(Aborted) as err:
        next(stream)
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    assert err.value.details == f"job_id: job {gone} was deleted"
