"""Datasets a job can name: uploaded npz files addressed by sha256, `digits`, and synthetic sets.

Uploads are stored once under `<state-dir>/datasets/` as the exact bytes the client sent,
named by their sha256, and re-hashed on every load so a file damaged on disk is refused rather
than trained on. An upload is received into a temp file there as its bytes arrive (`Upload`),
so the coordinator never holds a whole upload in memory nor reserves room for bytes a client
only announced. A dataset is two arrays of equal length: inputs `x` and targets `y`.
Synthetic sets are drawn from a seeded generator, so the same reference gives the same arrays
on the coordinator and on every worker.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoint import file_sha256
from .config import parse_dataset_ref
from .fsutil import atomic_write, create_temp, fsync_dir, remove_stale_temps

MAX_DATASET_BYTES = 4 << 30
_UPLOAD_PREFIX = ".upload-"
_UPLOAD_TEMP = re.compile(r"^\.upload-[0-9a-f]+\.tmp$")
_SYNTHETIC_KINDS = {
    "classification": {"n": 256, "features": 8, "classes": 3, "seed": 0, "class_sep": 3.0},
    "regression": {"n": 256, "features": 8, "targets": 1, "seed": 0, "noise": 0.1},
}


class DatasetError(ValueError):
    """A dataset that cannot be used: unknown hash, bad npz, corrupt file."""


@dataclass(frozen=True)
class Dataset:
    """Inputs and targets, row i of each belonging together."""

    ref: str
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def is_classification(self) -> bool:
        return self.y.dtype.kind in "iu" and self.y.ndim == 1

    @property
    def num_classes(self) -> int | None:
        return int(self.y.max()) + 1 if self.is_classification and len(self) else None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def arrays_from_npz(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Read and check `x` and `y` from npz bytes; never unpickles."""
    return _read_npz(io.BytesIO(data))


def _read_npz(source) -> tuple[np.ndarray, np.ndarray]:
    """`arrays_from_npz` of a file-like object or a path."""
    try:
        with np.load(source, allow_pickle=False) as z:
            names = set(z.files)
            missing = {"x", "y"} - names
            if missing:
                raise DatasetError(
                    f"npz needs arrays 'x' and 'y'; missing {sorted(missing)}, has {sorted(names)}"
                )
            x, y = z["x"], z["y"]
    except DatasetError:
        raise
    except Exception as exc:  # any parse failure of untrusted bytes (numpy raises many kinds)
        raise DatasetError(f"not a readable npz file: {exc}") from None
    check_arrays(x, y)
    return x, y


def check_arrays(x: np.ndarray, y: np.ndarray) -> None:
    if x.dtype.kind not in "fiub" or y.dtype.kind not in "fiub":
        raise DatasetError(f"x and y must be numeric arrays, got {x.dtype} and {y.dtype}")
    if x.ndim < 1 or y.ndim < 1:
        raise DatasetError("x and y need a leading sample axis")
    if x.shape[0] != y.shape[0]:
        raise DatasetError(f"x has {x.shape[0]} samples but y has {y.shape[0]}")
    if x.shape[0] == 0:
        raise DatasetError("the dataset is empty")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise DatasetError("x contains NaN or infinity")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DatasetError("y contains NaN or infinity")


def npz_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    """The npz encoding of a dataset, as a client would upload it."""
    buf = io.BytesIO()
    np.savez_compressed(buf, x=x, y=y)
    return buf.getvalue()


# ---------------------------------------------------------------------- built-ins
def parse_synthetic(text: str) -> tuple[str, dict]:
    """`"classification:n=64,classes=3"` -> ("classification", {...all parameters...})."""
    kind, _, params = text.partition(":")
    if kind not in _SYNTHETIC_KINDS:
        raise ValueError(f"unknown synthetic kind {kind!r}; use one of {sorted(_SYNTHETIC_KINDS)}")
    out = dict(_SYNTHETIC_KINDS[kind])
    for item in filter(None, params.split(",")):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in out:
            raise ValueError(
                f"synthetic {kind} parameter {item!r}: expected one of {sorted(out)} as key=value"
            )
        try:
            out[key] = float(value) if isinstance(out[key], float) else int(value)
        except ValueError:
            raise ValueError(
                f"synthetic {kind} parameter {key}={value!r} is not a number"
            ) from None
    for key, value in out.items():
        if isinstance(value, float):
            if not 0.0 <= value <= 1e6:
                raise ValueError(f"synthetic {key} must be in [0, 1e6], got {value}")
        elif key == "seed":
            if not 0 <= value < 1 << 63:
                raise ValueError("synthetic seed must be >= 0")
        elif not 1 <= value <= 10_000_000:
            raise ValueError(f"synthetic {key} must be in [1, 10000000], got {value}")
    if out.get("classes", 2) < 2:
        raise ValueError("synthetic classes must be at least 2")
    if out["n"] * out["features"] > 50_000_000:
        raise ValueError("synthetic dataset too large (n * features > 5e7)")
    return kind, out


def synthetic(text: str) -> tuple[np.ndarray, np.ndarray]:
    """The arrays of a `synthetic:` reference, from the core's seeded generators."""
    from shardgrad.data import make_classification, make_regression  # noqa: PLC0415

    kind, p = parse_synthetic(text)
    if kind == "classification":
        return make_classification(
            p["n"], p["features"], p["classes"], p["seed"], class_sep=p["class_sep"]
        )
    return make_regression(p["n"], p["features"], p["targets"], p["seed"], noise=p["noise"])


