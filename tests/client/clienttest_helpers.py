"""Helpers for the client tests: a real coordinator (gRPC API, in-process workers) on a free
port, small models and jobs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATASET = "synthetic:classification:n=120,features=8,classes=3,seed=3"


def start_coordinator(state_dir: Path, workers: int = 2):
    from shardgrad.service.server import Coordinator, ServeOptions

    options = ServeOptions(
        state_dir=state_dir,
        pool="inprocess",
        local_workers=workers,
        allow_import=("clienttest_models",),
        step_timeout=60.0,
        worker_grace=60.0,
    )
    return Coordinator(options).start()


def mlp(d_in: int = 8, hidden: int = 16, classes: int = 3):
    from shardgrad import nn

    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def cli_env(state_dir: Path | None = None, **extra: str) -> dict:
    """The environment of a `shardgrad` process: no inherited address or token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDGRAD_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    if state_dir is not None:
        env["SHARDGRAD_STATE_DIR"] = str(state_dir)
    env.update(extra)
    return env


def shardgrad(*args: str, env: dict, cwd: Path | None = None, timeout: float = 60.0):
    """Run `shardgrad ARGS...` as a user would; returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "shardgrad.client.cli", *args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


PY_JOB = f"""
from shardgrad import nn, optim

model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
dataset = "{DATASET}"
loss = nn.CrossEntropyLoss()
optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
batch_size = 20
steps = 5
micro_shards = 2
seed = 3
name = "py-job"
"""

CLIENT_COMMANDS = (
    "submit",
    "jobs",
    "status",
    "metrics",
    "logs",
    "stop",
    "delete",
    "scale",
    "workers",
    "events",
    "download",
    "smoke",
    "demo",
)


def run_ok(*args: str, env: dict, **kw):
    """Run `shardgrad ARGS...` and insist it succeeds."""
    proc = shardgrad(*args, env=env, **kw)
    assert proc.returncode == 0, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc
