"""`shardgrad serve` starts the dashboard beside the API, tells clients where it is, and
stops it with the coordinator."""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shardgrad.client import Client


def _get(port: int, path: str, token: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def serve(tmp_path):
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDGRAD_")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shardgrad.client.cli",
            "serve",
            "--state-dir",
            str(state),
            "--pool",
            "inprocess",
            "--local-workers",
            "2",
            "--dashboard-port",
            "0",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        yield proc, lines, state
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def wait_line(lines: queue.Queue, prefix: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2).rstrip()
        except queue.Empty:
            continue
        seen.append(line)
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line {prefix!r} in {timeout} s; output: {seen[-20:]}")


def test_serve_runs_the_dashboard_and_clients_find_it(serve):
    proc, lines, state = serve
    line = wait_line(lines, "shardgrad dashboard on http://127.0.0.1:")
    url = line.split(" on ", 1)[1].rstrip("/")
    port = int(url.rsplit(":", 1)[1])
    token = (state / "token").read_text().strip()
    assert json.loads((state / "coordinator.json").read_text())["dashboard"] == url

    assert _get(port, "/healthz") == (200, b'{"status":"ok"}')
    assert _get(port, "/api/v1/jobs")[0] == 401
    assert _get(port, "/api/v1/jobs", token)[0] == 200

    with Client(state_dir=state) as client:  # address, token and dashboard from the state dir
        job = client.submit(
            {
                "type": "Sequential",
                "modules": [{"type": "Linear", "kwargs": {"in_features": 8, "out_features": 3}}],
            },
            "synthetic:classification:n=60,features=8,classes=3,seed=1",
            batch_size=20,
            steps=4,
            micro_shards=2,
            checkpoint_interval=2,
        )
        assert job.wait(progress=False, timeout=60).state == "SUCCEEDED"
        assert [c["step"] for c in job.checkpoints()] == [4, 2]

    status, body = _get(port, "/metrics", token)
    assert status == 200
    samples = {
        s.name: s.value
        for f in text_string_to_metric_families(body.decode())
        for s in f.samples
        if not s.labels
    }
    assert samples["shardgrad_steps_total"] == 4

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    with pytest.raises(OSError):
        _get(port, "/healthz")
