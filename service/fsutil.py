"""Crash-safe file writes: a reader sees the old file or the new one, never half of one.

A write that dies (a crash, a kill) leaves its temp file behind. Temp files made with
`create_temp` carry a lock (flock) for as long as their writer has them open, and the kernel
drops it when the writer dies, so `remove_stale_temps` can remove the leftovers without ever
touching a write in progress, in this process or another.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to a temp file beside `path`, fsync it, rename over `path`, fsync the dir."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename in `path` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def create_temp(folder: str | os.PathLike, prefix: str, suffix: str = ".tmp") -> tuple[int, Path]:
    """A new empty file `<prefix><random><suffix>` in `folder`, open for reading and writing
    and locked until the returned descriptor is closed. Close it only after the file has been
    renamed into place or removed: the lock is what tells it from a leftover."""
    folder = Path(folder)
    while True:
        path = folder / f"{prefix}{secrets.token_hex(6)}{suffix}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # no locks on this file system: nothing removes the file either
            return fd, path
        if os.fstat(fd).st_nlink > 0:
            return fd, path
        # A sweep took the file for a leftover between its creation and the lock.
        os.close(fd)


def remove_stale_temps(folder: str | os.PathLike, is_temp: Callable[[str], bool]) -> list[str]:
    """Remove the files of `folder` whose names `is_temp` accepts and whose lock nobody holds
    (see `create_temp`); return their names. Files of writes in progress stay."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for name in sorted(filter(is_temp, names)):
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # gone already, a link, unreadable: not ours to judge
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # a writer holds it (or the file system has no locks)
                continue
            held = os.fstat(fd)
            try:
                named = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:  # renamed into place meanwhile
                continue
            if not stat.S_ISREG(held.st_mode) or (named.st_dev, named.st_ino) != (
                held.st_dev,
                held.st_ino,
            ):
                continue
            os.unlink(path)
            removed.append(name)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
    return removed
