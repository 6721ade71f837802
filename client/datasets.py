"""Datasets on the client side: arrays to canonical .npz bytes, and their upload.

The coordinator names a dataset by the sha256 of its .npz bytes, so the same arrays must give
the same bytes every time: the archive is written here with fixed timestamps and no
compression instead of with `np.savez` (which stamps the current time into every entry).
That is what makes an upload idempotent: a client asks first whether the hash is already
stored and skips the transfer when it is, and an interrupted upload is simply sent again.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

CHUNK_BYTES = 1 << 20
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_DTYPE_NAMES = {
    1: "float32",
    2: "float64",
    3: "float16",
    4: "bfloat16",
    5: "int64",
    6: "int32",
    7: "uint8",
    8: "bool",
}


@dataclass(frozen=True)
class DatasetInfo:
    """A stored dataset: name it in `submit(dataset=info)` or by `info.sha256`."""

    sha256: str
    name: str = ""
    nbytes: int = 0
    num_samples: int = 0
    arrays: dict = field(default_factory=dict)  # name -> {"dtype": ..., "shape": [...]}
    created_at: float = 0.0

    @classmethod
    def from_proto(cls, m) -> DatasetInfo:
        return cls(
            sha256=m.sha256,
            name=m.name,
            nbytes=int(m.nbytes),
            num_samples=int(m.num_samples),
            arrays={
                a.name: {"dtype": _DTYPE_NAMES.get(a.dtype, str(a.dtype)), "shape": list(a.shape)}
                for a in m.arrays
            },
            created_at=m.created_at,
        )

    def to_dict(self) -> dict:
        return {
            "sha256": self.sha256,
            "name": self.name,
            "nbytes": self.nbytes,
            "num_samples": self.num_samples,
            "arrays": self.arrays,
            "created_at": self.created_at,
        }


def _as_array(a, what: str) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "numpy"):  # a shardgrad or torch tensor
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.ndim == 0:  # checked first: ascontiguousarray would make it 1-d
        raise ValueError(f"{what} needs a first axis of samples")
    arr = np.ascontiguousarray(arr)
    if arr.dtype.hasobject:
        raise TypeError(f"{what} has dtype object; datasets hold numbers")
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def encode_npz(x, y) -> bytes:
    """Canonical .npz bytes of inputs `x` and targets `y` (same rows)."""
    xa, ya = _as_array(x, "X"), _as_array(y, "y")
    if xa.shape[0] != ya.shape[0]:
        raise ValueError(f"X has {xa.shape[0]} rows but y has {ya.shape[0]}")
    if xa.shape[0] == 0:
        raise ValueError("the dataset is empty")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in (("x", xa), ("y", ya)):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)
    return buf.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def upload_requests(
    data: bytes,
    name: str,
    sha256: str,
    chunk_bytes: int = CHUNK_BYTES,
    on_chunk: Callable[[int], None] | None = None,
) -> Iterator:
    """The UploadDataset stream: a header naming the hash, then the bytes in order."""
    from shardgrad.protos import common_pb2, coordinator_pb2  # noqa: PLC0415

    header = coordinator_pb2.UploadDatasetHeader(name=name, nbytes=len(data), sha256=sha256)
    yield coordinator_pb2.UploadDatasetRequest(header=header)
    view = memoryview(data)
    for start in range(0, len(data), chunk_bytes):
        piece = view[start : start + chunk_bytes]
        yield coordinator_pb2.UploadDatasetRequest(
            chunk=common_pb2.Chunk(offset=start, data=bytes(piece))
        )
        if on_chunk is not None:
            on_chunk(len(piece))
