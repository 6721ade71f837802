"""shardgrad.utils.data against torch.utils.data: batches and their collation (structure,
dtypes, values) in sequential order, dataset combinators, samplers, errors; and what cannot
match torch's stream (shuffles, random splits, weighted draws) by its properties and by its
reproducibility under a seeded Generator."""

from __future__ import annotations

import os
import time
from collections import namedtuple

import numpy as np
import pytest
import torch
import torch.utils.data as tdata

import shardgrad as sg
import shardgrad.utils.data as sdata

Point = namedtuple("Point", ["x", "y"])


def _plain(batch):
    """A batch as nested Python values, with each tensor's dtype name."""
    if isinstance(batch, (sg.Tensor, torch.Tensor)):
        return ("tensor", str(batch.dtype).split(".")[-1], batch.tolist())
    if isinstance(batch, dict):
        return {k: _plain(v) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return (type(batch).__name__, [_plain(v) for v in batch])
    if isinstance(batch, (list, tuple)):
        return [_plain(v) for v in batch]
    return batch


def _both(make_dataset, **kwargs):
    ours = [_plain(b) for b in sdata.DataLoader(make_dataset(sg, sdata), **kwargs)]
    theirs = [_plain(b) for b in tdata.DataLoader(make_dataset(torch, tdata), **kwargs)]
    assert ours == theirs
    assert len(sdata.DataLoader(make_dataset(sg, sdata), **kwargs)) == len(
        tdata.DataLoader(make_dataset(torch, tdata), **kwargs)
    )


def tensors(lib, data):
    return data.TensorDataset(lib.arange(10.0).reshape(10, 1), lib.arange(10))


class Samples:
    """A map-style dataset of mixed Python samples (plain class: both libraries take it)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __len__(self) -> int:
        return 10

    def __getitem__(self, i):
        if self.kind == "dict":
            return {"value": float(i), "label": i, "name": f"s{i}", "flag": i % 2 == 0}
        if self.kind == "named":
            return Point(np.arange(3.0) * i, i)
        return [np.float32(i), (i, 2 * i)]


@pytest.mark.parametrize(
    "make, kwargs",
    [
        (tensors, {"batch_size": 4}),
        (tensors, {"batch_size": 4, "drop_last": True}),
        (tensors, {"batch_size": None}),
        (tensors, {"batch_size": 3, "num_workers": 2}),
        (lambda lib, data: Samples("dict"), {"batch_size": 2}),
        (lambda lib, data: Samples("named"), {"batch_size": 3}),
        (lambda lib, data: Samples("nested"), {"batch_size": 2}),
        (lambda lib, data: data.Subset(tensors(lib, data), [7, 2, 5]), {"batch_size": 2}),
        (lambda lib, data: tensors(lib, data) + tensors(lib, data), {"batch_size": 6}),
        (
            lambda lib, data: data.StackDataset(tensors(lib, data), Samples("dict")),
            {"batch_size": 2},
        ),
        (
            lambda lib, data: data.StackDataset(a=tensors(lib, data), b=Samples("nested")),
            {"batch_size": 4},
        ),
        (
            lambda lib, data: tensors(lib, data),
            {"batch_sampler": [[3, 1], [0], [9, 8, 7]]},
        ),
        (
            lambda lib, data: tensors(lib, data),
            {"sampler": [4, 4, 0], "batch_size": 2, "collate_fn": lambda b: len(b)},
        ),
    ],
    ids=[
        "tensors",
        "drop_last",
        "no batching",
        "workers",
        "dicts",
        "namedtuples",
        "nested lists",
        "subset",
        "concat",
        "stack tuple",
        "stack dict",
        "batch_sampler",
        "sampler and collate_fn",
    ],
)
def test_batches_match_torch(make, kwargs):
    _both(make, **kwargs)


class Stream:
    """An iterable dataset counting to n (plain class, given the right base per library)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n


def _stream(base):
    return type("Counting", (Stream, base), {})


@pytest.mark.parametrize("kwargs", [{"batch_size": 4}, {"batch_size": 3, "drop_last": True}])
def test_iterable_datasets_match_torch(kwargs):
    ours = sdata.DataLoader(_stream(sdata.IterableDataset)(10), **kwargs)
    theirs = tdata.DataLoader(_stream(tdata.IterableDataset)(10), **kwargs)
    assert [_plain(b) for b in ours] == [_plain(b) for b in theirs]
    assert len(ours) == len(theirs)
    chained = sdata.ChainDataset([_stream(sdata.IterableDataset)(3)] * 2)
    assert list(chained) == [0, 1, 2, 0, 1, 2] and len(chained) == 6


def test_shuffling_is_a_permutation_reproducible_by_its_generator():
    ds = tensors(sg, sdata)

    def order(seed):
        loader = sdata.DataLoader(ds, 4, shuffle=True, generator=sg.Generator().manual_seed(seed))
        return [i for _, y in loader for i in y.tolist()]

    first, again, other = order(5), order(5), order(6)
    assert sorted(first) == list(range(10)) and first == again and first != other
    loader = sdata.DataLoader(ds, 4, shuffle=True)
    assert [i for _, y in loader for i in y.tolist()] != [i for _, y in loader for i in y.tolist()]


def test_random_split_and_samplers():
    ds = tensors(sg, sdata)
    parts = sdata.random_split(ds, [0.5, 0.3, 0.2], generator=sg.Generator().manual_seed(1))
    assert [len(p) for p in parts] == [5, 3, 2]
    assert sorted(i for p in parts for i in p.indices) == list(range(10))
    with pytest.raises(ValueError, match="Sum of input lengths"):
        sdata.random_split(ds, [3, 3])
    drawn = list(sdata.RandomSampler(ds, replacement=True, num_samples=1000))
    assert len(drawn) == 1000 and set(drawn) <= set(range(10))
    assert sorted(sdata.SubsetRandomSampler([2, 4, 6])) == [2, 4, 6]
    weighted = list(
        sdata.WeightedRandomSampler([0.0, 1.0, 3.0], 4000, generator=sg.Generator().manual_seed(0))
    )
    counts = np.bincount(weighted, minlength=3) / 4000
    np.testing.assert_allclose(counts, [0.0, 0.25, 0.75], atol=0.03)
    batches = list(sdata.BatchSampler(range(7), 3, drop_last=False))
    assert batches == list(tdata.BatchSampler(range(7), 3, drop_last=False))


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_distributed_sampler_splits_the_dataset_across_replicas(shuffle, drop_last):
    ds = list(range(11))
    shards = [
        list(sdata.DistributedSampler(ds, 3, r, shuffle=shuffle, seed=4, drop_last=drop_last))
        for r in range(3)
    ]
    theirs = [
        list(tdata.DistributedSampler(ds, 3, r, shuffle=shuffle, seed=4, drop_last=drop_last))
        for r in range(3)
    ]
    assert [len(s) for s in shards] == [len(s) for s in theirs]
    covered = sorted(i for s in shards for i in s)
    if drop_last:
        assert len(set(covered)) == len(covered) == 9  # disjoint, two samples dropped
    else:
        assert set(covered) == set(ds) and len(covered) == 12  # one sample repeated
    if not shuffle:
        assert shards == theirs
    sampler = sdata.DistributedSampler(ds, 3, 0, shuffle=True)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first or len(first) < 2


class _WhoLoads(sdata.Dataset):
    """Each sample says which worker process loaded it, and what that worker's init set."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        info = sdata.get_worker_info()
        return i, info.id, info.num_workers, os.getpid(), _INIT.get("worker", -1)


_INIT: dict = {}


def _remember_worker(worker_id: int) -> None:
    _INIT["worker"] = worker_id


def test_workers_are_processes_that_see_their_info_and_init_function():
    loader = sdata.DataLoader(
        _WhoLoads(), batch_size=2, num_workers=3, worker_init_fn=_remember_worker
    )
    batches = list(loader)
    assert [b[0].tolist() for b in batches] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]]
    ids = {int(w) for b in batches for w in b[1]}
    assert ids == {0, 1, 2}  # batches go to the workers in turn
    assert {int(n) for b in batches for n in b[2]} == {3}
    assert all(b[1].tolist() == b[4].tolist() for b in batches)  # init ran in that worker
    pids = {int(p) for b in batches for p in b[3]}
    assert len(pids) == 3 and os.getpid() not in pids
    assert sdata.get_worker_info() is None and "worker" not in _INIT


class _Shards(sdata.IterableDataset):
    """An iterable dataset that splits its range among the workers, as torch's docs show."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = sdata.get_worker_info()
        if info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


def test_iterable_dataset_with_workers_takes_batches_in_turn():
    loader = sdata.DataLoader(_Shards(10), batch_size=2, num_workers=2)
    got = [b.tolist() for b in loader]
    assert got == [[0, 2], [1, 3], [4, 6], [5, 7], [8], [9]]  # torch's order: worker by worker
    assert sorted(sum(got, [])) == list(range(10))


class _Faulty(sdata.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            raise KeyError(f"sample {i} is missing")
        return i


def test_a_worker_exception_is_raised_in_the_loader_with_its_traceback():
    loader = sdata.DataLoader(_Faulty(), batch_size=2, num_workers=2)
    with pytest.raises(KeyError, match=r"(?s)worker process 0.*sample 5 is missing"):
        list(loader)


class _Slow(sdata.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        time.sleep(5 if i == 2 else 0)
        return i


class _Dies(sdata.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 3:
            os._exit(7)
        return i


def test_timeout_and_a_dying_worker_are_errors():
    with pytest.raises(RuntimeError, match="timed out after 1"):
        list(sdata.DataLoader(_Slow(), batch_size=1, num_workers=1, timeout=1))
    with pytest.raises(RuntimeError, match=r"exited unexpectedly \(exit code 7\)"):
        list(sdata.DataLoader(_Dies(), batch_size=1, num_workers=2))


def test_persistent_workers_serve_every_epoch_even_after_an_early_stop():
    loader = sdata.DataLoader(
        _WhoLoads(), batch_size=3, num_workers=2, shuffle=True, persistent_workers=True,
        generator=sg.Generator().manual_seed(0),
    )  # fmt: skip
    first = next(iter(loader))  # stop after one batch: in-flight batches are left behind
    epoch = list(loader)
    pids = {int(p) for b in epoch for p in b[3]} | {int(p) for p in first[3]}
    assert len(pids) == 2  # the same two processes throughout
    assert sorted(int(i) for b in epoch for i in b[0]) == list(range(12))
    loader._pool.close()


def test_worker_results_equal_the_main_process_results():
    data = sdata.TensorDataset(sg.arange(40.0).reshape(20, 2), sg.arange(20))
    plain = list(sdata.DataLoader(data, batch_size=6))
    workers = list(
        sdata.DataLoader(data, batch_size=6, num_workers=2, multiprocessing_context="spawn")
    )
    for (x0, y0), (x1, y1) in zip(plain, workers):
        assert x0.tolist() == x1.tolist() and y0.tolist() == y1.tolist()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sampler": [0, 1], "shuffle": True},
        {"batch_sampler": [[0]], "batch_size": 2},
        {"batch_size": None, "drop_last": True},
        {"num_workers": -1},
    ],
    ids=["sampler and shuffle", "batch_sampler and batch_size", "no batching drop_last", "workers"],
)
def test_argument_errors_match_torch(kwargs):
    messages = []
    for data, lib in ((sdata, sg), (tdata, torch)):
        with pytest.raises(ValueError) as info:
            data.DataLoader(tensors(lib, data), **kwargs)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        sdata.DataLoader(_stream(sdata.IterableDataset)(3), shuffle=True)


def test_generator_streams_are_independent_of_the_global_one():
    g = sg.Generator().manual_seed(7)
    a = sg.rand(4, generator=g)
    sg.manual_seed(0)
    sg.rand(10)  # the global stream moves; g's does not care
    g.manual_seed(7)
    np.testing.assert_array_equal(a.numpy(), sg.rand(4, generator=g).numpy())
    state = g.get_state()
    x = sg.randn(3, generator=g)
    g.set_state(state)
    np.testing.assert_array_equal(x.numpy(), sg.randn(3, generator=g).numpy())
    assert g.initial_seed() == 7
    w, v = sg.empty(5), sg.empty(5)
    sg.nn.init.normal_(w, generator=sg.Generator().manual_seed(3))
    sg.nn.init.normal_(v, generator=sg.Generator().manual_seed(3))
    np.testing.assert_array_equal(w.numpy(), v.numpy())
    a, b = (
        sg.empty(5).uniform_(generator=g.manual_seed(1)),
        sg.empty(5).uniform_(generator=g.manual_seed(1)),
    )
    np.testing.assert_array_equal(a.numpy(), b.numpy())
