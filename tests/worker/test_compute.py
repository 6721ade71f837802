"""The transport-free worker core against a plain single-process shardgrad step, and torch."""

from __future__ import annotations

import numpy as np
import pytest
from workertest_helpers import cut, make_job

import shardgrad as sg
from shardgrad import nn
from shardgrad.worker import codec, reduction, threads
from shardgrad.worker.compute import Cancelled, GradientComputer, shard_seed
from shardgrad.worker.layout import ParamLayout


def _mlp(dropout: float = 0.25):
    sg.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 3))


def _add(a, b):
    return a + b


def _reference_leaves(model, data, shards, seed, step):
    """A user's own step: per micro-shard, loss(reduction='sum').backward() on a plain model."""
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    model.train()
    leaves, losses = [], []
    for k, idx in shards:
        model.zero_grad(set_to_none=True)
        sg.manual_seed(shard_seed(seed, step, k))
        loss = loss_fn(model(sg.tensor(data["x"][idx])), sg.tensor(data["y"][idx]))
        loss.backward()
        leaves.append(np.concatenate([p.grad.numpy().reshape(-1) for p in model.parameters()]))
        losses.append(loss.item())
    return leaves, losses


def test_equals_a_single_process_step_bit_for_bit_for_any_split():
    model = _mlp()
    spec, data, flat = make_job(model, n=64, k=8, seed=5)
    shards = cut(48, 8)
    ref_leaves, ref_losses = _reference_leaves(model, data, shards, seed=5, step=3)
    expected = reduction.tree_sum_values(ref_leaves, _add)

    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=3)
    whole = computer.compute(3, shards)
    assert whole.blocks == [(3, 0)]
    assert whole.grads[0].tobytes() == expected.tobytes()
    assert [s.loss for s in whole.stats] == ref_losses
    assert [s.num_samples for s in whole.stats] == [6] * 8

    # The same step on three "workers" holding scattered micro-shards.
    blocks = {}
    for part in ([0, 3, 4, 5], [1, 7], [2, 6]):
        result = computer.compute(3, [shards[i] for i in part])
        blocks.update(result.block_arrays())
    assert reduction.tree_sum(blocks, 8, _add).tobytes() == expected.tobytes()


def test_gradients_match_torch_in_float64():
    import torch

    model = _mlp(dropout=0.0).double()
    spec, data, flat = make_job(model, n=40, k=5)
    assert spec.layout.dtype == "float64"
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=0)
    result = computer.compute(0, cut(40, 5))
    mean_grad = result.grads[0] / 40

    t = torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)
    ).double()
    with torch.no_grad():
        for p, tp in zip(model.parameters(), t.parameters()):
            tp.copy_(torch.from_numpy(p.detach().numpy().copy()))
    loss = torch.nn.functional.cross_entropy(
        t(torch.from_numpy(data["x"].astype(np.float64))), torch.from_numpy(data["y"])
    )
    loss.backward()
    torch_grad = np.concatenate([p.grad.numpy().reshape(-1) for p in t.parameters()])
    np.testing.assert_allclose(mean_grad, torch_grad, rtol=1e-6, atol=1e-12)
    assert sum(s.loss for s in result.stats) / 40 == pytest.approx(loss.item(), rel=1e-9)


def test_parameters_are_views_into_one_flat_buffer():
    model = _mlp()
    spec, data, flat = make_job(model)
    computer = GradientComputer(spec, data)
    buffer = computer.host_param_buffer()
    buffer[...] = flat
    computer.commit_params(step=0)
    for p in computer.model.parameters():
        assert np.shares_memory(p._data, buffer)
    # A read-only array (a Ray object, a received message) is used in place, not copied.
    frozen = flat.copy()
    frozen.flags.writeable = False
    computer.set_params(frozen, step=1)
    for p in computer.model.parameters():
        assert np.shares_memory(p._data, frozen)
    # Receiving again switches back to the worker's own writable buffer.
    assert computer.host_param_buffer() is buffer
    assert np.shares_memory(next(computer.model.parameters())._data, buffer)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_nonfinite_gradients_are_reported_not_hidden():
    model = _mlp(dropout=0.0)
    spec, data, flat = make_job(model, n=16, k=4)
    data["x"][9, 0] = np.inf  # sample 9 lives in micro-shard 2
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=0)
    result = computer.compute(0, cut(16, 4))
    assert result.nonfinite_shards == [2]
    assert [s.finite for s in result.stats] == [True, True, False, True]
    assert not np.isfinite(result.grads).all() and not result.blocks_finite
    assert computer.compute(0, cut(16, 4)[:2]).blocks_finite  # the finite ones, checked


