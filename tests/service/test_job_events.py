"""Events recorded where things happen: a job's course (submitted, started, waiting, paused,
stopped, resumed, recovered after a restart, deleted), the faults the loop works around (a
worker dropped and its micro-shards recomputed, a checkpoint that cannot be written, a
non-finite step skipped), worker membership in the gRPC pool, and the coordinator itself. An
event log that cannot be written never stops training."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time

import pytest
from _servertest import until

from shardgrad import nn
from shardgrad.client import Client
from shardgrad.service import events
from shardgrad.service.checkpoint import CheckpointManager
from shardgrad.service.config import Component, JobConfig, ModelSource
from shardgrad.service.jobs import JobManager
from shardgrad.service.pools.grpc_pool import GrpcPool
from shardgrad.service.pools.inprocess import InProcessPool
from shardgrad.service.server import Coordinator, ServeOptions
from shardgrad.service.store import JobState
from shardgrad.service.trainer import TrainerOptions

TIMEOUT = 60.0


def config(**changes) -> JobConfig:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    cfg = JobConfig(
        model=ModelSource(spec=model.spec()),
        dataset="synthetic:classification:n=90,features=8,classes=3,seed=3",
        loss=Component("CrossEntropyLoss"),
        optimizer=Component("SGD", {"lr": 0.05}),
        batch_size=20,
        steps=12,
        micro_shards=6,
        seed=11,
        checkpoint_interval=4,
    )
    return dataclasses.replace(cfg, **changes)


@pytest.fixture
def make_manager(tmp_path):
    """JobManager factory over in-process pools; everything it made is closed afterwards."""
    made = []

    def make(pool, options=None, folder="state"):
        mgr = JobManager(tmp_path / folder, pool, options or TrainerOptions(step_timeout_s=30))
        made.append((mgr, pool))
        return mgr

    yield make
    for mgr, pool in reversed(made):
        mgr.close(timeout=30)
        pool.close()


def job_events(mgr, job_id):
    return mgr.store.events(job_id=job_id, limit=1000)


def kinds(evs):
    return [e.kind for e in evs]


def assert_known(evs):
    unknown = {e.kind for e in evs} - set(events.KINDS)
    assert not unknown, f"kinds missing from events.KINDS: {unknown}"


def test_a_failed_worker_is_dropped_recomputed_elsewhere_and_the_job_succeeds(make_manager):
    def fault(worker_id, job_id, step, ids):
        if worker_id == "inproc-1" and step == 4:
            raise RuntimeError("simulated crash")

    mgr = make_manager(InProcessPool(3, fault=fault))
    job_id = mgr.submit(config()).id
    assert mgr.wait(job_id, TIMEOUT).state is JobState.SUCCEEDED

    evs = job_events(mgr, job_id)
    assert_known(evs)
    got = kinds(evs)
    assert got[:2] == ["job_submitted", "job_started"] and got[-1] == "job_succeeded"
    assert evs[1].message == "at step 0 of 12"
    assert evs[-1].message == "trained all 12 steps"

    (dropped,) = [e for e in evs if e.kind == "worker_dropped"]
    assert (dropped.worker_id, dropped.level) == ("inproc-1", "warning")
    assert "failed at step 5" in dropped.message and "simulated crash" in dropped.message
    (recomputed,) = [e for e in evs if e.kind == "shards_recomputed"]
    # Six micro-shards over three workers: inproc-1 held 2 and 3; the other two redo them.
    assert (
        recomputed.message
        == "step 5: micro-shards 2, 3 of inproc-1 recomputed on inproc-0, inproc-2"
    )
    assert recomputed.worker_id == "inproc-1"
    assert dropped.id < recomputed.id < evs[-1].id
    assert [e.message for e in evs if e.kind == "checkpoint_written"] == [
        f"checkpoint at step {s} written" for s in (4, 8, 12)
    ]

    # Membership is global: three workers joined, the dropped one left the pool.
    every = mgr.store.events(limit=1000)
    assert_known(every)
    live = [e.worker_id for e in every if e.kind == "worker_live"]
    assert live == ["inproc-0", "inproc-1", "inproc-2"]
    (lost,) = [e for e in every if e.kind == "worker_lost"]
    assert lost.worker_id == "inproc-1" and lost.job_id is None and lost.level == "warning"
    assert dropped.id < lost.id


def test_a_worker_that_misses_its_deadline_is_dropped_with_that_reason(make_manager):
    def fault(worker_id, job_id, step, ids):
        if worker_id == "inproc-1" and step == 2:
            time.sleep(1.5)

    mgr = make_manager(InProcessPool(2, fault=fault), TrainerOptions(step_timeout_s=0.5))
    job_id = mgr.submit(config(steps=4)).id
    assert mgr.wait(job_id, TIMEOUT).state is JobState.SUCCEEDED
    evs = job_events(mgr, job_id)
    (dropped,) = [e for e in evs if e.kind == "worker_dropped"]
    assert dropped.worker_id == "inproc-1"
    assert "missed its deadline at step 3" in dropped.message
    (recomputed,) = [e for e in evs if e.kind == "shards_recomputed"]
    assert recomputed.message.startswith("step 3: micro-shards 3, 4, 5 of inproc-1 recomputed on")


def test_waiting_for_workers_pausing_and_continuing(make_manager):
    pool = InProcessPool(0)
    holder = {}

    def paused_then_back():
        until(lambda: "job_paused" in kinds(job_events(holder["mgr"], holder["job"])))
        pool.add_worker()

    def on_step(job_id, step):
        if step == 3:  # the only worker dies; another comes once the job has noticed
            pool.remove_worker("inproc-0", "killed")
            threading.Thread(target=paused_then_back, daemon=True).start()

    mgr = holder["mgr"] = make_manager(pool, TrainerOptions(worker_grace_s=30, on_step=on_step))
    job_id = holder["job"] = mgr.submit(config(steps=6)).id
    until(lambda: "job_waiting" in kinds(job_events(mgr, job_id)))
    pool.add_worker()
    assert mgr.wait(job_id, TIMEOUT).state is JobState.SUCCEEDED
    evs = job_events(mgr, job_id)
    assert_known(evs)
    flow = [k for k in kinds(evs) if k.startswith("job_")]
    assert flow == [
        "job_submitted",
        "job_waiting",
        "job_started",
        "job_paused",
        "job_continued",
        "job_succeeded",
    ]
    paused = next(e for e in evs if e.kind == "job_paused")
    assert paused.level == "warning" and paused.message == "at step 3"
    assert next(e for e in evs if e.kind == "job_continued").message == "workers are back at step 3"


def test_stop_resume_delete_and_recovery_after_a_restart(make_manager):
    holder = {}

    def on_step(job_id, step):
        if step == 5 and not holder.get("stopped"):
            holder["stopped"] = True
            holder["mgr"].stop(job_id)

    mgr = holder["mgr"] = make_manager(InProcessPool(2), TrainerOptions(on_step=on_step))
    job_id = mgr.submit(config()).id
    assert mgr.wait(job_id, TIMEOUT).state is JobState.STOPPED
    mgr.resume(job_id)
    assert mgr.wait(job_id, TIMEOUT).state is JobState.SUCCEEDED
    evs = job_events(mgr, job_id)
    stopped = next(e for e in evs if e.kind == "job_stopped")
    resumed = next(e for e in evs if e.kind == "job_resumed")
    assert stopped.message == "stopped by request at step 5"
    assert resumed.message == "from its checkpoint at step 5" and stopped.id < resumed.id
    assert "checkpoint at step 5 written" in [e.message for e in evs]
    assert mgr.delete(job_id) is not None
    assert kinds(job_events(mgr, job_id))[-1] == "job_deleted"  # outlives the job

    # A coordinator that lets go mid-job (it is shutting down) leaves the job RUNNING; the
    # next one on the same state directory picks it up from the checkpoint.
    def let_go(job_id, step):
        if step == 4:
            holder["first"].release(job_id)

    first = holder["first"] = make_manager(
        InProcessPool(1), TrainerOptions(on_step=let_go), folder="restart"
    )
    other = first.submit(config()).id
    first.wait(other, TIMEOUT)
    assert first.get(other).state is JobState.RUNNING
    first.close()
    second = make_manager(InProcessPool(1), folder="restart")
    assert second.recover() == [other]
    assert second.wait(other, TIMEOUT).state is JobState.SUCCEEDED
    evs = job_events(second, other)
    assert_known(evs)
    recovered = next(e for e in evs if e.kind == "job_recovered")
    assert recovered.level == "warning"
    assert recovered.message.endswith("resumes from its checkpoint at step 4")
    after = kinds(e for e in evs if e.id > recovered.id)
    assert after[:2] == ["job_resumed", "job_started"] and after[-1] == "job_succeeded"


def test_a_checkpoint_that_cannot_be_written_is_an_event_and_training_goes_on(
    make_manager, monkeypatch
):
    save = CheckpointManager.save

    def full_disk(self, step, *args, **kwargs):
        if step == 4:
            raise OSError(28, "No space left on device")
        return save(self, step, *args, **kwargs)

    monkeypatch.setattr(CheckpointManager, "save", full_disk)
    mgr = make_manager(InProcessPool(1))
    job_id = mgr.submit(config()).id
    assert mgr.wait(job_id, TIMEOUT).state is JobState.SUCCEEDED
    evs = job_events(mgr, job_id)
    (failed,) = [e for e in evs if e.kind == "checkpoint_failed"]
    assert failed.level == "warning" and "step 4 not written" in failed.message
    assert "No space left on device" in failed.message
    assert [e.message for e in evs if e.kind == "checkpoint_written"] == [
        "checkpoint at step 8 written",
        "checkpoint at step 12 written",
    ]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow notes
def test_nonfinite_steps_skipped_and_failing_ones(make_manager):
    mgr = make_manager(InProcessPool(1))
    cfg = config(optimizer=Component("SGD", {"lr": 1e30}), steps=30, checkpoint_interval=0)
    failing = mgr.submit(cfg).id
    rec = mgr.wait(failing, TIMEOUT)
    assert rec.state is JobState.FAILED
    failed = job_events(mgr, failing)[-1]
    assert (failed.kind, failed.level, failed.message) == ("job_failed", "error", rec.reason)

    skipping = mgr.submit(dataclasses.replace(cfg, skip_nonfinite=True)).id
    assert mgr.wait(skipping, TIMEOUT).state is JobState.SUCCEEDED
    skipped = [e for e in job_events(mgr, skipping) if e.kind == "step_skipped"]
    flagged = [
        m.step
        for m in mgr.store.metrics(skipping, kind="train")
        if m.values.get("skipped_nonfinite")
    ]
    assert flagged and len(skipped) == len(flagged)
    assert skipped[0].message == f"non-finite loss or gradient at step {flagged[0]}"


def test_an_event_log_that_cannot_be_written_does_not_stop_training(make_manager, monkeypatch):
    def fault(worker_id, job_id, step, ids):
        if worker_id == "inproc-1" and step == 2:
            raise RuntimeError("simulated crash")

    mgr = make_manager(InProcessPool(2, fault=fault))

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(mgr.store, "add_event", broken)
    job_id = mgr.submit(config()).id
    rec = mgr.wait(job_id, TIMEOUT)
    assert rec.state is JobState.SUCCEEDED, rec.reason
    assert rec.step == 12
    monkeypatch.undo()
    assert job_events(mgr, job_id) == []


def test_grpc_workers_joining_draining_leaving_and_dying(tmp_path):
    pool = GrpcPool("token", heartbeat_interval=0.1, heartbeat_timeout=0.6)
    mgr = JobManager(tmp_path / "state", pool)
    try:
        first = pool.register("127.0.0.1:1", device="cpu")
        second = pool.register("127.0.0.1:2", device="cuda:0")

        def of(kind):
            return [e for e in mgr.store.events(limit=1000) if e.kind == kind]

        joined = {e.worker_id: e.message for e in of("worker_live")}
        assert joined[second] == f"worker {second} joined the grpc pool (127.0.0.1:2, cuda:0)"

        # Keep `first` alive by heartbeat while `second` is scaled away and leaves.
        stop = threading.Event()

        def beat():
            while not stop.wait(0.05):
                pool.heartbeat(first)

        beating = threading.Thread(target=beat, daemon=True)
        beating.start()
        try:
            pool.scale(1)
            (draining,) = of("worker_draining")
            assert draining.worker_id == second
            pool.deregister(second, "drained")
            until(lambda: of("worker_left"))
            (left,) = of("worker_left")
            assert left.worker_id == second and "deregistered (drained)" in left.message
            assert of("worker_lost") == []
        finally:
            stop.set()
            beating.join(5)

        # Heartbeats stop: the pool gives up on `first`, and the log says why.
        until(lambda: of("worker_lost"))
        (lost,) = of("worker_lost")
        assert lost.worker_id == first and "no heartbeat for 0.6 s" in lost.message
        assert_known(mgr.store.events(limit=1000))
    finally:
        mgr.close()
        pool.close()


def test_the_coordinator_records_its_start_scaling_and_stop(tmp_path):
    opts = ServeOptions(state_dir=tmp_path / "state", pool="inprocess", local_workers=1)
    coordinator = Coordinator(opts).start()
    try:
        with Client(coordinator.dial_address, token=coordinator.token) as client:
            client.scale(2)
        store = coordinator.manager.store
        until(lambda: any(e.kind == "workers_scaled" for e in store.events(limit=1000)))
    finally:
        coordinator.stop()
    again = Coordinator(opts).start()
    try:
        evs = again.manager.store.events(limit=1000)
    finally:
        again.stop()
    assert_known(evs)
    got = [k for k in kinds(evs) if k.startswith(("coordinator_", "workers_"))]
    assert got == [
        "coordinator_started",
        "workers_scaled",
        "coordinator_stopping",
        "coordinator_started",
    ]
    started = next(e for e in evs if e.kind == "coordinator_started")
    assert started.message.startswith("listening on 127.0.0.1:")
    assert started.message.endswith("with the inprocess pool")
    scaled = next(e for e in evs if e.kind == "workers_scaled")
    assert scaled.message == "scaled to 2 inprocess workers"
    assert "inproc-1" in [e.worker_id for e in evs if e.kind == "worker_live"]
    # The restarted coordinator's own workers are in the log too, although their ids are
    # those of the first one's.
    stopped = max(i for i, e in enumerate(evs) if e.kind == "coordinator_stopping")
    later = [e for e in evs[stopped:] if e.kind == "worker_live"]
    assert [(e.worker_id, e.message) for e in later] == [
        ("inproc-0", "worker inproc-0 is live again")
    ]