def digits(variant: str) -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits: flat [N, 64] features, or [N, 1, 8, 8] images for `digits:image`."""
    from shardgrad.data import load_digits  # noqa: PLC0415 - only when a job names it

    return load_digits(split="all", shape="image" if variant == "image" else "flat")


# ---------------------------------------------------------------------- uploads
class Upload:
    """One upload being received: a temp file that grows with the bytes as they arrive,
    hashed on the way. `DatasetRegistry.put_upload` checks it and keeps it under its sha256;
    closing an upload that was not kept (refused, cut short, cancelled) removes the file.
    The file is locked while open, so a crash leaves a leftover that the registry removes
    when it next opens (`remove_stale_temps`)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self._fd, self.path = create_temp(folder, _UPLOAD_PREFIX)
        try:
            self._file = open(self._fd, "wb", closefd=False)  # noqa: SIM115 - see close()
        except BaseException:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            raise
        self._hash = hashlib.sha256()
        self.size = 0
        self.kept = False

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def sync(self) -> None:
        """Make the bytes written so far durable (before the file is renamed into place)."""
        self._file.flush()
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self._file.close()
        except OSError:  # a last buffered write on a full disk: the file goes anyway
            pass
        finally:
            if not self.kept:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)  # drops the lock, after the file is gone or kept
            self._fd = -1

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------- registry
class DatasetRegistry:
    """Stores uploads by hash and resolves every kind of dataset reference to arrays.

    Resolved datasets are kept in a small in-memory LRU so a job's training loop, its eval
    and the in-process workers share one copy.
    """

    def __init__(self, root: str | os.PathLike, store=None, cache_size: int = 8) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._store = store
        self._cache: OrderedDict[str, Dataset] = OrderedDict()
        self._cache_size = cache_size
        self._builtin_sha: dict[str, str] = {}
        self._lock = threading.Lock()
        remove_stale_temps(self.root, _UPLOAD_TEMP.match)  # uploads a crash cut short

    def path_for(self, digest: str) -> Path:
        return self.root / digest[:2] / f"{digest}.npz"

    def put(self, data: bytes, name: str = "") -> str:
        """Check and store npz bytes; return their sha256. Storing the same bytes twice is a no-op."""
        if len(data) > MAX_DATASET_BYTES:
            raise DatasetError("dataset larger than 4 GiB")
        x, y = arrays_from_npz(data)
        digest = sha256_hex(data)
        path = self.path_for(digest)
        if not path.exists() or sha256_hex(path.read_bytes()) != digest:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
        self._record(digest, name, len(data), x, y)
        return digest

    def upload(self) -> Upload:
        """A new upload to receive bytes into; `put_upload` keeps it."""
        return Upload(self.root)

    def put_upload(self, upload: Upload, name: str = "") -> str:
        """Check a received upload and keep it under its sha256, like `put`; the upload's
        file becomes the stored file, with no copy in memory."""
        if upload.size > MAX_DATASET_BYTES:
            raise DatasetError("dataset larger than 4 GiB")
        upload.sync()
        x, y = _read_npz(upload.path)
        digest = upload.sha256
        path = self.path_for(digest)
        if not path.exists() or file_sha256(path) != digest:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(upload.path, 0o644)
            os.replace(upload.path, path)
            upload.kept = True
            fsync_dir(path.parent)
        self._record(digest, name, upload.size, x, y)
        return digest

    def _record(self, digest: str, name: str, size: int, x: np.ndarray, y: np.ndarray) -> None:
        if self._store is not None:
            self._store.put_dataset(
                digest,
                name=name,
                size_bytes=size,
                num_samples=int(x.shape[0]),
                x_shape=list(x.shape[1:]),
                y_shape=list(y.shape[1:]),
                x_dtype=str(x.dtype),
                y_dtype=str(y.dtype),
            )

    def put_arrays(self, x: np.ndarray, y: np.ndarray, name: str = "") -> str:
        return self.put(npz_bytes(np.asarray(x), np.asarray(y)), name=name)

    def read_bytes(self, digest: str) -> bytes:
        """The stored npz bytes, verified against their name."""
        path = self.path_for(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DatasetError(f"no dataset with sha256 {digest}") from None
        if sha256_hex(data) != digest:
            raise DatasetError(f"dataset {digest} is corrupt on disk (sha256 mismatch)")
        return data

    def sha256_of(self, ref: str) -> str:
        """The sha256 workers fetch `ref` by; built-in datasets are stored as npz on first use."""
        kind, rest = parse_dataset_ref(ref)
        if kind == "sha256":
            return rest
        with self._lock:
            known = self._builtin_sha.get(ref)
        if known is None:
            ds = self.resolve(ref)
            known = self.put_arrays(ds.x, ds.y, name=ref)
            with self._lock:
                self._builtin_sha[ref] = known
        return known

    def exists(self, ref: str) -> bool:
        kind, rest = parse_dataset_ref(ref)
        return kind != "sha256" or self.path_for(rest).exists()

    def resolve(self, ref: str) -> Dataset:
        with self._lock:
            hit = self._cache.get(ref)
            if hit is not None:
                self._cache.move_to_end(ref)
                return hit
        kind, rest = parse_dataset_ref(ref)
        if kind == "digits":
            x, y = digits(rest)
        elif kind == "synthetic":
            try:
                x, y = synthetic(rest)
            except ValueError as exc:
                raise DatasetError(str(exc)) from None
        else:
            x, y = arrays_from_npz(self.read_bytes(rest))
        x.setflags(write=False)
        y.setflags(write=False)
        ds = Dataset(ref, x, y)
        with self._lock:
            self._cache[ref] = ds
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return ds
