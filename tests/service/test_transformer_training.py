"""A transformer encoder trained through the coordinator from its spec: torch, accumulating
the same micro-shards, arrives at the same parameters; with dropout on, the trained bytes are
the same for 1, 2 and 3 workers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from shardgrad import nn
from shardgrad.serialization import load_safetensors_bytes
from shardgrad.service.builders import build_model
from shardgrad.service.config import Component, JobConfig, ModelSource
from shardgrad.service.jobs import JobManager
from shardgrad.service.pools.inprocess import InProcessPool
from shardgrad.service.sampler import BatchSampler, cut_micro_shards, train_eval_split
from shardgrad.service.store import JobState
from shardgrad.service.trainer import TrainerOptions

TIMEOUT = 90.0
TOKENS, WIDTH, CLASSES = 4, 8, 3  # each row of 32 features is read as 4 tokens of 8


def encoder(lib, dropout: float) -> nn.Module:
    return lib.nn.Sequential(
        lib.nn.Unflatten(1, (TOKENS, WIDTH)),
        lib.nn.TransformerEncoderLayer(
            WIDTH, 2, 16, dropout=dropout, activation="gelu", batch_first=True, norm_first=True
        ),
        lib.nn.Flatten(),
        lib.nn.Linear(TOKENS * WIDTH, CLASSES),
    )


def config(dropout: float, **changes) -> JobConfig:
    cfg = JobConfig(
        model=ModelSource(spec=encoder(__import__("shardgrad"), dropout).spec()),
        dataset=f"synthetic:classification:n=96,features={TOKENS * WIDTH},classes=3,seed=4",
        loss=Component("CrossEntropyLoss"),
        # SGD, not Adam: the key projection's bias has a zero gradient in exact arithmetic
        # (softmax ignores a shift shared by all keys), and Adam would blow its rounding
        # noise up to full-size steps that no two libraries take alike
        optimizer=Component("SGD", {"lr": 0.1, "momentum": 0.9}),
        batch_size=24,
        steps=10,
        micro_shards=4,
        seed=5,
    )
    return dataclasses.replace(cfg, **changes)


def train(tmp_path, cfg: JobConfig, workers: int, name: str):
    """(trained model bytes, train metrics, the dataset) of one finished job."""
    pool = InProcessPool(workers)
    mgr = JobManager(tmp_path / name, pool, TrainerOptions(step_timeout_s=60))
    try:
        job_id = mgr.submit(cfg).id
        done = mgr.wait(job_id, TIMEOUT)
        assert done.state is JobState.SUCCEEDED, done.reason
        return (
            mgr.model_bytes(job_id),
            mgr.store.metrics(job_id, kind="train"),
            mgr.datasets.resolve(cfg.dataset),
        )
    finally:
        mgr.close()
        pool.close()


def test_parameters_match_torch_accumulating_the_same_micro_shards(tmp_path):
    torch = pytest.importorskip("torch")
    cfg = config(dropout=0.0)
    trained, metrics, ds = train(tmp_path, cfg, workers=2, name="sg")
    assert metrics[-1].values["loss"] < metrics[0].values["loss"]

    twin = encoder(torch, 0.0)
    start = build_model(cfg.model, seed=cfg.seed).state_dict()
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in start.items()})
    opt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    x, y = torch.tensor(np.asarray(ds.x)), torch.tensor(np.asarray(ds.y))
    train_rows, _ = train_eval_split(cfg.seed, len(x), cfg.eval_fraction)
    sampler = BatchSampler(train_rows, cfg.batch_size, cfg.seed)
    for step in range(cfg.steps):
        batch = sampler.batch(step)
        opt.zero_grad()
        for shard in cut_micro_shards(batch, cfg.micro_shards):
            rows = torch.tensor(shard)
            (loss_fn(twin(x[rows]), y[rows]) / len(batch)).backward()
        opt.step()
    mine = {k: v.numpy() for k, v in load_safetensors_bytes(trained).items()}
    theirs = {k: v.detach().numpy() for k, v in twin.state_dict().items()}
    assert sorted(mine) == sorted(theirs)
    for name, value in theirs.items():
        np.testing.assert_allclose(mine[name], value, rtol=2e-4, atol=2e-5, err_msg=name)


def test_with_dropout_the_bytes_are_the_same_for_any_worker_count(tmp_path):
    cfg = config(dropout=0.1)
    runs = [train(tmp_path, cfg, workers=n, name=f"w{n}")[0] for n in (1, 2, 3)]
    assert runs[0] == runs[1] == runs[2]
