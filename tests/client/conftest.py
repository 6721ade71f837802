"""Fixtures for the client tests: one real coordinator per module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # helpers and the user-model module beside this file
    sys.path.insert(0, str(HERE))

from clienttest_helpers import PY_JOB, cli_env, start_coordinator  # noqa: E402


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory):
    c = start_coordinator(tmp_path_factory.mktemp("coordinator") / "state")
    try:
        yield c
    finally:
        c.stop(timeout=30)


@pytest.fixture(scope="module")
def dashboard_url(coordinator):
    """The coordinator's dashboard, started the way `shardgrad serve --dashboard-port` does."""
    from shardgrad.service.dashboard import start_dashboard, stop_dashboard

    server, port = start_dashboard(coordinator.manager, coordinator.token, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_dashboard(server)


@pytest.fixture
def client(coordinator, dashboard_url):
    from shardgrad.client import Client

    with Client(coordinator.dial_address, token=coordinator.token, dashboard=dashboard_url) as c:
        yield c


@pytest.fixture(scope="module")
def env(coordinator):
    """The environment of `shardgrad` processes that find the coordinator by its state dir."""
    return cli_env(coordinator.state_dir)


@pytest.fixture
def py_job(tmp_path):
    path = tmp_path / "myjob.py"
    path.write_text(PY_JOB)
    return path
