"""The training loop: the same bytes for any worker count and any failure, exact resume,
partial-batch weighting, non-finite handling, waiting for workers, shared pools."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from shardgrad import nn
from shardgrad.service.checkpoint import CheckpointManager
from shardgrad.service.config import Component, JobConfig, ModelSource, ValidationError
from shardgrad.service.jobs import JobManager
from shardgrad.service.pools.inprocess import InProcessPool
from shardgrad.service.sampler import BatchSampler
from shardgrad.service.store import JobState
from shardgrad.service.trainer import TrainerOptions, job_dir

TIMEOUT = 60.0


def mlp_spec(d_in=8, hidden=16, classes=3, dropout=0.0) -> dict:
    layers = [nn.Linear(d_in, hidden), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, classes))
    return nn.Sequential(*layers).spec()


def base_config(**changes) -> JobConfig:
    cfg = JobConfig(
        model=ModelSource(spec=mlp_spec(dropout=0.25)),
        # 90 rows, batches of 20: four full batches and one of 10 per epoch
        dataset="synthetic:classification:n=90,features=8,classes=3,seed=3",
        loss=Component("CrossEntropyLoss"),
        optimizer=Component("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4}),
        batch_size=20,
        steps=12,
        micro_shards=6,  # not a power of two: the tree has a ragged edge
        seed=11,
        checkpoint_interval=4,
    )
    return dataclasses.replace(cfg, **changes)


def run_job(tmp_path, cfg, workers=1, fault=None, options=None, name="run"):
    pool = InProcessPool(workers, fault=fault)
    mgr = JobManager(tmp_path / name, pool, options or TrainerOptions(step_timeout_s=30))
    try:
        rec = mgr.submit(cfg)
        done = mgr.wait(rec.id, TIMEOUT)
        assert done.state is JobState.SUCCEEDED, done.reason
        return final_params(mgr, rec.id), mgr.store.metrics(rec.id, kind="train")
    finally:
        mgr.close()
        pool.close()


def final_params(mgr: JobManager, job_id: str) -> np.ndarray:
    ck = CheckpointManager(job_dir(mgr.state_dir, job_id) / "checkpoints").latest()
    assert ck.step == mgr.get(job_id).total_steps
    return ck.params


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted single-worker run that the other runs must equal bit for bit."""
    return run_job(tmp_path_factory.mktemp("ref"), base_config(), workers=1)


def test_reference_run_trains(reference):
    params, metrics = reference
    assert [m.step for m in metrics] == list(range(1, 13))
    assert [m.values["samples"] for m in metrics[:5]] == [20, 20, 20, 20, 10]
    assert metrics[-1].values["loss"] < metrics[0].values["loss"]
    assert params.dtype == np.float32


@pytest.mark.parametrize("workers", [2, 3])
def test_bitwise_identical_for_any_worker_count(tmp_path, reference, workers):
    params, metrics = run_job(tmp_path, base_config(), workers=workers)
    assert params.tobytes() == reference[0].tobytes()
    assert [m.values["loss"] for m in metrics] == [m.values["loss"] for m in reference[1]]
    assert max(m.values["workers"] for m in metrics) == workers


def test_bitwise_identical_when_scaled_mid_job(tmp_path, reference):
    holder = {}

    def on_step(job_id, step):
        if step == 4:
            holder["pool"].scale(3)  # takes effect at the next step
        elif step == 8:
            holder["pool"].scale(1)

    pool = holder["pool"] = InProcessPool(1)
    mgr = JobManager(tmp_path, pool, TrainerOptions(on_step=on_step))
    try:
        job_id = mgr.submit(base_config()).id
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        workers = [m.values["workers"] for m in mgr.store.metrics(job_id, kind="train")]
        assert workers == [1] * 4 + [3] * 4 + [1] * 4
        states = {w.id: w.state for w in mgr.store.list_workers()}
        assert states == {"inproc-0": "IDLE", "inproc-1": "LOST", "inproc-2": "LOST"}
        assert final_params(mgr, job_id).tobytes() == reference[0].tobytes()
    finally:
        mgr.close()
        pool.close()


