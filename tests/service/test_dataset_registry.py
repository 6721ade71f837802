"""Datasets by content address, built-in datasets, and the sampler's batches."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

from shardgrad.data import load_digits, make_classification
from shardgrad.service.datasets import DatasetError, DatasetRegistry, npz_bytes
from shardgrad.service.sampler import (
    BatchSampler,
    cut_micro_shards,
    epoch_permutation,
    train_eval_split,
)
from shardgrad.service.store import Store


@pytest.fixture
def registry(tmp_path):
    store = Store(tmp_path / "state.db")
    yield DatasetRegistry(tmp_path / "datasets", store=store)
    store.close()


def test_upload_is_content_addressed(registry, tmp_path):
    x = np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32)
    y = np.arange(20) % 4
    data = npz_bytes(x, y)
    digest = registry.put(data, name="mine")
    assert digest == hashlib.sha256(data).hexdigest()
    assert registry.put(data) == digest  # idempotent
    for ref in (digest, f"sha256:{digest}"):
        ds = registry.resolve(ref)
        np.testing.assert_array_equal(ds.x, x)
        np.testing.assert_array_equal(ds.y, y)
        assert ds.is_classification and ds.num_classes == 4
    rec = registry._store.get_dataset(digest)
    assert (rec.name, rec.num_samples, rec.x_shape, rec.size_bytes) == ("mine", 20, [3], len(data))
    assert registry.read_bytes(digest) == data


def test_damaged_file_is_refused(registry, tmp_path):
    digest = registry.put_arrays(np.zeros((4, 2), np.float32), np.zeros(4, np.int64))
    path = registry.path_for(digest)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1
    path.write_bytes(bytes(raw))
    fresh = DatasetRegistry(registry.root)  # no cached copy
    with pytest.raises(DatasetError, match="corrupt"):
        fresh.resolve(digest)
    with pytest.raises(DatasetError, match="no dataset"):
        fresh.resolve("0" * 64)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_npz(x=np.zeros((3, 2))), "missing"),
        (_npz(x=np.zeros((3, 2)), y=np.zeros(4)), "3 samples but y has 4"),
        (_npz(x=np.zeros((0, 2)), y=np.zeros(0)), "empty"),
        (_npz(x=np.array([[np.nan]]), y=np.zeros(1)), "NaN"),
        (_npz(x=np.array(["a", "b"]), y=np.zeros(2)), "numeric"),
        (_npz(x=np.array([{}, {}], dtype=object), y=np.zeros(2)), "npz"),  # needs pickle
        (b"PK\x03\x04 definitely not a zip", "npz"),
    ],
)
def test_bad_uploads_are_refused(registry, data, message):
    with pytest.raises(DatasetError, match=message):
        registry.put(data)
    assert registry._store.list_datasets() == []


def test_builtin_datasets(registry):
    ds = registry.resolve("synthetic:classification:n=50,features=4,classes=5,seed=9")
    x, y = make_classification(50, 4, 5, 9)
    np.testing.assert_array_equal(ds.x, x)
    np.testing.assert_array_equal(ds.y, y)
    digits = registry.resolve("digits")
    assert digits.x.shape == (1797, 64) and digits.num_classes == 10
    np.testing.assert_array_equal(digits.x, load_digits(split="all")[0])
    assert registry.resolve("digits:image").x.shape == (1797, 1, 8, 8)
    # remote workers fetch built-ins by hash like any upload
    digest = registry.sha256_of("digits")
    np.testing.assert_array_equal(registry.resolve(digest).x, digits.x)
    with pytest.raises(DatasetError, match="unknown synthetic kind"):
        registry.resolve("synthetic:spiral")


def test_epochs_visit_every_training_row_once():
    rows = np.arange(100, 147)  # 47 training rows
    sampler = BatchSampler(rows, batch_size=10, seed=3)
    assert sampler.steps_per_epoch == 5
    for epoch in range(2):
        batches = [sampler.batch(epoch * 5 + i) for i in range(5)]
        assert [len(b) for b in batches] == [10, 10, 10, 10, 7]
        assert sorted(np.concatenate(batches).tolist()) == rows.tolist()
    assert not np.array_equal(sampler.batch(0), sampler.batch(5))  # a new order each epoch
    # a fresh sampler (a resumed job) gives the same batch for the same step
    np.testing.assert_array_equal(BatchSampler(rows, 10, 3).batch(7), sampler.batch(7))
    np.testing.assert_array_equal(
        epoch_permutation(3, 1, 47), np.random.default_rng([0, 3, 1]).permutation(47)
    )
    assert sampler.state(7)["epoch"] == 1 and sampler.state(7)["batch_in_epoch"] == 2


def test_split_and_micro_shards():
    train, held = train_eval_split(seed=1, n=50, eval_fraction=0.2)
    assert len(held) == 10 and len(train) == 40
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(50))
    np.testing.assert_array_equal(train_eval_split(1, 50, 0.2)[1], held)
    assert len(train_eval_split(1, 50, 0.0)[1]) == 0
    shards = cut_micro_shards(np.arange(10), 4)
    assert [len(s) for s in shards] == [3, 3, 2, 2]
    assert [len(s) for s in cut_micro_shards(np.arange(2), 3)] == [1, 1, 0]
