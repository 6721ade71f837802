"""Faults on real processes over loopback: a gRPC worker or a Ray actor SIGKILLed mid-step, a
worker frozen with SIGSTOP (a straggler), a worker's connection cut, the coordinator SIGKILLed
mid-step and mid-checkpoint-write, and the state directory running out of room during a
checkpoint. Each time no job is lost, no checkpoint is corrupt, the job ends with the same
bytes as an undisturbed run, and the dashboard shows what happened."""

from __future__ import annotations

import contextlib
import os
import queue
import resource
import signal
import socket
import time
from pathlib import Path

import pytest
from _reliability import CuttableProxy, audit_checkpoints, dashboard_of, job_ids_on_disk
from _servertest import mlp_config, pb, reference_models, slow_config, until

from shardgrad import nn
from shardgrad.service.checkpoint import CheckpointManager

SHORT = slow_config(delay=0.06)  # 12 steps, K=4, a checkpoint every 3 steps
LONG = slow_config(delay=0.05, steps=30)
LIVE = ("IDLE", "BUSY")


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    return reference_models(tmp_path_factory)


def _survived(server, state_dir: Path, job_ids: list[str], config: dict, references) -> dict:
    """The promises after a fault: every job known and finished, the bytes of an undisturbed
    run, every checkpoint on disk intact."""
    listed = {j.job_id for j in server.call("ListJobs", pb.ListJobsRequest()).jobs}
    assert set(job_ids) <= listed, f"lost jobs: {set(job_ids) - listed}"
    assert set(job_ids) <= job_ids_on_disk(state_dir)
    expected = references(config)
    for job_id in job_ids:
        done = server.wait_succeeded(job_id, timeout=120)
        assert done.step == config["steps"]
        assert server.model(job_id) == expected, f"job {job_id} trained to other bytes"
        steps = [e.step for e in server.metrics(job_id)]
        assert steps == list(range(1, config["steps"] + 1)), steps
    good, corrupt = audit_checkpoints(state_dir)
    assert corrupt == 0 and good > 0, (good, corrupt)
    return {
        "jobs": len(job_ids),
        "jobs_lost": 0,
        "checkpoints_checked": good,
        "checkpoints_corrupt": corrupt,
        "bitwise_equal": True,
    }


def _drain(process) -> str:
    """What the process has printed so far and no wait_line has taken (its log file is
    written through a buffer, so it can lag)."""
    out = []
    while not process.lines.empty():
        out.append(process.lines.get_nowait())
    return "\n".join(out)


def _dashboard_worker_states(dash) -> dict[str, str]:
    return {
        w["id"]: str(w.get("state", "")).upper() for w in dash.get("/api/v1/workers")["workers"]
    }


# ---------------------------------------------------------------------------- workers
def test_a_grpc_worker_killed_mid_step(procs, tmp_path, references, figures):
    state = tmp_path / "state"
    server = procs.coordinator(state, "--dashboard-port", "0")
    dash = dashboard_of(server)
    procs.worker(server.address, server.token)
    victim = procs.worker(server.address, server.token)
    live = server.wait_workers(2)
    job = server.submit(SHORT)
    server.wait_until(job.job_id, lambda j: j.step >= 3)
    before = {w.worker_id for w in live}
    victim.signal(signal.SIGKILL)
    result = _survived(server, state, [job.job_id], SHORT, references)
    per_step = [e.workers for e in server.metrics(job.job_id)]
    assert per_step[0] == 2 and per_step[-1] == 1, per_step
    # The dashboard: the job succeeded, one of the two workers is no longer live.
    page = dash.get(f"/api/v1/jobs/{job.job_id}")
    assert page["state"] == "SUCCEEDED" and page["step"] == SHORT["steps"]
    states = until(
        lambda: (
            (s := _dashboard_worker_states(dash)) and sum(v in LIVE for v in s.values()) == 1 and s
        ),
        15,
        "the dashboard shows the dead worker",
    )
    assert before <= set(states)
    figures.add(
        "faults",
        "grpc_worker_sigkill_mid_step",
        survived=True,
        workers_per_step=f"{per_step[0]}->{per_step[-1]}",
        **result,
    )


