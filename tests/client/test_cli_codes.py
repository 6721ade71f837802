"""The `shardgrad` command's help, exit codes and demo, as scripts see them: real processes
against a real coordinator found through its state directory."""

from __future__ import annotations

import json

import pytest
from clienttest_helpers import CLIENT_COMMANDS, DATASET, cli_env, run_ok, shardgrad

from shardgrad.client import Client
from shardgrad.client.cli import build_parser


def py_job_model():
    from shardgrad import nn

    return nn.Sequential(nn.Linear(8, 3))


def test_help_on_everything(capsys):
    top = shardgrad("--help", env=cli_env())
    assert top.returncode == 0
    for name in ("serve", "worker", *CLIENT_COMMANDS):
        assert name in top.stdout
    parser = build_parser()
    for name in CLIENT_COMMANDS:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([name, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        if name == "demo":  # starts its own coordinator: no address, no JSON output
            assert "--backend" in text and "--workers" in text
            continue
        assert "--json" in text and "exit codes:" in text and "--address" in text


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow that fails a job
def test_exit_codes(env, py_job, tmp_path, coordinator):
    def code(*args, env=env):
        proc = shardgrad(*args, env=env)
        return proc.returncode, proc.stderr

    rc, err = code("status", "no-such-job")
    assert rc == 5 and "no job" in err
    rc, err = code("jobs", env={**env, "SHARDGRAD_TOKEN": "wrong"})
    assert rc == 4
    rc, err = code("jobs", "--address", "127.0.0.1:1", "--timeout", "3")
    assert rc == 3 and "unavailable" in err
    rc, err = code("submit", str(py_job), "--set", "batch_size=0")
    assert rc == 6 and "batch_size" in err
    rc, err = code("submit", str(tmp_path / "missing.py"))
    assert rc == 2 and "no such file" in err
    rc, err = code(
        "submit",
        str(py_job),
        "--set",
        'optimizer={"name": "SGD", "kwargs": {"lr": 1e30}}',
        "--steps",
        "40",
        "--wait",
        "--no-progress",
    )
    assert rc == 7 and "non-finite" in err
    rc, err = code("status", "no-such-job", "--json")
    assert rc == 5 and json.loads(err) == {
        "error": "job_id: no job no-such-job",
        "code": "NOT_FOUND",
        "exit_code": 5,
    }

    with Client(state_dir=coordinator.state_dir) as c:
        job = c.submit(py_job_model(), DATASET, steps=100_000, batch_size=20, micro_shards=2)
        next(iter(job.stream_metrics()))
        rc, err = code("delete", job.id)
        assert rc == 6 and "stop it first" in err
        rc_stop, _ = code("stop", job.id)
        assert rc_stop == 0
        assert c.job(job.id).status().state == "STOPPED"
    rc, _ = code("status", job.id, "--wait", "--no-progress")
    assert rc == 8
    deleted = run_ok("delete", job.id, "--json", env=env)
    reply = json.loads(deleted.stdout)
    assert reply["job_id"] == job.id and reply["deleted"] is True and reply["freed_bytes"] > 0
    rc, err = code("delete", job.id)
    assert rc == 5 and "no job" in err
    rc, err = code("delete", "not/an/id")
    assert rc == 6 and "job_id" in err


def test_smoke_trains_digits(env):
    proc = run_ok("smoke", "--epochs", "1", "--no-progress", "--json", env=env, timeout=120)
    status = json.loads(proc.stdout)
    assert status["state"] == "SUCCEEDED" and status["name"] == "demo-digits"
    assert status["config"]["dataset"] == "digits" and status["total_steps"] > 10
    lines = run_ok("metrics", status["job_id"], "--json", env=env).stdout.splitlines()
    accuracy = [json.loads(x)["eval_accuracy"] for x in lines if "eval_accuracy" in x]
    assert accuracy[-1] > max(0.7, accuracy[0])  # it learns the real digits
