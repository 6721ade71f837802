"""BatchNorm running statistics of a job trained through the service.

In train mode a BatchNorm layer normalises with its batch's statistics and blends them into
its running buffers, which eval mode then uses. Workers run the forwards, but the model that
is evaluated, checkpointed and handed to users is the coordinator's, and a worker's own
buffers would drift with whatever share of the steps it happened to compute. So a worker
reports each micro-shard's batch statistics beside its loss (`ShardStat.bn_calls`,
`ShardStat.bn_stats`), and the coordinator folds them into its model micro-shard by
micro-shard, in index order: its buffers end as those of one process that ran each step's
micro-shards through the model one after another in train mode (gradient accumulation),
whichever workers computed them.

A micro-shard's statistics are `calls`, how many times each tracked layer ran in its forward
(one entry per layer, in `named_modules()` order), and one flat array holding, layer by layer
and call by call, the batch mean and then the unbiased batch variance (`num_features` values
each), in the layers' dtype. `StatsRecorder` captures them on a worker; `RunningStats` checks
and folds them on the coordinator.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from shardgrad import backend, nn
from shardgrad.nn.normalization import _BatchNorm
from shardgrad.tensor import Tensor

_CPU = backend.as_device("cpu")


def tracked_layers(model: nn.Module) -> list[tuple[str, _BatchNorm]]:
    """(name, layer) of every BatchNorm layer that keeps running statistics, in
    `named_modules()` order: the order the statistics travel in."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, _BatchNorm)
        and m.track_running_stats
        and m.running_mean is not None
        and m.running_var is not None
    ]


@dataclass
class Recorded:
    """What one `StatsRecorder.recording()` captured; filled in when the block ends."""

    calls: tuple[int, ...] = ()
    values: np.ndarray | None = None


