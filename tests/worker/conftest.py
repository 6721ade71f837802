"""Fixtures for the worker tests: a fake coordinator on loopback, a Ray session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the helper and user-model modules beside this file
    sys.path.insert(0, str(HERE))

from workertest_helpers import FakeCoordinator  # noqa: E402


@pytest.fixture
def fake_coordinator():
    coordinator = FakeCoordinator(token="test-token")
    try:
        yield coordinator
    finally:
        coordinator.stop()


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (2 CPUs)."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
