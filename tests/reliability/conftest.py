"""Fixtures for the reliability suite: the server tests' process helpers, a Ray session, the
record of figures that `report.py` turns into docs/reliability.md, and the split between the
short run (part of every test run) and the full run (`SHARDGRAD_RELIABILITY_FULL=1`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SERVICE_TESTS = HERE.parent / "service"
for path in (HERE, SERVICE_TESTS):  # `_servertest`, `_slow_models`, `_reliability`
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

FULL_ENV = "SHARDGRAD_RELIABILITY_FULL"
RESULTS_ENV = "SHARDGRAD_RELIABILITY_RESULTS"


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "reliability_full: a long reliability case; runs only with SHARDGRAD_RELIABILITY_FULL=1",
    )


def pytest_collection_modifyitems(config, items) -> None:
    """Deselect the long cases unless the full suite was asked for."""
    if os.environ.get(FULL_ENV, "") not in ("", "0"):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("reliability_full") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def procs(tmp_path):
    from _reliability import processes

    started = processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray with 2 CPUs on loopback for one module (so it is gone, and takes no CPU,
    when the load test measures throughput); yields its address."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
        )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        if started:
            ray.shutdown()


@pytest.fixture(scope="session")
def figures():
    """Where each case writes what it measured; saved as JSON at the end of the session when
    SHARDGRAD_RELIABILITY_RESULTS names a file (merged with what is there, by case name)."""
    from _reliability import FIGURES as fig

    yield fig
    target = os.environ.get(RESULTS_ENV)
    if target:
        fig.save(Path(target), full=os.environ.get(FULL_ENV, "") not in ("", "0"))


def pytest_runtest_logreport(report) -> None:
    """Known open issues (strict xfails of this suite) go into the figures too."""
    if (
        report.when == "call"
        and getattr(report, "wasxfail", None)
        and "reliability" in report.nodeid
    ):
        from _reliability import FIGURES

        name = report.nodeid.split("::")[-1]
        FIGURES.add("open_issues", name, reason=report.wasxfail.removeprefix("reason: "))
