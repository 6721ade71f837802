"""Fixtures for the worker tests: a fake coordinator on loopback, an in-process gRPC worker
registered with it, a client of that worker, a small job, a Ray session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the helper and user-model modules beside this file
    sys.path.insert(0, str(HERE))

from workertest_helpers import TOKEN, FakeCoordinator, make_job  # noqa: E402

import shardgrad as sg  # noqa: E402
from shardgrad import nn  # noqa: E402
from shardgrad.worker.client import WorkerClient  # noqa: E402
from shardgrad.worker.grpc_server import WorkerServer  # noqa: E402


@pytest.fixture
def fake_coordinator():
    coordinator = FakeCoordinator(token=TOKEN)
    try:
        yield coordinator
    finally:
        coordinator.stop()


def _model():
    sg.manual_seed(1)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _serving(server: WorkerServer):
    """The started server for a fixture to yield, stopped when the test ends."""
    server.start()
    try:
        yield server
    finally:
        server.stop(grace=None)


@pytest.fixture
def worker(fake_coordinator, tmp_path):
    yield from _serving(
        WorkerServer(
            fake_coordinator.address,
            cache_dir=tmp_path / "cache",
            token=TOKEN,
            threads_share=1,
            allowed_import_prefixes=["workertest_models"],
        )
    )


@pytest.fixture
def cuda_worker(fake_coordinator, tmp_path):
    """A gRPC worker computing on the GPU; the test is skipped where there is none."""
    if not sg.backend.cuda_is_available():
        pytest.skip("needs a CUDA GPU and cupy")
    yield from _serving(
        WorkerServer(
            fake_coordinator.address, cache_dir=tmp_path / "gpu", token=TOKEN, device="cuda"
        )
    )


@pytest.fixture
def client(worker):
    with WorkerClient(worker.address, token=TOKEN, timeout=20) as c:
        yield c


@pytest.fixture
def job(fake_coordinator):
    model = _model()
    spec, data, flat = make_job(model, n=64, k=8)
    sha = fake_coordinator.add_dataset(data)
    spec = spec.__class__(**{**spec.__dict__, "dataset_sha256": sha})
    return spec, data, flat


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
