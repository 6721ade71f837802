"""BatchNorm running statistics trained through the coordinator: torch (gradient accumulation
over the micro-shards) agrees; the trained model, evaluation and checkpoints hold them; and
they are the same bytes for any worker count, failure, stop or coordinator restart."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _servertest import embedded_coordinator

from shardgrad import nn
from shardgrad.serialization import load_safetensors_bytes
from shardgrad.service.builders import build_model
from shardgrad.service.checkpoint import CheckpointManager
from shardgrad.service.config import Component, JobConfig, ModelSource
from shardgrad.service.jobs import JobManager
from shardgrad.service.pools.inprocess import InProcessPool
from shardgrad.service.sampler import BatchSampler, cut_micro_shards, train_eval_split
from shardgrad.service.store import JobState
from shardgrad.service.trainer import TrainerOptions, job_dir

TIMEOUT = 60.0
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def bn_mlp(momentum=0.1) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(8, 12),
        nn.BatchNorm1d(12, momentum=momentum),
        nn.ReLU(),
        nn.Linear(12, 3),
    )


def bn_cnn(momentum=0.1) -> nn.Sequential:
    return nn.Sequential(
        nn.Unflatten(1, (1, 4, 4)),
        nn.Conv2d(1, 3, 3, padding=1),
        nn.BatchNorm2d(3, momentum=momentum),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(48, 3),
    )


def config(model: nn.Module, **changes) -> JobConfig:
    features = 16 if isinstance(model[0], nn.Unflatten) else 8
    cfg = JobConfig(
        model=ModelSource(spec=model.spec()),
        # 90 rows, batches of 20 cut in 4: micro-shards of 5 rows, and 3, 3, 2, 2 in the
        # last batch of each epoch (a BatchNorm needs two rows to train on)
        dataset=f"synthetic:classification:n=90,features={features},classes=3,seed=3",
        loss=Component("CrossEntropyLoss"),
        optimizer=Component("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}),
        batch_size=20,
        steps=12,
        micro_shards=4,
        seed=11,
        checkpoint_interval=4,
    )
    return dataclasses.replace(cfg, **changes)


def run(tmp_path, cfg, workers=1, fault=None, options=None, name="run"):
    """(trained model bytes, {"train": [...], "eval": [...]} metrics, the dataset) of one
    finished job."""
    pool = InProcessPool(workers, fault=fault)
    mgr = JobManager(tmp_path / name, pool, options or TrainerOptions(step_timeout_s=30))
    try:
        job_id = mgr.submit(cfg).id
        done = mgr.wait(job_id, TIMEOUT)
        assert done.state is JobState.SUCCEEDED, done.reason
        metrics = {kind: mgr.store.metrics(job_id, kind=kind) for kind in ("train", "eval")}
        return mgr.model_bytes(job_id), metrics, mgr.datasets.resolve(cfg.dataset)
    finally:
        mgr.close()
        pool.close()


def arrays(state: dict) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in state.items()}


def buffers_of(state: dict) -> dict[str, np.ndarray]:
    return {k: v for k, v in arrays(state).items() if k.endswith(BUFFERS)}


# ---------------------------------------------------------------- torch as the oracle
def torch_twin(torch, model: nn.Sequential):
    """The same layers in torch, with `model`'s parameters and buffers."""
    layers = []
    for m in model:
        if isinstance(m, nn.Linear):
            layers.append(torch.nn.Linear(m.in_features, m.out_features))
        elif isinstance(m, nn.Conv2d):
            layers.append(torch.nn.Conv2d(m.in_channels, m.out_channels, 3, padding=1))
        elif isinstance(m, nn.BatchNorm1d):
            layers.append(torch.nn.BatchNorm1d(m.num_features, momentum=m.momentum))
        elif isinstance(m, nn.BatchNorm2d):
            layers.append(torch.nn.BatchNorm2d(m.num_features, momentum=m.momentum))
        elif isinstance(m, nn.ReLU):
            layers.append(torch.nn.ReLU())
        elif isinstance(m, nn.Flatten):
            layers.append(torch.nn.Flatten())
        elif isinstance(m, nn.Unflatten):
            layers.append(torch.nn.Unflatten(1, (1, 4, 4)))
        else:
            raise AssertionError(f"no torch twin for {m!r}")
    twin = torch.nn.Sequential(*layers).double()
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    return twin