@pytest.mark.reliability_full
def test_a_frozen_worker_is_a_straggler_whose_work_goes_elsewhere(
    procs, tmp_path, references, figures
):
    state = tmp_path / "state"
    server = procs.coordinator(
        state, "--dashboard-port", "0", "--step-timeout", "1.0", "--heartbeat-timeout", "1.5"
    )
    dash = dashboard_of(server)
    procs.worker(server.address, server.token)
    straggler = procs.worker(server.address, server.token)
    server.wait_workers(2)
    job = server.submit(SHORT)
    server.wait_until(job.job_id, lambda j: j.step >= 3)
    straggler.signal(signal.SIGSTOP)
    try:
        result = _survived(server, state, [job.job_id], SHORT, references)
        curve = dash.get(f"/api/v1/jobs/{job.job_id}/metrics")["train"]
        slowest = max(curve["step_seconds"])
        assert slowest >= 0.9, curve["step_seconds"]  # the step that waited out the deadline
        states = _dashboard_worker_states(dash)
        assert sum(v in LIVE for v in states.values()) == 1, states
    finally:
        straggler.signal(signal.SIGCONT)
    server.wait_workers(2, timeout=20)  # it comes back once thawed
    figures.add(
        "faults",
        "grpc_worker_sigstop_straggler",
        survived=True,
        slowest_step_s=round(slowest, 2),
        **result,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.reliability_full
def test_a_workers_connection_is_cut_mid_job(procs, tmp_path, references, figures):
    """The coordinator reaches the worker through a proxy on 127.0.0.2 whose connections are
    reset three times mid-job; the worker process itself never stops."""
    state = tmp_path / "state"
    server = procs.coordinator(state, "--dashboard-port", "0", "--step-timeout", "2.0")
    dash = dashboard_of(server)
    port = _free_port()
    try:
        proxy = CuttableProxy("127.0.0.2", ("127.0.0.1", port), port)
    except OSError as exc:
        pytest.skip(f"127.0.0.2 is not usable here: {exc}")
    try:
        procs.worker(server.address, server.token)
        cut_one = procs.worker(
            server.address, server.token, "--port", str(port), "--advertise-host", "127.0.0.2"
        )
        server.wait_workers(2)
        job = server.submit(LONG)
        server.wait_until(job.job_id, lambda j: j.step >= 3)
        dropped = 0
        for _ in range(3):
            dropped += proxy.cut()
            time.sleep(0.4)
        result = _survived(server, state, [job.job_id], LONG, references)
        assert dropped >= 1
        assert cut_one.proc.poll() is None
        page = dash.get(f"/api/v1/jobs/{job.job_id}")
        assert page["state"] == "SUCCEEDED"
    finally:
        proxy.close()
    figures.add(
        "faults", "grpc_worker_connection_cut", survived=True, connections_cut=dropped, **result
    )


@pytest.mark.reliability_full
def test_a_ray_actor_killed_mid_step(ray_cluster, procs, tmp_path, references, figures):
    config = mlp_config(steps=120, checkpoint_interval=20)
    state = tmp_path / "state"
    server = procs.coordinator(
        state,
        "--dashboard-port",
        "0",
        "--pool",
        "ray",
        "--ray-address",
        ray_cluster,
        "--local-workers",
        "2",
    )
    dash = dashboard_of(server)
    server.wait_workers(2, timeout=120)
    actors = until(lambda: _our_ray_actors(), 30, "two GradientActor processes")
    job = server.submit(config)
    server.wait_until(job.job_id, lambda j: j.step >= 10, timeout=120)
    os.kill(actors[0], signal.SIGKILL)
    result = _survived(server, state, [job.job_id], config, references)
    per_step = [e.workers for e in server.metrics(job.job_id)]
    assert per_step[0] == 2 and min(per_step) == 1, per_step
    assert dash.get(f"/api/v1/jobs/{job.job_id}")["state"] == "SUCCEEDED"
    figures.add(
        "faults",
        "ray_actor_sigkill_mid_step",
        survived=True,
        workers_per_step=f"2->{min(per_step)}",
        **result,
    )


def _our_ray_actors() -> list[int]:
    """PIDs of GradientActor processes descended from this test process (never anyone
    else's Ray on a shared machine)."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if not cmd.startswith(b"ray::GradientActor"):
            continue
        pid = int(entry.name)
        while pid > 1:
            try:
                stat = (Path("/proc") / str(pid) / "stat").read_text()
            except OSError:
                break
            pid = int(stat.rsplit(")", 1)[1].split()[1])
            if pid == me:
                found.append(int(entry.name))
                break
    return sorted(found) if len(found) >= 2 else []


# ---------------------------------------------------------------------------- coordinator
@pytest.mark.reliability_full
def test_the_coordinator_killed_mid_step(procs, tmp_path, references, figures):
    state = tmp_path / "state"
    server = procs.coordinator(state, "--dashboard-port", "0")
    for _ in range(2):
        procs.worker(server.address, server.token)
    server.wait_workers(2)
    jobs = [server.submit(LONG).job_id, server.submit(LONG).job_id]
    server.wait_until(jobs[0], lambda j: j.step >= 5)
    server.process.signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    server = server.restart()
    resumed = server.job(jobs[0]).step
    assert 3 <= resumed < LONG["steps"]
    result = _survived(server, state, jobs, LONG, references)
    dash = dashboard_of(server)  # the new coordinator's: the whole history, no gap
    for job_id in jobs:
        curve = dash.get(f"/api/v1/jobs/{job_id}/metrics")
        assert curve["state"] == "SUCCEEDED"
        assert curve["train"]["step"] == list(range(1, LONG["steps"] + 1))
    figures.add(
        "faults", "coordinator_sigkill_mid_step", survived=True, resumed_from_step=resumed, **result
    )


BIG = mlp_config(
    model={"spec": nn.Sequential(nn.Linear(8, 32768), nn.ReLU(), nn.Linear(32768, 3)).spec()},
    steps=16,
    checkpoint_interval=1,
    optimizer={"name": "SGD", "kwargs": {"lr": 0.01, "momentum": 0.9}},
)


@pytest.mark.reliability_full
def test_the_coordinator_killed_mid_checkpoint_write(procs, tmp_path, references, figures):
    """Caught in the act: the coordinator is frozen while a checkpoint temp file exists, shown
    to still exist, then SIGKILLed."""
    state = tmp_path / "state"
    server = procs.coordinator(state, "--dashboard-port", "0")
    procs.worker(server.address, server.token)
    server.wait_workers(1)
    job = server.submit(BIG)
    folder = state / "jobs" / job.job_id / "checkpoints"
    caught = None
    deadline = time.monotonic() + 60
    while caught is None and time.monotonic() < deadline:
        try:
            temps = [p for p in os.listdir(folder) if p.endswith(".tmp")]
        except FileNotFoundError:
            temps = []
        if temps:
            server.process.signal(signal.SIGSTOP)
            still = [p for p in temps if (folder / p).exists()]
            if still:
                caught = still[0]
                server.process.signal(signal.SIGKILL)
                break
            server.process.signal(signal.SIGCONT)
        time.sleep(0.0005)
    assert caught is not None, "never saw a checkpoint being written"
    server.process.wait(timeout=10)
    server = server.restart()
    # The restarted coordinator removed the temp file of the interrupted write.
    leftovers = [p for p in os.listdir(folder) if p.endswith(".tmp")]
    assert caught not in leftovers, leftovers
    dash = dashboard_of(server)
    result = _survived(server, state, [job.job_id], BIG, references)
    listed = dash.get(f"/api/v1/jobs/{job.job_id}/checkpoints")["checkpoints"]
    assert listed and all(not c["file"].endswith(".tmp") for c in listed)
    figures.add(
        "faults",
        "coordinator_sigkill_mid_checkpoint_write",
        survived=True,
        caught_temp_file=True,
        stale_temp_removed=True,
        **result,
    )


CAP = 2 << 20


@pytest.mark.reliability_full
def test_the_state_directory_runs_out_of_room_during_a_checkpoint(
    procs, tmp_path, references, figures
):
    """RLIMIT_FSIZE on the running coordinator (no root, no mount needed) makes every write past
    the cap fail with EFBIG: the checkpoints (3 MB), bigger than the cap, cannot be written,
    while the job database (and its write-ahead log) still can. Lifted again, the job must
    carry on."""
    config = dict(BIG, steps=24, checkpoint_interval=2)  # 3 MB checkpoints
    state = tmp_path / "state"
    server = procs.coordinator(state, "--dashboard-port", "0")
    dash = dashboard_of(server)
    procs.worker(server.address, server.token)
    server.wait_workers(1)
    job = server.submit(config)
    server.wait_until(job.job_id, lambda j: j.step >= 2)
    folder = state / "jobs" / job.job_id / "checkpoints"
    with _file_size_capped(server.process.proc.pid, CAP):
        start = server.job(job.job_id).step
        server.wait_until(job.job_id, lambda j: j.step >= start + 5, timeout=60)
        during = sorted(int(p[5:17]) for p in os.listdir(folder) if p.startswith("ckpt-"))
    result = _survived(server, state, [job.job_id], config, references)
    assert all(s <= start + 1 for s in during), ("a checkpoint was written past the cap", during)
    log = _drain(server.process)
    refused = log.count("not written")
    assert refused >= 2 and "File too large" in log, "no checkpoint write ever failed"
    page = dash.get(f"/api/v1/jobs/{job.job_id}")
    assert page["state"] == "SUCCEEDED"
    figures.add(
        "faults",
        "state_dir_full_during_checkpoint",
        survived=True,
        limit_bytes=CAP,
        checkpoint_writes_refused=refused,
        **result,
    )


DB_CAP = 16 << 10


@contextlib.contextmanager
def _file_size_capped(pid: int, cap: int):
    """Every file write of process `pid` past `cap` bytes fails (RLIMIT_FSIZE: no root, no
    mount) for the block; the cap is lifted after it, unless the process is gone by then."""
    hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (cap, hard))
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))


def _wait_for_log(process, text: str, timeout: float) -> list[str]:
    """The lines the process prints up to and including the first that contains `text`."""
    seen = []
    deadline = time.monotonic() + timeout
    while not seen or text not in seen[-1]:
        assert time.monotonic() < deadline, f"no line with {text!r} within {timeout} s"
        try:
            seen.append(process.lines.get(timeout=0.1))
        except queue.Empty:
            pass
    return seen


@pytest.mark.reliability_full
def test_the_job_database_runs_out_of_room(procs, tmp_path, references, figures):
    """Like a full disk for every file: the cap (16 KiB) is below the database's own size.
    The job pauses instead of failing, and carries on once the cap is lifted."""
    config = dict(SHORT, steps=20)
    server = procs.coordinator(tmp_path / "state")
    procs.worker(server.address, server.token)
    server.wait_workers(1)
    job = server.submit(config)
    server.wait_until(job.job_id, lambda j: j.step >= 2)
    with _file_size_capped(server.process.proc.pid, DB_CAP):
        time.sleep(1.5)
    done = server.wait_done(job.job_id, timeout=30)
    assert done.state == pb.JOB_STATE_SUCCEEDED, (pb.JobState.Name(done.state), done.error)
    result = _survived(server, tmp_path / "state", [job.job_id], config, references)
    log = _drain(server.process)
    assert f"job {job.job_id} paused at step" in log, "the job never paused"
    assert f"job {job.job_id} continues at step" in log
    figures.add("faults", "job_database_full", survived=True, limit_bytes=DB_CAP, **result)


@pytest.mark.reliability_full
def test_the_coordinator_stopped_while_the_job_database_is_full(
    procs, tmp_path, references, figures
):
    """SIGTERM while the job is paused on a full disk: the coordinator lets go without
    checkpointing the step it could not record; restarted with room, it resumes the job from
    its last checkpoint and the history has every step once."""
    config = dict(SHORT, steps=20)
    state = tmp_path / "state"
    server = procs.coordinator(state)
    procs.worker(server.address, server.token)
    server.wait_workers(1)
    job = server.submit(config)
    server.wait_until(job.job_id, lambda j: j.step >= 4)
    with _file_size_capped(server.process.proc.pid, DB_CAP):  # until the process exits
        paused = _wait_for_log(server.process, f"job {job.job_id} paused at step", 30)[-1]
        server.process.signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0
    paused_at = int(paused.split("paused at step ")[1].split(":")[0])
    ckpts = CheckpointManager(state / "jobs" / job.job_id / "checkpoints").steps()
    assert ckpts and ckpts[-1] < paused_at, (ckpts, paused_at)
    server = server.restart()
    result = _survived(server, state, [job.job_id], config, references)
    figures.add(
        "faults",
        "coordinator_stopped_while_job_database_full",
        survived=True,
        paused_at_step=paused_at,
        resumed_from_step=ckpts[-1],
        **result,
    )