def test_bitwise_identical_when_a_worker_raises_mid_job(tmp_path, reference):
    failed = []

    def fault(worker_id, job_id, step, shard_ids):
        if worker_id == "inproc-1" and step == 5:
            failed.append((step, list(shard_ids)))
            raise RuntimeError("worker process died")

    params, metrics = run_job(tmp_path, base_config(), workers=3, fault=fault)
    assert failed, "the fault never fired"
    assert params.tobytes() == reference[0].tobytes()
    assert metrics[5].values["workers"] == 2  # step 6 ran on the two survivors


def test_bitwise_identical_when_a_worker_misses_its_deadline(tmp_path, reference):
    release = threading.Event()

    def fault(worker_id, job_id, step, shard_ids):
        if worker_id == "inproc-0" and step == 2:
            release.wait(30.0)  # stalls past the step deadline

    opts = TrainerOptions(step_timeout_s=2.0)
    try:
        params, _ = run_job(tmp_path, base_config(), workers=2, fault=fault, options=opts)
    finally:
        release.set()
    assert params.tobytes() == reference[0].tobytes()


def stopped_at_6_and_resumed(tmp_path, cfg: JobConfig) -> np.ndarray:
    """Final parameters of `cfg` run on 2 workers, stopped after step 6 and resumed."""
    pool = InProcessPool(2)
    holder = {}

    def on_step(job_id, step):
        if step == 6 and not holder.get("stopped"):
            holder["stopped"] = True
            holder["mgr"].stop(job_id, timeout=0)

    mgr = JobManager(tmp_path, pool, TrainerOptions(on_step=on_step))
    holder["mgr"] = mgr
    try:
        job_id = mgr.submit(cfg).id
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.STOPPED and rec.step == 6
        rec = mgr.resume(job_id)
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        # the history holds each step once
        assert [m.step for m in mgr.store.metrics(job_id, kind="train")] == list(range(1, 13))
        return final_params(mgr, job_id)
    finally:
        mgr.close()
        pool.close()


def test_resume_after_stop_equals_uninterrupted(tmp_path, reference):
    assert stopped_at_6_and_resumed(tmp_path, base_config()).tobytes() == reference[0].tobytes()


@pytest.mark.parametrize(
    "optimizer, scheduler",
    [
        (Component("NAdam", {"lr": 0.01, "weight_decay": 1e-3}), Component("OneCycleLR", {"max_lr": 0.02, "total_steps": 12})),
        (Component("RAdam", {"lr": 0.01, "decoupled_weight_decay": True, "weight_decay": 0.01}), Component("MultiStepLR", {"milestones": [3, 8], "gamma": 0.5})),
        (Component("Adamax", {"lr": 0.01}), Component("CosineAnnealingWarmRestarts", {"T_0": 5})),
        (Component("Adadelta", {"lr": 1.0}), Component("LinearLR", {"start_factor": 0.2, "total_iters": 5})),
        (Component("Rprop", {"lr": 0.01}), Component("CyclicLR", {"base_lr": 0.001, "max_lr": 0.01, "step_size_up": 2, "mode": "triangular2", "cycle_momentum": False})),
        (Component("ASGD", {"lr": 0.05, "t0": 3}), Component("ExponentialLR", {"gamma": 0.9})),
    ],
    ids=[
        "NAdam-OneCycleLR", "RAdam-MultiStepLR", "Adamax-WarmRestarts", "Adadelta-LinearLR",
        "Rprop-CyclicLR", "ASGD-ExponentialLR",
    ],
)  # fmt: skip
def test_every_optimizer_and_scheduler_resumes_to_the_same_bytes(tmp_path, optimizer, scheduler):
    """Their state (NAdam's mu_product, a scheduler's position) lives in the checkpoint: a
    job stopped and resumed on 2 workers ends where one uninterrupted worker ends."""
    cfg = base_config(optimizer=optimizer, lr_scheduler=scheduler)
    uninterrupted, _ = run_job(tmp_path, cfg, workers=1, name="whole")
    resumed = stopped_at_6_and_resumed(tmp_path / "resumed", cfg)
    assert resumed.tobytes() == uninterrupted.tobytes()


