"""The worker's dataset cache: datasets fetched by sha256 and kept on local disk.

A job names its dataset by the sha256 of the dataset's .npz bytes. The worker downloads it
from the coordinator once, checks the bytes against the name before keeping them (a damaged
or substituted download is refused), and serves every later job from the cached file. Arrays
are read with allow_pickle=False: nothing from the network is ever unpickled.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DatasetUnavailable(ValueError):
    """A dataset that cannot be had: bad name, download refused, bytes that do not match."""


def check_sha256(name: str) -> str:
    if not isinstance(name, str) or not _SHA256.match(name):
        raise DatasetUnavailable(
            f"dataset name must be a sha256 of 64 lowercase hex digits, got {name!r}"
        )
    return name


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "shardgrad" / "datasets"


def load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetUnavailable(f"{path.name} is not a readable .npz: {exc}") from None


class DatasetCache:
    """Datasets on disk under `root/<sha256>.npz`, the last few loaded kept in memory."""

    def __init__(self, root: str | os.PathLike | None = None, keep_loaded: int = 4) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._loaded: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._keep = keep_loaded
        self._lock = threading.Lock()

    def path(self, sha256: str) -> Path:
        return self.root / f"{check_sha256(sha256)}.npz"

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def store(self, sha256: str, chunks: Iterable) -> Path:
        """Write downloaded bytes, keeping them only if they hash to `sha256`."""
        final = self.path(sha256)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}.part")
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    digest.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            got = digest.hexdigest()
            if got != sha256:
                raise DatasetUnavailable(f"downloaded dataset hashes to {got}, expected {sha256}")
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return final

    def load(self, sha256: str) -> dict[str, np.ndarray]:
        """The arrays of a cached dataset, re-hashed when first read from disk."""
        with self._lock:
            if sha256 in self._loaded:
                self._loaded.move_to_end(sha256)
                return self._loaded[sha256]
        path = self.path(sha256)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != sha256:
            path.unlink(missing_ok=True)
            raise DatasetUnavailable(f"cached dataset {sha256} was damaged on disk; fetch again")
        arrays = load_npz(path)
        with self._lock:
            self._loaded[sha256] = arrays
            while len(self._loaded) > self._keep:
                self._loaded.popitem(last=False)
        return arrays

    def get(
        self, sha256: str, fetch: Callable[[str], Iterable] | None = None
    ) -> dict[str, np.ndarray]:
        """The dataset's arrays, downloading it with `fetch(sha256)` (chunks) if not cached."""
        check_sha256(sha256)
        if not self.has(sha256):
            if fetch is None:
                raise DatasetUnavailable(f"dataset {sha256} is not cached and cannot be fetched")
            self.store(sha256, fetch(sha256))
        return self.load(sha256)
