"""Fixtures for the server tests: processes that are always stopped, and one Ray session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # `_slow_models` is imported by path, like a user's package
    sys.path.insert(0, str(HERE))

# Ray resolves 127.0.0.1 to the machine's network address unless told it runs without a
# cluster; the test Ray (and the coordinators that join it) stay on loopback. Read when Ray is
# first imported, so it is set before any test imports it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture
def procs(tmp_path):
    from _servertest import Processes

    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture(scope="module")
def module_procs(tmp_path_factory):
    from _servertest import Processes

    started = Processes(tmp_path_factory.mktemp("procs"))
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray with 2 CPUs for the whole session; yields the address to join it at."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        # Ray's worker processes inherit the environment Ray starts with: the user models
        # beside this file are then importable by actors, as a user's installed package is.
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), saved]))
        try:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                log_to_driver=False,
                _node_ip_address="127.0.0.1",  # keep every Ray socket on loopback
            )
        finally:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        if started:
            ray.shutdown()
