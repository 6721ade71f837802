"""BatchNorm running statistics on the worker side: what a micro-shard reports, folded in
micro-shard order, gives the buffers of one process running the micro-shards one after
another; nothing carries over between micro-shards; and the statistics survive the wire."""

from __future__ import annotations

import numpy as np
import pytest
from workertest_helpers import cut, make_job

import shardgrad as sg
from shardgrad import nn
from shardgrad.protos import worker_pb2
from shardgrad.worker import messages
from shardgrad.worker.compute import GradientComputer
from shardgrad.worker.running_stats import RunningStats, StatsRecorder
from shardgrad.worker.wire import WireError

BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _bn_mlp(momentum=0.1, track=True, features=4):
    sg.manual_seed(0)
    return nn.Sequential(
        nn.Linear(features, 6),
        nn.BatchNorm1d(6, momentum=momentum, track_running_stats=track),
        nn.ReLU(),
        nn.Linear(6, 3),
    )


def _bn_cnn(momentum=0.1):
    sg.manual_seed(0)
    return nn.Sequential(
        nn.Unflatten(1, (1, 4, 4)),
        nn.Conv2d(1, 2, 3, padding=1),
        nn.BatchNorm2d(2, momentum=momentum),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32, 3),
    )


def _buffers(model) -> dict[str, bytes]:
    return {k: v.numpy().tobytes() for k, v in model.state_dict().items() if k.endswith(BUFFERS)}


def _single_process(model, data, shards) -> None:
    """A user's gradient accumulation: one train-mode forward per micro-shard, in order."""
    model.train()
    for _, idx in shards:
        model(sg.tensor(data["x"][idx]))


@pytest.mark.parametrize(
    "make, features",
    [
        (lambda: _bn_mlp(0.1), 4),
        (lambda: _bn_mlp(None), 4),
        (lambda: _bn_cnn(0.3), 16),
        (lambda: _bn_cnn(None), 16),
    ],
    ids=["mlp", "mlp-cumulative", "cnn", "cnn-cumulative"],
)
def test_folded_statistics_equal_one_process_bit_for_bit(make, features):
    model = make()
    spec, data, flat = make_job(model, n=64, features=features, k=6, seed=2)
    shards = cut(40, 6)
    # Three "workers" holding scattered micro-shards, asked in an unrelated order.
    stats = {}
    for part in ([4, 5], [0, 3], [1, 2]):
        computer = GradientComputer(spec, data)
        computer.set_params(flat, step=1)
        for s in computer.compute(1, [shards[i] for i in part]).stats:
            stats[s.index] = s
    coordinator = make()
    running = RunningStats(coordinator)
    for i in range(6):
        assert stats[i].bn_calls == (1,)
        assert stats[i].bn_stats.dtype == np.float32
        running.check(stats[i].bn_calls, stats[i].bn_stats)
        running.fold(stats[i].bn_calls, stats[i].bn_stats)

    _single_process(model, data, shards)
    expected = _buffers(model)
    assert _buffers(coordinator) == expected
    (nbt,) = [v for k, v in coordinator.state_dict().items() if k.endswith("batches_tracked")]
    assert int(nbt.item()) == 6
    assert expected != _buffers(make())  # they did move


def test_nothing_carries_over_between_micro_shards():
    """The worker's own buffers never drift: the same micro-shard reports the same bytes
    whatever the worker computed before, and momentum=None stays None."""
    model = _bn_mlp(None)
    spec, data, flat = make_job(model, n=64, k=4, seed=1)
    shards = cut(32, 4)
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=0)
    first = computer.compute(0, [shards[2]]).stats[0]
    for _ in range(3):
        computer.compute(0, shards)
    again = computer.compute(0, [shards[2]]).stats[0]
    assert again.bn_stats.tobytes() == first.bn_stats.tobytes()
    assert again.loss == first.loss
    assert computer.model[1].momentum is None
    fresh = GradientComputer(spec, data)
    fresh.set_params(flat, step=0)
    assert fresh.compute(0, [shards[2]]).stats[0].bn_stats.tobytes() == first.bn_stats.tobytes()


