"""Datasets by content address, built-in datasets, uploads received as their bytes arrive,
and the sampler's batches."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import tracemalloc

import numpy as np
import pytest

from shardgrad.data import load_digits, make_classification
from shardgrad.service.datasets import DatasetError, DatasetRegistry, npz_bytes
from shardgrad.service.fsutil import create_temp
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


# ---------------------------------------------------------------------- uploads
def _upload_temps(root) -> list[str]:
    return sorted(n for n in os.listdir(root) if n.startswith(".upload-"))


def test_an_upload_grows_with_its_bytes_and_leaves_nothing_when_dropped(registry):
    upload = registry.upload()
    with upload:
        upload.write(b"0123456789")
        upload.sync()
        assert upload.path.stat().st_size == upload.size == 10
        assert _upload_temps(registry.root) == [upload.path.name]
    assert _upload_temps(registry.root) == []


def test_a_received_upload_is_kept_under_its_sha256(registry):
    x = np.arange(60, dtype=np.float32).reshape(20, 3)
    y = np.arange(20) % 2
    data = npz_bytes(x, y)
    for _ in range(2):  # the second time the same bytes are already stored
        with registry.upload() as upload:
            for start in range(0, len(data), 100):
                upload.write(data[start : start + 100])
            digest = registry.put_upload(upload, name="received")
        assert digest == hashlib.sha256(data).hexdigest()
        assert _upload_temps(registry.root) == []
    assert registry.read_bytes(digest) == data
    np.testing.assert_array_equal(registry.resolve(digest).x, x)
    rec = registry._store.get_dataset(digest)
    assert (rec.name, rec.size_bytes, rec.num_samples) == ("received", len(data), 20)


def test_a_received_upload_that_is_not_a_dataset_is_refused_and_removed(registry):
    with registry.upload() as upload:
        upload.write(b"not an npz file")
        with pytest.raises(DatasetError, match="not a readable npz"):
            registry.put_upload(upload)
    assert _upload_temps(registry.root) == []
    assert registry._store.list_datasets() == []


def test_an_upload_cut_short_by_a_crash_goes_when_the_registry_opens(registry):
    fd, dead = create_temp(registry.root, ".upload-")
    os.close(fd)  # closed, never kept: as if its process had died
    with registry.upload() as live:
        DatasetRegistry(registry.root)
        assert _upload_temps(registry.root) == [live.path.name]
    assert not dead.exists()


ANNOUNCED = 256 << 20  # the most the coordinator below accepts


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory):
    from shardgrad.service.server import Coordinator, ServeOptions

    options = ServeOptions(
        state_dir=tmp_path_factory.mktemp("state"),
        pool="inprocess",
        local_workers=0,
        max_upload_bytes=ANNOUNCED,
    )
    c = Coordinator(options).start()
    try:
        yield c
    finally:
        c.stop(timeout=10)


def _api(coordinator):
    import grpc

    from shardgrad.protos import coordinator_pb2_grpc

    channel = grpc.insecure_channel(coordinator.dial_address)
    metadata = (("authorization", f"Bearer {coordinator.token}"),)
    return channel, coordinator_pb2_grpc.CoordinatorStub(channel), metadata


def _header(nbytes: int, sha256: str = ""):
    from shardgrad.protos import coordinator_pb2 as pb

    return pb.UploadDatasetRequest(header=pb.UploadDatasetHeader(nbytes=nbytes, sha256=sha256))


def _chunk(offset: int, data: bytes):
    from shardgrad.protos import common_pb2
    from shardgrad.protos import coordinator_pb2 as pb

    return pb.UploadDatasetRequest(chunk=common_pb2.Chunk(offset=offset, data=data))


def test_announcing_the_largest_upload_reserves_nothing(coordinator):
    """A client that announces the limit and sends 10 bytes costs the coordinator 10 bytes,
    not the announced size; what it sent goes when it ends short or cancels."""
    import grpc

    from shardgrad.protos import coordinator_pb2 as pb

    root = coordinator.manager.datasets.root
    channel, stub, metadata = _api(coordinator)
    try:
        tracemalloc.start()
        try:
            with pytest.raises(grpc.RpcError) as e:
                stub.UploadDataset(
                    iter([_header(ANNOUNCED), _chunk(0, b"0123456789")]),
                    metadata=metadata,
                    timeout=30,
                )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.value.details() == f"chunk: the upload ended after 10 of {ANNOUNCED} bytes"
        assert peak < 16 << 20, f"{peak} bytes allocated for a 10-byte upload"
        assert _upload_temps(root) == []

        # Cancelled halfway: the bytes received so far are on disk, then they go.
        more = threading.Event()

        def requests():
            yield _header(ANNOUNCED)
            yield _chunk(0, b"0123456789")
            more.wait(30)

        call = stub.UploadDataset.future(requests(), metadata=metadata, timeout=30)
        deadline = time.monotonic() + 10
        while not _upload_temps(root):
            assert time.monotonic() < deadline, "the upload never reached the coordinator"
            time.sleep(0.01)
        assert all((root / n).stat().st_size <= 10 for n in _upload_temps(root))
        call.cancel()
        more.set()
        while _upload_temps(root):
            assert time.monotonic() < deadline, "a cancelled upload left its temp file"
            time.sleep(0.01)

        # The coordinator still answers, and a whole upload still goes through.
        data = npz_bytes(np.zeros((8, 2), np.float32), np.arange(8))
        digest = hashlib.sha256(data).hexdigest()
        info = stub.UploadDataset(
            iter([_header(len(data), digest), _chunk(0, data[:50]), _chunk(50, data[50:])]),
            metadata=metadata,
            timeout=30,
        )
        assert (info.sha256, info.nbytes, info.num_samples) == (digest, len(data), 8)
        listed = stub.ListDatasets(pb.ListDatasetsRequest(), metadata=metadata, timeout=30)
        assert digest in {d.sha256 for d in listed.datasets}
        assert _upload_temps(root) == []
    finally:
        channel.close()