def torch_training(torch, cfg: JobConfig, x, y):
    """Each step: the micro-shards' train-mode forwards one after another, their summed losses
    / |b| accumulated into the gradients, one SGD step."""
    twin = torch_twin(torch, build_model(cfg.model, seed=cfg.seed).double())
    kw = cfg.optimizer.kwargs
    opt = torch.optim.SGD(
        twin.parameters(), lr=kw["lr"], momentum=kw["momentum"], weight_decay=kw["weight_decay"]
    )
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    train_rows, _ = train_eval_split(cfg.seed, len(x), cfg.eval_fraction)
    sampler = BatchSampler(train_rows, cfg.batch_size, cfg.seed)
    twin.train()
    for step in range(cfg.steps):
        batch = sampler.batch(step)
        opt.zero_grad()
        for shard in cut_micro_shards(batch, cfg.micro_shards):
            if len(shard):
                rows = torch.tensor(shard)
                (loss_fn(twin(x[rows]), y[rows]) / len(batch)).backward()
        opt.step()
    return twin


@pytest.mark.parametrize(
    "make, momentum",
    [(bn_mlp, 0.1), (bn_mlp, None), (bn_cnn, 0.2), (bn_cnn, None)],
    ids=["mlp", "mlp-cumulative", "cnn", "cnn-cumulative"],
)
def test_parameters_and_running_statistics_match_torch(tmp_path, make, momentum):
    torch = pytest.importorskip("torch")
    cfg = config(make(momentum), dtype="float64", steps=7)  # step 5 has the short batch
    trained, _, ds = run(tmp_path, cfg, workers=2)
    twin = torch_training(torch, cfg, torch.tensor(ds.x, dtype=torch.float64), torch.tensor(ds.y))

    got = load_safetensors_bytes(trained)
    want = twin.state_dict()
    assert set(got) == set(want)
    for key, value in got.items():
        if key.endswith("num_batches_tracked"):
            assert int(value.item()) == int(want[key].item()) == 7 * 4
        else:
            np.testing.assert_allclose(value.numpy(), want[key].numpy(), rtol=1e-6, atol=1e-12)
    initial = buffers_of(build_model(cfg.model, seed=cfg.seed).double().state_dict())
    for key, value in initial.items():
        if key.endswith("running_mean"):
            assert np.abs(got[key].numpy() - value).max() > 1e-3  # trained, not initial