def test_empty_micro_shard_contributes_nothing():
    model = _mlp(dropout=0.0)
    spec, data, flat = make_job(model, n=16, k=4)
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=0)
    shards = [(0, np.arange(3)), (1, np.arange(3, 5)), (2, np.arange(5, 7)), (3, np.empty(0, int))]
    result = computer.compute(0, shards)
    three = computer.compute(0, shards[:3])
    assert result.stats[3].num_samples == 0 and result.stats[3].loss == 0.0
    combined = reduction.tree_sum(three.block_arrays(), 3, _add)
    np.testing.assert_array_equal(result.grads[0], combined)


def test_compression_halves_the_bytes_and_stays_close():
    model = _mlp(dropout=0.0)
    results = {}
    for compression in ("none", "fp16", "bf16"):
        spec, data, flat = make_job(model, k=4, compression=compression)
        computer = GradientComputer(spec, data)
        computer.set_params(flat, step=0)
        results[compression] = computer.compute(0, cut(32, 4))
    exact = results["none"].grads[0]
    for name, rtol in (("fp16", 2e-3), ("bf16", 1e-2)):
        r = results[name]
        assert r.grads.nbytes == exact.nbytes // 2
        assert not r.wire_overflow
        widened = r.block_arrays()[(2, 0)]
        assert widened.dtype == np.float32
        np.testing.assert_allclose(widened, exact, rtol=rtol, atol=1e-3 * np.abs(exact).max())


def test_fp16_overflow_is_reported():
    model = nn.Linear(4, 3)
    spec, data, flat = make_job(model, k=2, compression="fp16")
    data["x"] *= 1e6  # gradients far beyond float16's 65504
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=0)
    result = computer.compute(0, cut(64, 2))
    assert result.wire_overflow and not result.blocks_finite  # inf on the wire, not hidden


@pytest.mark.parametrize("compression", ["bf16", "fp16"])
def test_float64_beyond_float32s_range_overflows_on_the_wire(compression):
    """float64 gradients travel compressed through float32: a finite 1e300 becomes inf there,
    which the worker must report rather than call its blocks finite."""
    big = np.array([1.0, 1e300, -2.5])
    out, overflow = codec.encode(big, compression)
    assert overflow and np.isinf(codec.decode(out, compression)[1])
    assert codec.encode(np.array([1.0, -2.5]), compression)[1] is False


def test_blas_threads_follow_the_job_and_rng_is_restored():
    model = _mlp()
    spec, data, flat = make_job(model)
    computer = GradientComputer(spec, data)  # compute_threads=1
    assert computer.threads == 1
    assert threads.blas_threads() in (1, None)
    sg.manual_seed(1234)
    before = sg.rand(3).numpy()
    sg.manual_seed(1234)
    computer.set_params(flat, step=0)
    computer.compute(0, cut(16, 8))
    assert np.array_equal(sg.rand(3).numpy(), before)


def test_stop_between_micro_shards():
    model = _mlp()
    spec, data, flat = make_job(model)
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=0)
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled):
        computer.compute(0, cut(32, 8), should_stop=stop)
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("shards", "message"),
    [
        ([(0, np.array([64]))], r"must lie in \[0, 64\)"),
        ([(0, np.array([-1]))], r"must lie in \[0, 64\)"),
        ([(0, np.array([[1]]))], "1-d integer"),
        ([(0, np.array([1.0]))], "1-d integer"),
        ([(8, np.array([1]))], r"outside \[0, 8\)"),
        ([(1, np.array([1])), (1, np.array([2]))], "more than once"),
    ],
)
def test_bad_micro_shards_are_refused(shards, message):
    spec, data, flat = make_job(_mlp())
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=0)
    with pytest.raises(ValueError, match=message):
        computer.compute(0, shards)