def test_restart_with_damaged_checkpoint_resumes_from_previous(tmp_path, reference, monkeypatch):
    """A coordinator that goes away at step 9 leaves the job RUNNING; a new one on the same
    state directory finishes it from the newest intact checkpoint, with the same bytes, and
    reads each checkpoint file once on the way (a large model's is slow to read and hash)."""
    pool = InProcessPool(1)
    holder = {}

    def on_step(job_id, step):
        if step == 9:
            holder["mgr"].release(job_id)

    mgr = JobManager(tmp_path, pool, TrainerOptions(on_step=on_step))
    holder["mgr"] = mgr
    job_id = mgr.submit(base_config()).id
    rec = mgr.wait(job_id, TIMEOUT)
    assert rec.state is JobState.RUNNING  # left for a restart, not stopped
    mgr.close()
    ckpts = CheckpointManager(job_dir(tmp_path, job_id) / "checkpoints")
    assert ckpts.steps()[-1] == 9
    newest = ckpts.path_for(9)
    newest.write_bytes(newest.read_bytes()[:-64])  # torn write

    read: list[str] = []
    load_file = CheckpointManager.load_file

    def counting(self, path):
        read.append(Path(path).name)
        return load_file(self, path)

    monkeypatch.setattr(CheckpointManager, "load_file", counting)
    mgr2 = JobManager(tmp_path, pool)
    try:
        assert mgr2.recover() == [job_id]
        rec = mgr2.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        assert read == [newest.name, ckpts.path_for(8).name]  # the torn one, then the intact
        assert final_params(mgr2, job_id).tobytes() == reference[0].tobytes()
        steps = [m.step for m in mgr2.store.metrics(job_id, kind="train")]
        assert steps == list(range(1, 13))  # steps 9 redone from checkpoint 8, once each
    finally:
        mgr2.close()
        pool.close()


def test_partial_last_batch_is_a_mean_over_its_true_size(tmp_path):
    """10 rows, batches of 4: the last batch has 2 rows (and K=3 leaves one micro-shard
    empty). Each step must equal full-batch SGD on the mean loss of exactly its rows."""
    torch = pytest.importorskip("torch")
    cfg = JobConfig(
        model=ModelSource(spec=nn.Sequential(nn.Linear(5, 2)).spec()),
        dataset="synthetic:regression:n=10,features=5,targets=2,seed=1",
        loss=Component("MSELoss"),
        optimizer=Component("SGD", {"lr": 0.1}),
        batch_size=4,
        epochs=2,
        micro_shards=3,
        seed=5,
        dtype="float64",
        checkpoint_interval=0,
    )
    pool = InProcessPool(2)
    mgr = JobManager(tmp_path, pool)
    try:
        job_id = mgr.submit(cfg).id
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        got = final_params(mgr, job_id)
        metrics = mgr.store.metrics(job_id, kind="train")
        ds = mgr.datasets.resolve(cfg.dataset)
    finally:
        mgr.close()
        pool.close()
    assert [m.values["samples"] for m in metrics] == [4, 4, 2, 4, 4, 2]

    # the same model and initial weights in torch, trained one full batch at a time
    from shardgrad.service.builders import build_model

    model = build_model(cfg.model, seed=cfg.seed).double()
    w = torch.tensor(model[0].weight.detach().numpy(), requires_grad=True)
    b = torch.tensor(model[0].bias.detach().numpy(), requires_grad=True)
    sampler = BatchSampler(np.arange(10), 4, cfg.seed)
    x, y = torch.tensor(ds.x, dtype=torch.float64), torch.tensor(ds.y, dtype=torch.float64)
    for step in range(6):
        rows = torch.tensor(sampler.batch(step))
        # the mean over the batch's true size: summed over rows (and outputs), / |b|
        loss = torch.nn.functional.mse_loss(x[rows] @ w.T + b, y[rows], reduction="sum")
        loss = loss / len(rows)
        loss.backward()
        np.testing.assert_allclose(metrics[step].values["loss"], loss.item(), rtol=1e-10)
        with torch.no_grad():
            w -= 0.1 * w.grad
            b -= 0.1 * b.grad
        w.grad = b.grad = None
    expected = np.concatenate([w.detach().numpy().ravel(), b.detach().numpy().ravel()])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow notes
