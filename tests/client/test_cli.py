"""The `shardgrad` command as scripts use it: real processes against a real coordinator,
found through its state directory; tables, JSON and exit codes."""

from __future__ import annotations

import json
import textwrap

import numpy as np
from clienttest_helpers import DATASET, run_ok

from shardgrad.client import Client


def test_submit_a_python_job_and_follow_it_up(env, py_job, tmp_path):
    proc = run_ok("submit", str(py_job), "--wait", "--no-progress", env=env)
    job_id = proc.stdout.splitlines()[0].strip()
    assert "state:" in proc.stdout and "SUCCEEDED" in proc.stdout

    status = json.loads(run_ok("status", job_id, "--json", env=env).stdout)
    assert status["job_id"] == job_id and status["state"] == "SUCCEEDED"
    assert status["name"] == "py-job" and status["step"] == status["total_steps"] == 5
    assert status["config"]["optimizer"] == {"name": "SGD", "kwargs": {"lr": 0.1, "momentum": 0.9}}

    listed = json.loads(run_ok("jobs", "--json", env=env).stdout)["jobs"]
    assert job_id in [j["job_id"] for j in listed]
    table = run_ok("jobs", "--state", "succeeded", env=env).stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "NAME", "STATE", "STEP"]
    row = next(line for line in table if line.startswith(job_id))
    assert "py-job" in row and "SUCCEEDED" in row and "5/5" in row

    lines = run_ok("metrics", job_id, "--json", env=env).stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(r["loss"]) for r in records)
    logs = run_ok("logs", job_id, "--from-step", "4", env=env).stdout.splitlines()
    assert logs[0].split()[:2] == ["STEP", "LOSS"]
    assert [line.split()[0] for line in logs[1:]] == ["4", "5"]

    out = tmp_path / "trained.safetensors"
    done = json.loads(run_ok("download", job_id, "-o", str(out), "--json", env=env).stdout)
    assert done["step"] == 5 and out.stat().st_size == done["nbytes"]
    assert json.loads((tmp_path / "trained.safetensors.json").read_text())["job_id"] == job_id


def test_submit_yaml_and_json_job_files(env, tmp_path, coordinator):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "data.npz", x=rng.standard_normal((40, 8)), y=rng.integers(0, 3, 40))
    (tmp_path / "job.yaml").write_text(
        textwrap.dedent("""
        name: yaml-job
        model:
          type: Sequential
          modules:
            - {type: Linear, kwargs: {in_features: 8, out_features: 3}}
        dataset: data.npz
        optimizer: {name: Adam, kwargs: {lr: 0.01}}
        batch_size: 10
        epochs: 2
        micro_shards: 2
    """)
    )
    job_id = run_ok("submit", str(tmp_path / "job.yaml"), "--no-progress", env=env).stdout.strip()
    waited = run_ok("status", job_id, "--wait", "--no-progress", "--json", env=env)
    status = json.loads(waited.stdout)
    assert status["state"] == "SUCCEEDED" and status["total_steps"] == 8
    with Client(state_dir=coordinator.state_dir) as c:
        uploaded = {d.sha256 for d in c.datasets()}
    assert status["config"]["dataset"] in uploaded

    (tmp_path / "job.json").write_text(
        json.dumps(
            {
                "model": {"import_path": "clienttest_models:TinyNet", "kwargs": {"classes": 3}},
                "dataset": DATASET,
                "steps": 3,
            }
        )
    )
    dry = json.loads(
        run_ok(
            "submit",
            str(tmp_path / "job.json"),
            "--dry-run",
            "--steps",
            "7",
            "--set",
            "micro_shards=4",
            "--set",
            "compression=fp16",
            env=env,
        ).stdout
    )
    assert dry["config"]["steps"] == 7 and dry["config"]["micro_shards"] == 4
    assert dry["config"]["compression"] == "fp16"
    assert dry["config"]["model"]["import_path"] == "clienttest_models:TinyNet"


def test_metrics_follow_streams_until_the_job_ends(env, tmp_path):
    (tmp_path / "slowjob.py").write_text(
        textwrap.dedent(f"""
        from clienttest_models import SlowNet
        model = SlowNet(delay=0.02)
        dataset = "{DATASET}"
        batch_size, steps, micro_shards = 20, 25, 2
    """)
    )
    job_id = run_ok("submit", str(tmp_path / "slowjob.py"), env=env).stdout.strip()
    proc = run_ok("metrics", job_id, "--follow", env=env)
    steps = [line.split()[0] for line in proc.stdout.splitlines()[1:]]
    assert steps == [str(s) for s in range(1, 26)]


def test_workers_and_scale(env):
    workers = json.loads(run_ok("workers", "--json", env=env).stdout)["workers"]
    assert workers and all(w["pool"] == "inprocess" for w in workers)
    scaled = json.loads(run_ok("scale", "3", "--json", env=env).stdout)
    assert scaled["count"] == 3 and len(scaled["workers"]) == 3
    table = run_ok("workers", env=env).stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "POOL", "STATE"] and len(table) == 4
    run_ok("scale", "2", env=env)
