"""CUDA workers through a real coordinator: `shardgrad worker --device cuda` processes train a
job with BatchNorm to the same bytes whether one or two of them share it, and close to what
CPU workers train. Skipped where there is no CUDA GPU."""

from __future__ import annotations

import numpy as np
import pytest
from _servertest import mlp_config

import shardgrad as sg
from shardgrad import nn
from shardgrad.serialization import load_safetensors_bytes

DEVICE = "cuda"
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not sg.cuda.is_available(), reason="needs a CUDA GPU and cupy"),
]

BN_SPEC = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3)).spec()


def _train(procs, state_dir, workers: int, device: str) -> bytes:
    server = procs.coordinator(state_dir)
    for _ in range(workers):
        procs.worker(server.address, server.token, "--device", device)
    server.wait_workers(workers, timeout=120)
    job = server.submit(mlp_config(model={"spec": BN_SPEC}, micro_shards=4, checkpoint_interval=0))
    server.wait_succeeded(job.job_id, timeout=300)
    return server.model(job.job_id)


def test_cuda_workers_train_the_same_bytes_with_one_or_two(procs, tmp_path):
    one = _train(procs, tmp_path / "one", 1, DEVICE)
    two = _train(procs, tmp_path / "two", 2, DEVICE)
    assert one == two
    on_cpu = load_safetensors_bytes(_train(procs, tmp_path / "cpu", 1, "cpu"))
    on_gpu = load_safetensors_bytes(one)
    assert sorted(on_gpu) == sorted(on_cpu)
    for name, value in on_cpu.items():  # running statistics included
        np.testing.assert_allclose(
            on_gpu[name].numpy(), value.numpy(), rtol=1e-3, atol=1e-4, err_msg=name
        )