def test_nonfinite_loss_fails_with_the_step(tmp_path):
    cfg = base_config(
        model=ModelSource(spec=mlp_spec()),
        optimizer=Component("SGD", {"lr": 1e30}),
        steps=30,
        checkpoint_interval=0,
    )
    pool = InProcessPool(2)
    mgr = JobManager(tmp_path, pool)
    try:
        job_id = mgr.submit(cfg).id
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.FAILED
        assert rec.reason.startswith("non-finite ")
        failing = int(rec.reason.rsplit(" ", 1)[1])
        assert rec.step == failing - 1  # nothing after the bad step was applied
        assert len(mgr.store.metrics(job_id, kind="train")) == failing - 1

        skip = mgr.submit(dataclasses.replace(cfg, skip_nonfinite=True)).id
        rec = mgr.wait(skip, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        skipped = [
            m.step
            for m in mgr.store.metrics(skip, kind="train")
            if m.values.get("skipped_nonfinite")
        ]
        assert skipped and skipped[0] == failing
    finally:
        mgr.close()
        pool.close()


def test_job_without_workers_waits_pending_then_fails(tmp_path):
    pool = InProcessPool(0)
    mgr = JobManager(tmp_path, pool, TrainerOptions(worker_grace_s=0.4))
    try:
        job_id = mgr.submit(base_config()).id
        assert mgr.get(job_id).state is JobState.PENDING
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.FAILED and "no workers" in rec.reason
    finally:
        mgr.close()
        pool.close()


def test_stopping_a_waiting_job(tmp_path):
    pool = InProcessPool(0)
    mgr = JobManager(tmp_path, pool, TrainerOptions(worker_grace_s=30))
    try:
        job_id = mgr.submit(base_config()).id
        t0 = time.monotonic()
        rec = mgr.stop(job_id, timeout=TIMEOUT)
        assert rec.state is JobState.STOPPED and time.monotonic() - t0 < 5
        assert not mgr.is_active(job_id)
    finally:
        mgr.close()
        pool.close()


def test_job_starts_when_a_worker_arrives(tmp_path, reference):
    pool = InProcessPool(0)
    mgr = JobManager(tmp_path, pool, TrainerOptions(worker_grace_s=30))
    try:
        job_id = mgr.submit(base_config()).id
        time.sleep(0.3)
        assert mgr.get(job_id).state is JobState.PENDING and mgr.is_active(job_id)
        pool.add_worker()
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        assert final_params(mgr, job_id).tobytes() == reference[0].tobytes()
    finally:
        mgr.close()
        pool.close()


def test_concurrent_jobs_share_the_pool(tmp_path, reference):
    other = base_config(seed=12, optimizer=Component("Adam", {"lr": 1e-2}), steps=10)
    solo_other, _ = run_job(tmp_path, other, workers=1, name="solo")
    pool = InProcessPool(2)
    mgr = JobManager(tmp_path / "shared", pool)
    try:
        a = mgr.submit(base_config()).id
        b = mgr.submit(other).id
        ra, rb = mgr.wait(a, TIMEOUT), mgr.wait(b, TIMEOUT)
        assert ra.state is JobState.SUCCEEDED and rb.state is JobState.SUCCEEDED
        assert final_params(mgr, a).tobytes() == reference[0].tobytes()
        assert final_params(mgr, b).tobytes() == solo_other.tobytes()
        # both jobs used both workers
        for job_id in (a, b):
            seen = set()
            for m in mgr.store.metrics(job_id, kind="train"):
                seen |= set(m.values["worker_compute_seconds"])
            assert seen == set(pool.live_workers())
    finally:
        mgr.close()
        pool.close()


def test_invalid_job_changes_nothing(tmp_path):
    pool = InProcessPool(1)
    mgr = JobManager(tmp_path, pool)
    try:
        with pytest.raises(ValidationError) as info:
            mgr.submit(base_config(model=ModelSource(spec=mlp_spec(d_in=4))))
        assert info.value.field == "model.spec"
        assert mgr.list() == []
    finally:
        mgr.close()
        pool.close()


def test_digits_learns_and_reports_eval_metrics(tmp_path):
    cfg = JobConfig(
        model=ModelSource(spec=mlp_spec(d_in=64, hidden=32, classes=10)),
        dataset="digits",
        optimizer=Component("Adam", {"lr": 1e-2}),
        batch_size=64,
        steps=60,
        micro_shards=4,
        eval_fraction=0.2,
        eval_interval=20,
        eval_metrics=["loss", "accuracy"],
        checkpoint_interval=0,
    )
    pool = InProcessPool(2)
    mgr = JobManager(tmp_path, pool)
    try:
        job_id = mgr.submit(cfg).id
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        evals = mgr.store.metrics(job_id, kind="eval")
        assert [m.step for m in evals] == [20, 40, 60]
        assert evals[-1].values["samples"] == 359
        assert evals[-1].values["accuracy"] > 0.85
        assert evals[-1].values["loss"] < evals[0].values["loss"]
        train = mgr.store.metrics(job_id, kind="train")
        v = train[-1].values
        assert v["samples_per_s"] > 0 and v["step_seconds"] > 0
        assert v["bytes_received"] > 0 and v["bytes_sent"] > v["bytes_received"] / 2
        assert set(v["worker_compute_seconds"]) == {"inproc-0", "inproc-1"}
        state = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).state_dict()
        from shardgrad.serialization import load_safetensors_bytes

        trained = load_safetensors_bytes(mgr.model_bytes(job_id))
        assert set(trained) == set(state)
    finally:
        mgr.close()
        pool.close()