def test_the_statistics_are_the_batch_mean_and_unbiased_variance():
    model = _bn_mlp(0.1).double()
    spec, data, flat = make_job(model, n=20, k=2, seed=4)
    data["x"] = data["x"].astype(np.float64)
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=0)
    (stat,) = computer.compute(0, [(0, np.arange(9))]).stats
    assert stat.bn_stats.dtype == np.float64
    torch = pytest.importorskip("torch")
    h = torch.tensor(data["x"][:9]) @ torch.tensor(model[0].weight.detach().numpy()).T
    h = h + torch.tensor(model[0].bias.detach().numpy())
    np.testing.assert_allclose(stat.bn_stats[:6], h.mean(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(stat.bn_stats[6:], h.var(0, unbiased=True).numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    "model", [_bn_mlp(track=False), nn.Sequential(nn.Linear(4, 3))], ids=["untracked", "no-bn"]
)
def test_models_without_running_statistics_report_none(model):
    spec, data, flat = make_job(model, n=32, k=4)
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=0)
    stats = computer.compute(0, cut(32, 4)).stats
    assert all(s.bn_calls == () and s.bn_stats is None for s in stats)
    running = RunningStats(model)
    assert not running and running.state() == {}
    running.check((), None)
    with pytest.raises(ValueError, match="for 1 BatchNorm layer"):
        running.check((1,), np.zeros(12, np.float32))


class _Shared(nn.Module):
    """One BatchNorm run twice per forward and another never run."""

    def __init__(self, momentum=0.1):
        super().__init__()
        self.lin = nn.Linear(4, 5)
        self.bn = nn.BatchNorm1d(5, momentum=momentum)
        self.unused = nn.BatchNorm1d(5, momentum=momentum)

    def forward(self, x):
        return self.bn(self.bn(self.lin(x)) * 2.0 + 1.0)


class _Direct(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x):
        return self.bn.forward(x)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_layers_run_twice_or_never_are_counted(momentum):
    sg.manual_seed(3)
    worker, coordinator, single = _Shared(momentum), _Shared(momentum), _Shared(momentum)
    for m in (coordinator, single):
        m.load_state_dict(worker.state_dict())
    recorder = StatsRecorder(worker)
    running = RunningStats(coordinator)
    x = np.random.default_rng(0).standard_normal((12, 4)).astype(np.float32)
    for rows in (slice(0, 5), slice(5, 12)):
        with recorder.recording() as rec:
            worker(sg.tensor(x[rows]))
        assert rec.calls == (2, 0)
        running.check(rec.calls, rec.values)
        running.fold(rec.calls, rec.values)
        single(sg.tensor(x[rows]))
    assert _buffers(coordinator) == _buffers(single)
    assert int(coordinator.bn.num_batches_tracked.item()) == 4
    assert int(coordinator.unused.num_batches_tracked.item()) == 0


def test_a_layer_run_past_its_hooks_is_refused():
    model = _Direct()
    recorder = StatsRecorder(model)
    with pytest.raises(RuntimeError, match=r"not its \.forward\(\)"):
        with recorder.recording():
            model(sg.tensor(np.ones((3, 4), np.float32)))
    assert model.bn.momentum == 0.1


def test_check_refuses_statistics_that_do_not_fit():
    running = RunningStats(_bn_mlp())
    good = np.zeros(12, np.float32)
    running.check((1,), good)
    running.check((0,), None)
    for calls, values, match in [
        ((1, 1), good, "for 2 BatchNorm layer"),
        ((1,), np.zeros(10, np.float32), "hold 10 values"),
        ((2,), good, "need 24"),
        ((1,), None, "hold 0 values"),
        ((1,), np.zeros((2, 6), np.float32), "1-d float"),
        ((1,), np.zeros(12, np.int64), "1-d float"),
        ((-1,), None, "negative"),
    ]:
        with pytest.raises(ValueError, match=match):
            running.check(calls, values)


def test_load_state_refuses_buffers_of_another_model():
    running = RunningStats(_bn_mlp())
    state = running.state()
    assert sorted(state) == ["1.num_batches_tracked", "1.running_mean", "1.running_var"]
    with pytest.raises(ValueError, match="missing"):
        running.load_state({k: v for k, v in state.items() if "var" not in k})
    with pytest.raises(ValueError, match="buffer 1.running_mean"):
        running.load_state({**state, "1.running_mean": np.zeros(5, np.float32)})
    moved = {**state, "1.running_mean": np.full(6, 2.5, np.float32)}
    running.load_state(moved)
    assert running.state()["1.running_mean"].tobytes() == moved["1.running_mean"].tobytes()


# ---------------------------------------------------------------- the wire
def _result(model, features=4):
    spec, data, flat = make_job(model, n=32, features=features, k=4)
    computer = GradientComputer(spec, data)
    computer.set_params(flat, step=0)
    return computer.compute(0, cut(32, 4)[1:3]), spec


def _round_trip(result, spec):
    header = messages.result_header(result)
    header = worker_pb2.ComputeResult.FromString(header.SerializeToString())
    return messages.result_from_header(header, spec.num_micro_shards, spec.layout.numel, None)


def test_statistics_travel_in_the_result_header():
    result, spec = _result(_bn_cnn(None), features=16)
    back = _round_trip(result, spec)
    for a, b in zip(result.stats, back.stats):
        assert (b.index, b.loss, b.num_samples, b.finite) == (a.index, a.loss, a.num_samples, True)
        assert b.bn_calls == a.bn_calls == (1,)
        assert b.bn_stats.dtype == a.bn_stats.dtype and b.bn_stats.tobytes() == a.bn_stats.tobytes()


def test_a_model_without_them_sends_the_same_header_as_before():
    result, spec = _result(nn.Sequential(nn.Linear(4, 3)))
    header = messages.result_header(result)
    for s, msg in zip(result.stats, header.shards):
        assert not msg.HasField("bn_stats") and not msg.bn_calls
        plain = worker_pb2.ShardStats(
            index=s.index, loss=s.loss, num_samples=s.num_samples, finite=s.finite
        )
        assert msg.SerializeToString() == plain.SerializeToString()
    assert all(s.bn_stats is None and s.bn_calls == () for s in _round_trip(result, spec).stats)


def test_malformed_statistics_are_refused_on_receipt():
    result, spec = _result(_bn_mlp())
    good = messages.result_header(result)

    def receive(edit):
        header = worker_pb2.ComputeResult()
        header.CopyFrom(good)
        edit(header.shards[0])
        return messages.result_from_header(header, spec.num_micro_shards, spec.layout.numel, None)

    with pytest.raises(WireError, match="bn_stats holds 0 values"):
        receive(lambda s: s.ClearField("bn_stats"))
    with pytest.raises(WireError, match="bn_stats holds 12 values"):
        receive(lambda s: s.ClearField("bn_calls"))

    def two_d(s):
        del s.bn_stats.shape[:]
        s.bn_stats.shape.extend([2, 6])

    with pytest.raises(WireError, match="1-d float"):
        receive(two_d)
    with pytest.raises(WireError, match="1-d float"):
        receive(lambda s: s.bn_stats.CopyFrom(messages.wire.tensor_to_proto(np.zeros(6, np.int64))))
    with pytest.raises(WireError, match="bytes do not hold"):
        receive(lambda s: setattr(s.bn_stats, "data", s.bn_stats.data[:-4]))


@pytest.mark.cuda
@pytest.mark.skipif(not sg.backend.cuda_is_available(), reason="needs a CUDA GPU and cupy")
@pytest.mark.parametrize(
    "make, features", [(lambda: _bn_mlp(0.1), 4), (lambda: _bn_cnn(0.3), 16)], ids=["mlp", "cnn"]
)
def test_a_cuda_worker_reports_host_statistics_that_fold_like_the_cpus(make, features):
    """The statistics leave the GPU as host arrays, in the same layout as a CPU worker's, and
    folded they give the CPU worker's buffers to float32 rounding."""
    spec, data, flat = make_job(make(), n=64, features=features, k=4, seed=3)
    shards = cut(40, 4)
    cpu = GradientComputer(spec, data)
    cpu.set_params(flat, step=0)
    gpu = GradientComputer(spec, data, device="cuda")
    gpu.set_params(flat, step=0)
    on_cpu, on_gpu = cpu.compute(0, shards).stats, gpu.compute(0, shards).stats
    folded = {}
    for name, stats in (("cpu", on_cpu), ("gpu", on_gpu)):
        coordinator = make()
        running = RunningStats(coordinator)
        for s in stats:
            assert isinstance(s.bn_stats, np.ndarray) and s.bn_stats.dtype == np.float32
            running.check(s.bn_calls, s.bn_stats)
            running.fold(s.bn_calls, s.bn_stats)
        folded[name] = {k: v.numpy() for k, v in coordinator.state_dict().items()}
    for c, g in zip(on_cpu, on_gpu):
        assert g.bn_calls == c.bn_calls
        np.testing.assert_allclose(g.bn_stats, c.bn_stats, rtol=1e-4, atol=1e-5)
    for key, value in folded["cpu"].items():
        np.testing.assert_allclose(folded["gpu"][key], value, rtol=1e-4, atol=1e-5)
