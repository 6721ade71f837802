"""Shared-memory files for the step buffers of workers on the coordinator's own machine.

Sending a step's parameters to a worker and its gradients back costs two copies through a
socket (gRPC) or the object store (Ray) per worker per step, which on one machine is most of a
small model's step. A worker that shares the coordinator's /dev/shm can instead read the
parameters from, and write its gradient blocks into, files the coordinator maps too; the RPC
then carries only the step number and the micro-shards.

A `Segment` is one such file, mapped into this process. The coordinator creates every
segment (mode 0600, a random name, its pid in the name) and is the only one to unlink them;
workers attach by name. Whether a worker can attach is the test of "same machine": a worker on
another host, in a container with its own /dev/shm, or under another user, cannot open the
file, and the pool keeps using the wire for it.

Space is reserved with `posix_fallocate` when a segment is created, so a full /dev/shm is an
OSError at creation (and the pool falls back to the wire) rather than a SIGBUS mid-step.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import secrets
from pathlib import Path

import numpy as np

__all__ = [
    "PREFIX",
    "Attachments",
    "Segment",
    "SharedMemoryUnavailable",
    "can_attach",
    "remove_stale",
    "shm_dir",
]

PREFIX = "shardgrad-"
_NAME = re.compile(rf"^{PREFIX}(\d+)-[0-9a-f]{{16}}$")


class SharedMemoryUnavailable(OSError):
    """No usable shared-memory directory on this machine, or the segment cannot be opened."""


def shm_dir() -> Path | None:
    """The directory of POSIX shared memory (Linux: /dev/shm), or None where there is none."""
    path = Path(os.environ.get("SHARDGRAD_SHM_DIR", "/dev/shm"))
    if path.is_dir() and os.access(path, os.W_OK | os.X_OK):
        return path
    return None


def _path(name: str) -> Path:
    if not _NAME.match(name):
        raise SharedMemoryUnavailable(f"{name!r} is not a shardgrad shared-memory segment name")
    base = shm_dir()
    if base is None:
        raise SharedMemoryUnavailable("this machine has no shared-memory directory")
    return base / name


class Segment:
    """One mapped shared-memory file of `nbytes` bytes."""

    def __init__(self, name: str, nbytes: int, mapping: mmap.mmap, owner: bool) -> None:
        self.name, self.nbytes, self.owner = name, nbytes, owner
        self._map: mmap.mmap | None = mapping

    @classmethod
    def create(cls, nbytes: int) -> Segment:
        """A new zero-filled segment owned by this process. OSError when there is no room."""
        if nbytes <= 0:
            raise ValueError(f"a segment needs a positive size, got {nbytes}")
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
        path = _path(name)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.posix_fallocate(fd, 0, nbytes)  # ENOSPC now rather than SIGBUS later
            mapping = mmap.mmap(fd, nbytes)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        os.close(fd)
        return cls(name, nbytes, mapping, owner=True)

    @classmethod
    def attach(cls, name: str, nbytes: int, writable: bool = False) -> Segment:
        """Map an existing segment; SharedMemoryUnavailable when it is not here or too small."""
        path = _path(name)
        try:
            fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        except OSError as exc:
            raise SharedMemoryUnavailable(f"cannot open shared memory {name}: {exc}") from None
        try:
            size = os.fstat(fd).st_size
            if size < nbytes:
                raise SharedMemoryUnavailable(
                    f"shared memory {name} holds {size} bytes, {nbytes} were announced"
                )
            access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
            mapping = mmap.mmap(fd, nbytes, access=access)
        finally:
            os.close(fd)
        return cls(name, nbytes, mapping, owner=False)

    def array(self, dtype, count: int, offset: int = 0) -> np.ndarray:
        """A numpy view of `count` elements of `dtype` from byte `offset` (no copy)."""
        if self._map is None:
            raise ValueError(f"shared memory {self.name} is closed")
        dtype = np.dtype(dtype)
        if offset < 0 or offset + count * dtype.itemsize > self.nbytes:
            raise ValueError(
                f"{count} x {dtype} at byte {offset} runs past shared memory {self.name} "
                f"({self.nbytes} bytes)"
            )
        return np.frombuffer(self._map, dtype=dtype, count=count, offset=offset)

    def close(self) -> None:
        """Unmap; the owner also removes the file. Views still alive keep the pages mapped
        (numpy holds the buffer) until they go; the name is gone at once."""
        if self.owner:
            with contextlib.suppress(OSError):
                _path(self.name).unlink(missing_ok=True)
        mapping, self._map = self._map, None
        if mapping is not None:
            with contextlib.suppress(BufferError):  # a live view: unmapped when it is freed
                mapping.close()

    def __enter__(self) -> Segment:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Segment({self.name!r}, {self.nbytes} bytes{', owner' if self.owner else ''})"


def remove_stale() -> list[str]:
    """Remove segments left by shardgrad processes that are gone (killed before they could
    clean up). Returns the names removed."""
    base = shm_dir()
    if base is None:
        return []
    removed = []
    for entry in base.iterdir():
        m = _NAME.match(entry.name)
        if m is None or process_alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            entry.unlink()
            removed.append(entry.name)
    return removed


def process_alive(pid: int) -> bool:
    """Whether `pid` names a running process (of any user): what is left by a dead one is
    stale."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class Attachments:
    """The segments a worker has attached for one job, by role ("params", "grads").

    The coordinator names the same segments step after step, so each is mapped once and kept;
    a new name (the coordinator grew or replaced a segment) replaces the old mapping.
    """

    def __init__(self) -> None:
        self._held: dict[str, Segment] = {}

    def get(self, role: str, name: str, nbytes: int, writable: bool = False) -> Segment:
        held = self._held.get(role)
        if held is not None and held.name == name and held.nbytes >= nbytes:
            return held
        segment = Segment.attach(name, nbytes, writable=writable)
        if held is not None:
            held.close()
        self._held[role] = segment
        return segment

    def close(self) -> None:
        for segment in self._held.values():
            segment.close()
        self._held.clear()


def can_attach(name: str) -> bool:
    """Whether this process can map the coordinator's probe segment `name` (same machine)."""
    if not name:
        return False
    try:
        Segment.attach(name, 1).close()
    except (OSError, ValueError):
        return False
    return True