def test_compressed_gradients_halve_bytes_received(tmp_path):
    plain = run_job(tmp_path, base_config(steps=3), workers=2, name="plain")[1]
    half = run_job(tmp_path, base_config(steps=3, compression="fp16"), workers=2, name="fp16")[1]
    for a, b in zip(plain, half):
        assert b.values["bytes_received"] * 2 == a.values["bytes_received"]
        assert abs(a.values["loss"] - b.values["loss"]) < 1e-3


def test_import_path_model_trains_on_workers(tmp_path):
    prefixes = ("shardgrad.nn",)
    cfg = base_config(
        model=ModelSource(
            import_path="shardgrad.nn.linear:Linear", kwargs={"in_features": 8, "out_features": 3}
        ),
        steps=6,
    )
    pool = InProcessPool(2, allowed_import_prefixes=prefixes)
    mgr = JobManager(tmp_path, pool, TrainerOptions(allowed_import_prefixes=prefixes))
    try:
        job_id = mgr.submit(cfg).id
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        assert final_params(mgr, job_id).shape == (8 * 3 + 3,)
    finally:
        mgr.close()
        pool.close()


def test_training_starts_from_the_initial_weights(tmp_path):
    from shardgrad.serialization import save_safetensors_bytes

    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    for p in model.parameters():
        p.data = p.data * 0 + 0.5  # far from any seeded initialisation
    weights = save_safetensors_bytes(model.state_dict())
    cfg = base_config(
        model=ModelSource(spec=model.spec()),
        initial_weights=weights,
        optimizer=Component("SGD", {"lr": 0.0}),
        steps=2,
    )
    params, _ = run_job(tmp_path, cfg, workers=2)
    np.testing.assert_array_equal(params, np.full(params.shape, 0.5, np.float32))


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow notes
def test_finite_blocks_whose_sum_overflows_fail_the_step(tmp_path, workers):
    """Each row's gradient is 2e38, finite in float32; two rows add to inf. With two workers
    each block is finite and the coordinator's own addition overflows; with one, the worker's
    block of two does. Either way the step's gradient is not finite."""
    from shardgrad.serialization import save_safetensors_bytes

    weights = save_safetensors_bytes({"0.weight": np.ones((1, 1), np.float32)})
    pool = InProcessPool(workers)
    mgr = JobManager(tmp_path, pool)
    try:
        x = np.full((2, 1), 1e19, np.float32)  # (w x - 0)^2 = 1e38 per row, d/dw = 2e38
        digest = mgr.datasets.put_arrays(x, np.zeros((2, 1), np.float32))
        cfg = base_config(
            model=ModelSource(spec=nn.Sequential(nn.Linear(1, 1, bias=False)).spec()),
            initial_weights=weights,
            dataset=f"sha256:{digest}",
            loss=Component("MSELoss"),
            optimizer=Component("SGD", {"lr": 0.0}),
            batch_size=2,
            micro_shards=2,
            steps=1,
            checkpoint_interval=0,
        )
        rec = mgr.wait(mgr.submit(cfg).id, TIMEOUT)
        assert rec.state is JobState.FAILED
        assert rec.reason == "non-finite gradient at step 1"
    finally:
        mgr.close()
        pool.close()
