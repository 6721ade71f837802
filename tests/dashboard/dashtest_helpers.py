"""Helpers for the dashboard tests: a coordinator (JobManager, in-process workers) with its
dashboard on a free port, and small HTTP helpers."""

from __future__ import annotations

import dataclasses
import http.client
import json
import time

TOKEN = "dashboard-test-token"


def mlp_spec(d_in: int = 8, hidden: int = 16, classes: int = 3) -> dict:
    from shardgrad import nn

    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, classes)).spec()


def job_config(**changes):
    from shardgrad.service.config import Component, JobConfig, ModelSource

    cfg = JobConfig(
        model=ModelSource(spec=mlp_spec()),
        dataset="synthetic:classification:n=200,features=8,classes=3,seed=3",
        loss=Component("CrossEntropyLoss"),
        optimizer=Component("SGD", {"lr": 0.1}),
        batch_size=20,
        steps=20,
        micro_shards=4,
        seed=5,
        checkpoint_interval=5,
        keep_checkpoints=2,
        eval_fraction=0.2,
        eval_interval=5,
        eval_metrics=["loss", "accuracy"],
    )
    return dataclasses.replace(cfg, **changes)


@dataclasses.dataclass
class Coordinator:
    manager: object
    pool: object
    server: object
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        path: str,
        method: str = "GET",
        token: str | None = "default",
        headers: dict | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict, bytes]:
        """(status, headers with lower-case names, body); redirects are not followed."""
        hdrs = dict(headers or {})
        if token == "default":
            token = self.token
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def get_json(self, path: str, **kw):
        status, _, body = self.request(path, **kw)
        assert status == 200, (status, body[:300])
        return json.loads(body)


def start_coordinator(tmp_path, workers: int = 2, fault=None, token: str | None = TOKEN):
    from shardgrad.service.dashboard import start_dashboard
    from shardgrad.service.jobs import JobManager
    from shardgrad.service.pools.inprocess import InProcessPool
    from shardgrad.service.trainer import TrainerOptions

    pool = InProcessPool(workers, fault=fault)
    manager = JobManager(tmp_path / "state", pool, TrainerOptions(step_timeout_s=60))
    server, port = start_dashboard(manager, token, "127.0.0.1", 0)
    return Coordinator(manager, pool, server, port, token)


def close_coordinator(c: Coordinator) -> None:
    from shardgrad.service.dashboard import stop_dashboard

    try:
        for rec in c.manager.list():
            if not rec.state.is_terminal:
                c.manager.stop(rec.id, timeout=30)
    finally:
        stop_dashboard(c.server)
        c.manager.close(timeout=30)
        c.pool.close()


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what or predicate}")
