"""Content addresses for datasets: equal arrays give equal names on every machine.

Datasets are uploaded once and fetched by hash, so the hash must depend on what the arrays
hold and nothing else: not on memory layout (C or Fortran order, strides), not on the
machine's byte order, not on whether the caller passed a Tensor or an array.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .. import backend
from ..tensor import Tensor

_PREFIX = b"shardgrad.arrays.v1\n"


def _host(a) -> np.ndarray:
    if isinstance(a, Tensor):
        a = a.detach()._data
    if backend.is_array(a):
        return backend.to_device(a, backend.CPU)
    return np.asarray(a)


def sha256_of_arrays(*arrays) -> str:
    """The hex sha256 content address of a sequence of arrays (e.g. `X, y`).

    The digest covers, in order, the prefix `b"shardgrad.arrays.v1\\n"` and for each array the
    ASCII line `f"{dtype_name}{list(shape)}\\n"` (e.g. `float32[1797, 64]`) followed by its
    elements in C order as little-endian bytes. So the address changes when any value,
    dtype, shape or the order of the arrays changes, and stays the same across layouts,
    byte orders and machines. Only bool, integer and floating-point arrays are accepted.
    """
    digest = hashlib.sha256(_PREFIX)
    for i, a in enumerate(arrays):
        arr = _host(a)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"array {i}: dtype {arr.dtype} has no stable content address")
        arr = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")
        digest.update(f"{arr.dtype.name}{list(arr.shape)}\n".encode("ascii"))
        digest.update(memoryview(arr.reshape(-1).view(np.uint8)))
    return digest.hexdigest()