def test_bad_jobs_are_refused():
    model = _mlp()
    spec, data, _ = make_job(model)
    other = ParamLayout.from_module(nn.Linear(4, 3))
    with pytest.raises(ValueError, match="does not match the job's parameter layout"):
        GradientComputer(spec.__class__(**{**spec.__dict__, "layout": other}), data)
    with pytest.raises(ValueError, match="reduction"):
        GradientComputer(
            spec.__class__(
                **{**spec.__dict__, "loss": {"name": "MSELoss", "kwargs": {"reduction": "mean"}}}
            ),
            data,
        )
    with pytest.raises(ValueError, match="loss must be one of"):
        GradientComputer(spec.__class__(**{**spec.__dict__, "loss": {"name": "Linear"}}), data)
    with pytest.raises(ValueError, match="not allowed"):
        GradientComputer(
            spec.__class__(
                **{**spec.__dict__, "model": {"import_path": "workertest_models:SlowMLP"}}
            ),
            data,
        )
    with pytest.raises(ValueError, match="no array 'y'"):
        GradientComputer(spec, {"x": data["x"]})
    computer = GradientComputer(spec, data)
    with pytest.raises(ValueError, match="no parameters"):
        computer.compute(0, cut(8, 8))
    with pytest.raises(ValueError, match="parameters must be"):
        computer.set_params(np.zeros(3, np.float32), step=0)


def test_imported_user_model_with_allowed_prefix():
    from workertest_models import SlowMLP

    model = SlowMLP(delay=0.0)
    spec, data, flat = make_job(
        model, model_source={"import_path": "workertest_models:SlowMLP", "kwargs": {"delay": 0.0}}
    )
    computer = GradientComputer(spec, data, allowed_import_prefixes=["workertest_models"])
    computer.set_params(flat, step=0)
    assert computer.compute(0, cut(16, 8)).blocks == [(3, 0)]


@pytest.mark.parametrize("compression", ["none", "bf16"])
def test_reused_output_buffer_is_shared_only_on_request(compression):
    spec, data, flat = make_job(_mlp(dropout=0.0), compression=compression)
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=0)
    a = computer.compute(0, cut(16, 8), reuse_output=True)
    first = a.grads.copy()
    b = computer.compute(0, cut(32, 8), reuse_output=True)
    assert np.shares_memory(a.grads, b.grads)  # the transports send a result before the next
    c = computer.compute(0, cut(16, 8))
    d = computer.compute(0, cut(16, 8))
    assert not np.shares_memory(c.grads, d.grads) and not np.shares_memory(c.grads, b.grads)
    assert c.grads.tobytes() == first.tobytes()


needs_cuda = pytest.mark.skipif(
    not __import__("shardgrad").backend.cuda_is_available(), reason="needs a CUDA GPU and cupy"
)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("compression", ["none", "bf16"])
def test_cuda_worker_matches_cpu_and_repeats_itself(compression):
    spec, data, flat = make_job(_mlp(dropout=0.0), n=64, k=8, compression=compression)
    cpu = GradientComputer(spec, data)
    cpu.set_params(flat, step=0)
    gpu = GradientComputer(spec, data, device="cuda")
    assert str(gpu.device).startswith("cuda")
    gpu.set_params(flat, step=0)
    shards = cut(64, 8)
    expected = cpu.compute(0, shards).block_arrays()[(3, 0)]
    first = gpu.compute(0, shards)
    assert isinstance(first.grads, np.ndarray)  # results come back to the host for the wire
    assert first.blocks_finite  # its block of eight leaves checked on the device
    np.testing.assert_allclose(
        first.block_arrays()[(3, 0)],
        expected,
        rtol=2e-2 if compression == "bf16" else 1e-4,
        atol=1e-5,
    )
    # Parameters received on the host reach the GPU; the same shard gives the same bytes.
    gpu.host_param_buffer()[...] = flat
    gpu.commit_params(step=1)
    again = gpu.compute(1, shards, reuse_output=True)
    assert again.grads.tobytes() == first.grads.tobytes()
    parts = {}
    for part in ([0, 1, 2], [3, 4, 5, 6, 7]):
        parts.update(gpu.compute(1, [shards[i] for i in part]).block_arrays())
    total = reduction.tree_sum(parts, 8, lambda a, b: a + b)
    if compression == "none":
        assert total.tobytes() == first.grads[0].tobytes()


def test_threads_of_one_process_get_the_same_dropout_masks():
    import threading

    model = _mlp(dropout=0.5)
    spec, data, flat = make_job(model, n=64, k=8, seed=11)
    shards = cut(64, 8)
    reference = GradientComputer(spec, data)
    reference.set_params(flat, step=1)
    expected = reference.compute(1, shards).grads.tobytes()
    computers = [GradientComputer(spec, data) for _ in range(3)]
    got: list[bytes] = []

    def run(c):
        c.set_params(flat, step=1)
        for _ in range(5):
            got.append(c.compute(1, shards).grads.tobytes())

    threads_ = [threading.Thread(target=run, args=(c,)) for c in computers]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join(timeout=60)
    assert len(got) == 15 and set(got) == {expected}