def test_evaluation_uses_the_trained_statistics(tmp_path):
    torch = pytest.importorskip("torch")
    cfg = config(
        bn_mlp(),
        dtype="float64",
        steps=8,
        eval_fraction=0.2,
        eval_metrics=["loss", "accuracy"],
        checkpoint_interval=0,
    )
    trained, metrics, ds = run(tmp_path, cfg, workers=2)
    assert [m.step for m in metrics["eval"]] == [8]
    reported = metrics["eval"][-1].values
    _, eval_rows = train_eval_split(cfg.seed, len(ds.x), cfg.eval_fraction)
    x = torch.tensor(ds.x[eval_rows], dtype=torch.float64)
    y = torch.tensor(ds.y[eval_rows])
    twin = torch_twin(torch, build_model(cfg.model, seed=cfg.seed).double())

    def evaluate(state: dict[str, np.ndarray]) -> tuple[float, float]:
        twin.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
        twin.eval()
        with torch.no_grad():
            out = twin(x)
        loss = torch.nn.functional.cross_entropy(out, y, reduction="sum").item() / len(y)
        return loss, (out.argmax(1) == y).double().mean().item()

    state = arrays(load_safetensors_bytes(trained))
    loss, accuracy = evaluate(state)
    np.testing.assert_allclose(reported["loss"], loss, rtol=1e-6)
    assert reported["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    # The same weights with the initial statistics evaluate to something else.
    initial = buffers_of(build_model(cfg.model, seed=cfg.seed).double().state_dict())
    stale_loss, _ = evaluate({**state, **initial})
    assert abs(stale_loss - loss) > 1e-3


# ---------------------------------------------------------------- the same bytes
@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted single-worker float32 run (cumulative averages, a CNN)."""
    cfg = config(bn_cnn(None))
    return cfg, run(tmp_path_factory.mktemp("ref"), cfg, workers=1)[0]


def test_reference_trains_its_statistics(reference):
    cfg, trained = reference
    state = load_safetensors_bytes(trained)
    assert int(state["2.num_batches_tracked"].item()) == 12 * 4
    assert np.abs(state["2.running_mean"].numpy()).max() > 1e-3
    assert state["2.running_var"].numpy().tobytes() != np.ones(3, np.float32).tobytes()


@pytest.mark.parametrize("workers", [2, 3])
def test_bitwise_identical_for_any_worker_count(tmp_path, reference, workers):
    cfg, trained = reference
    assert run(tmp_path, cfg, workers=workers)[0] == trained


def test_bitwise_identical_when_a_worker_fails_mid_job(tmp_path, reference):
    cfg, trained = reference
    failed = []

    def fault(worker_id, job_id, step, shard_ids):
        if worker_id == "inproc-1" and step == 5:
            failed.append(step)
            raise RuntimeError("worker process died")

    assert run(tmp_path, cfg, workers=3, fault=fault)[0] == trained
    assert failed


def test_resume_after_stop_and_restart_equal_uninterrupted(tmp_path, reference):
    """Stopped at step 6 and resumed, then let go at step 9 (a coordinator going away) and
    recovered by a new coordinator: parameters and buffers end as if never interrupted."""
    cfg, trained = reference
    pool = InProcessPool(2)
    holder = {}

    def on_step(job_id, step):
        if step == 6 and not holder.get("stopped"):
            holder["stopped"] = True
            holder["mgr"].stop(job_id, timeout=0)
        elif step == 9 and not holder.get("released"):
            holder["released"] = True
            holder["mgr"].release(job_id)

    mgr = holder["mgr"] = JobManager(tmp_path, pool, TrainerOptions(on_step=on_step))
    try:
        job_id = mgr.submit(cfg).id
        assert mgr.wait(job_id, TIMEOUT).state is JobState.STOPPED
        ck = CheckpointManager(job_dir(tmp_path, job_id) / "checkpoints").latest()
        assert ck.step == 6
        assert int(ck.buffers["2.num_batches_tracked"]) == 6 * 4
        mgr.resume(job_id)
        assert mgr.wait(job_id, TIMEOUT).state is JobState.RUNNING  # let go at step 9
    finally:
        mgr.close()
    mgr2 = JobManager(tmp_path, pool)
    try:
        assert mgr2.recover() == [job_id]
        rec = mgr2.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        assert mgr2.model_bytes(job_id) == trained
    finally:
        mgr2.close()
        pool.close()


def test_a_checkpoint_without_buffers_resumes_from_the_initial_ones(tmp_path, reference):
    """A checkpoint written before the buffers were kept loads; the statistics then restart
    from their initial values (the cumulative count too) while the parameters carry on."""
    cfg, trained = reference
    pool = InProcessPool(1)
    holder = {}

    def on_step(job_id, step):
        if step == 8 and not holder.get("stopped"):
            holder["stopped"] = True
            holder["mgr"].stop(job_id, timeout=0)

    mgr = holder["mgr"] = JobManager(tmp_path, pool, TrainerOptions(on_step=on_step))
    try:
        job_id = mgr.submit(cfg).id
        assert mgr.wait(job_id, TIMEOUT).state is JobState.STOPPED
        ckpts = CheckpointManager(job_dir(tmp_path, job_id) / "checkpoints")
        ck = ckpts.latest()
        assert ck.step == 8 and ck.buffers is not None
        ckpts.save(ck.step, ck.params, ck.optimizer, ck.scheduler, ck.meta)  # the old format
        assert ckpts.latest().buffers is None
        mgr.resume(job_id)
        rec = mgr.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        state = load_safetensors_bytes(mgr.model_bytes(job_id))
    finally:
        mgr.close()
        pool.close()
    reference_state = load_safetensors_bytes(trained)
    assert int(state["2.num_batches_tracked"].item()) == (12 - 8) * 4
    for key in ("1.weight", "5.weight"):  # parameters: the same bytes as uninterrupted
        assert state[key].numpy().tobytes() == reference_state[key].numpy().tobytes()
    assert state["2.running_mean"].numpy().tobytes() != (
        reference_state["2.running_mean"].numpy().tobytes()
    )


def test_checkpoints_round_trip_buffers_and_leave_models_without_them_alone(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    mgr = CheckpointManager(tmp_path)
    opt = {"state": {}, "param_groups": []}
    buffers = {
        "1.running_mean": np.array([0.5, -0.0, 3.0], np.float32),
        "1.running_var": np.array([1.5, 2.0, 0.25], np.float32),
        "1.num_batches_tracked": np.array(7, np.int64),
    }
    mgr.save(1, np.arange(4, dtype=np.float32), opt, buffers=buffers)
    ck = mgr.latest()
    assert set(ck.buffers) == set(buffers)
    for key, value in buffers.items():
        assert ck.buffers[key].dtype == value.dtype and ck.buffers[key].shape == value.shape
        assert ck.buffers[key].tobytes() == value.tobytes()
    # a changed buffer no longer matches the stored sha256
    path = mgr.path_for(1)
    data = bytearray(path.read_bytes())
    at = data.rfind(np.float32(0.25).tobytes())
    data[at + 3] ^= 0x01
    path.write_bytes(bytes(data))
    assert mgr.latest() is None

    mgr.save(2, np.arange(4, dtype=np.float32), opt)
    assert mgr.latest().buffers is None
    assert not [k for k in safetensors_numpy.load_file(str(mgr.path_for(2))) if "buffers" in k]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow notes
def test_skipped_steps_still_update_the_statistics(tmp_path):
    """A non-finite step that is skipped still ran its forwards, as in torch: the statistics
    count every step, skipped ones included."""
    cfg = config(
        bn_mlp(),
        dataset="synthetic:regression:n=90,features=8,targets=3,seed=3",
        loss=Component("MSELoss"),
        optimizer=Component("SGD", {"lr": 1e30}),
        skip_nonfinite=True,
        checkpoint_interval=0,
    )
    trained, metrics, _ = run(tmp_path, cfg, workers=2)
    assert any(m.values.get("skipped_nonfinite") for m in metrics["train"])
    state = load_safetensors_bytes(trained)
    assert int(state["1.num_batches_tracked"].item()) == 12 * 4


def test_grpc_workers_give_the_same_bytes(tmp_path, reference):
    """Two gRPC workers on this machine (their answers travel in the ComputeResult header
    over the local channel) train the statistics to the in-process bytes."""
    cfg, trained = reference
    with embedded_coordinator(tmp_path, workers=2) as coordinator:
        manager = coordinator.manager
        job_id = manager.submit(dataclasses.replace(cfg, min_workers=2)).id
        rec = manager.wait(job_id, TIMEOUT)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        used = set()
        for m in manager.store.metrics(job_id, kind="train"):
            used |= set(m.values["worker_compute_seconds"])
        assert len(used) == 2
        assert manager.model_bytes(job_id) == trained


def test_ray_actors_give_the_same_bytes(ray_cluster, tmp_path, reference):
    """Ray actors return their ShardStats through Ray, then (once their shared-memory probe
    is answered) in the result header over the local channel: the same bytes either way."""
    from shardgrad.service.pools.ray_pool import RayPool

    cfg, trained = reference
    pool = RayPool(2, address=ray_cluster, num_cpus_per_worker=0.5, compute_threads=1)
    mgr = JobManager(tmp_path, pool, TrainerOptions(step_timeout_s=60))
    try:
        job_id = mgr.submit(dataclasses.replace(cfg, min_workers=2)).id
        rec = mgr.wait(job_id, 120)
        assert rec.state is JobState.SUCCEEDED, rec.reason
        metrics = mgr.store.metrics(job_id, kind="train")
        assert {m.values["workers"] for m in metrics} == {2}
        assert metrics[-1].values["bytes_shared"] > 0
        assert mgr.model_bytes(job_id) == trained
    finally:
        mgr.close()
        pool.close()