class StatsRecorder:
    """Captures the batch statistics each tracked layer computes in a forward.

    Before each call of a layer its running mean and variance are set to -0.0 and its
    momentum is 1 for the whole recording, so the layer's own update
    `r * (1 - 1) + 1 * s` leaves exactly its batch statistic `s` in the buffer (-0.0 is the
    one start value that `-0.0 * 0 + s` returns bit for bit, the sign of a zero included);
    a forward hook then copies it out. The buffers themselves therefore never carry anything
    from one micro-shard to the next, on any worker.
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for _, m in tracked_layers(model)]
        self._calls: list[list[tuple]] | None = None
        for i, layer in enumerate(self.layers):
            layer.register_forward_pre_hook(functools.partial(self._before, i))
            layer.register_forward_hook(functools.partial(self._after, i), prepend=True)

    @contextmanager
    def recording(self) -> Iterator[Recorded]:
        """Record the forwards run inside the block; the yielded `Recorded` is filled at its
        end (empty for a model without tracked layers)."""
        out = Recorded()
        if not self.layers:
            yield out
            return
        momenta = [layer.momentum for layer in self.layers]
        self._calls = [[] for _ in self.layers]
        for layer in self.layers:
            layer.momentum = 1.0
            if layer.num_batches_tracked is not None:
                layer.num_batches_tracked._data.fill(0)
        try:
            yield out
            self._check_counts()
            calls = self._calls
            out.calls = tuple(len(c) for c in calls)
            arrays = [a for per_layer in calls for pair in per_layer for a in pair]
            if arrays:
                dtype = np.result_type(*arrays)
                out.values = np.concatenate([a.astype(dtype, copy=False) for a in arrays])
        finally:
            self._calls = None
            for layer, momentum in zip(self.layers, momenta):
                layer.momentum = momentum

    def _before(self, i: int, module: _BatchNorm, args) -> None:
        if self._calls is not None and module.training:
            module.running_mean._data.fill(-0.0)
            module.running_var._data.fill(-0.0)

    def _after(self, i: int, module: _BatchNorm, args, result) -> None:
        if self._calls is not None and module.training:
            self._calls[i].append((_host_copy(module.running_mean), _host_copy(module.running_var)))

    def _check_counts(self) -> None:
        """A layer whose forward ran without its hooks (a parent calling `.forward()`
        directly) updated its buffers unseen: refuse rather than report wrong statistics."""
        for layer, calls in zip(self.layers, self._calls):
            nbt = layer.num_batches_tracked
            if nbt is not None and int(nbt.item()) != len(calls):
                raise RuntimeError(
                    f"a {type(layer).__name__} updated its running statistics "
                    f"{int(nbt.item())} time(s) but was called {len(calls)} time(s): call the "
                    "layer itself, not its .forward(), so that its statistics reach the "
                    "coordinator"
                )


def _host_copy(t: Tensor) -> np.ndarray:
    return np.array(backend.to_device(t._data, _CPU), copy=True)


class RunningStats:
    """The coordinator's side: checks micro-shards' statistics against its model's tracked
    layers and folds them into their buffers."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = tracked_layers(model)
        self.sizes = [int(layer.running_mean.numel()) for _, layer in self.layers]

    def __bool__(self) -> bool:
        return bool(self.layers)

    def check(self, calls: tuple[int, ...], values: np.ndarray | None) -> None:
        """ValueError unless (`calls`, `values`) fit this model's tracked layers."""
        calls = tuple(int(c) for c in calls)
        if len(calls) != len(self.layers):
            raise ValueError(
                f"running statistics for {len(calls)} BatchNorm layer(s), the model has "
                f"{len(self.layers)}"
            )
        if any(c < 0 for c in calls):
            raise ValueError(f"negative call counts {list(calls)}")
        need = sum(2 * c * n for c, n in zip(calls, self.sizes))
        size = 0 if values is None else int(values.size)
        if size != need:
            raise ValueError(
                f"running statistics hold {size} values, calls {list(calls)} need {need}"
            )
        if need and (values.ndim != 1 or values.dtype.kind != "f"):
            raise ValueError(
                f"running statistics must be a 1-d float array, got {values.ndim}-d {values.dtype}"
            )

    def fold(self, calls: tuple[int, ...], values: np.ndarray | None) -> None:
        """Apply one micro-shard's statistics (already `check`ed), each call as the layer's
        own train-mode forward would: num_batches_tracked += 1 and r <- (1 - m) r + m s, with
        m = momentum, or 1 / num_batches_tracked when momentum is None."""
        at = 0
        for (_, layer), count, n in zip(self.layers, calls, self.sizes):
            for _ in range(int(count)):
                mean, var = values[at : at + n], values[at + n : at + 2 * n]
                at += 2 * n
                factor = 0.0 if layer.momentum is None else layer.momentum
                nbt = layer.num_batches_tracked
                if nbt is not None:
                    nbt._data += 1
                    nbt._bump_version()
                    if layer.momentum is None:
                        factor = 1.0 / float(nbt.item())
                _blend(layer.running_mean, mean, factor)
                _blend(layer.running_var, var, factor)

    def state(self) -> dict[str, np.ndarray]:
        """The tracked layers' buffers under their state_dict names (for checkpoints)."""
        out = {}
        for key, t in self._buffers():
            out[key] = np.array(backend.to_device(t._data, _CPU), copy=True)
        return out

    def load_state(self, state: dict) -> None:
        """Restore what `state` returned; ValueError when it does not fit the model."""
        expected = dict(self._buffers())
        if set(state) != set(expected):
            missing = sorted(set(expected) - set(state))
            extra = sorted(set(state) - set(expected))
            raise ValueError(f"buffers do not match the model: missing {missing}, extra {extra}")
        for key, t in expected.items():
            value = state[key]
            value = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
            if value.shape != t._data.shape or value.dtype != t._data.dtype:
                raise ValueError(
                    f"buffer {key} is {value.dtype}{list(value.shape)}, the model's "
                    f"{t._data.dtype}{list(t._data.shape)}"
                )
        for key, t in expected.items():
            value = state[key]
            value = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
            t._data[...] = backend.to_device(value, backend.device_of(t._data))
            t._bump_version()

    def _buffers(self) -> Iterator[tuple[str, Tensor]]:
        for name, layer in self.layers:
            prefix = f"{name}." if name else ""
            for attr in ("running_mean", "running_var", "num_batches_tracked"):
                t = getattr(layer, attr)
                if t is not None:
                    yield prefix + attr, t


def _blend(buf: Tensor, value: np.ndarray, factor: float) -> None:
    """running = (1 - factor) * running + factor * value, in place: the arithmetic of the
    layer's own update in shardgrad.nn.functional.batch_norm, so that the buffers are the
    bytes a single process would hold."""
    d = buf._data
    value = backend.to_device(value.astype(d.dtype, copy=False), backend.device_of(d))
    d *= 1.0 - factor
    d += (factor * value).astype(d.dtype, copy=False)
    buf._bump_version()
