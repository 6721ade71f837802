"""Checkpoints of a running job: safetensors files that survive crashes and detect damage.

A checkpoint holds everything needed to continue bit for bit: the flat parameter buffer, the
optimizer's and lr scheduler's state_dicts, the model's BatchNorm running statistics (when it
has any), the step and the sampler's position. It is written with `shardgrad.save` (so any
safetensors reader can open it) into a temp file that is fsynced and renamed into place, then
the folder is fsynced: a crash leaves the old checkpoint or the new one. A sha256 over the
content is stored inside; loading recomputes it, so a truncated or bit-flipped file is refused
and the next older checkpoint is used instead. A write that dies leaves only its temp file,
which goes the next time the folder is opened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import shardgrad

from .fsutil import create_temp, fsync_dir, remove_stale_temps

log = logging.getLogger(__name__)

FORMAT = "shardgrad.checkpoint/1"
_NAME = re.compile(r"^ckpt-(\d{12})\.safetensors$")
# The temp file of a write in progress: `.<final name>.<random hex>.tmp`.
_TEMP = re.compile(r"^\.ckpt-\d{12}\.safetensors\.[0-9a-f]+\.tmp$")


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be trusted."""


@dataclass
class Checkpoint:
    step: int
    params: np.ndarray
    optimizer: dict
    scheduler: dict | None
    meta: dict
    path: Path | None = None
    # The model's running-statistics buffers by state_dict name; None for a model without
    # them and for checkpoints written before they were kept.
    buffers: dict[str, np.ndarray] | None = None


def content_digest(obj: Any) -> str:
    """sha256 over a nested structure of arrays and JSON values, independent of file layout."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h, obj: Any) -> None:
    if isinstance(obj, shardgrad.Tensor):
        obj = obj.numpy(force=True) if hasattr(obj, "numpy") else np.asarray(obj)
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        h.update(f"A{arr.dtype.str}{list(arr.shape)}".encode())
        h.update(arr.reshape(-1).view(np.uint8).tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for key in sorted(obj, key=lambda k: (type(k).__name__, str(k))):
            h.update(f"K{type(key).__name__}:{key}".encode())
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
    else:
        h.update(b"J" + json.dumps(obj).encode())


def remove_stale_temps_in(folder: str | os.PathLike) -> list[str]:
    """Remove the temp files that interrupted checkpoint writes (a killed coordinator) left in
    `folder`; those of writes in progress stay. Returns the names removed."""
    removed = remove_stale_temps(folder, _TEMP.match)
    if removed:
        log.info("removed %d stale checkpoint temp file(s) in %s", len(removed), folder)
    return removed


class CheckpointManager:
    """The checkpoints of one job in one folder; keeps the newest `keep`.

    Opening the folder removes the temp files of interrupted writes (see `save`).
    """

    def __init__(self, folder: str | os.PathLike, keep: int = 3) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keep = max(1, int(keep))
        remove_stale_temps_in(self.folder)

    def path_for(self, step: int) -> Path:
        return self.folder / f"ckpt-{step:012d}.safetensors"

    def steps(self) -> list[int]:
        """Steps with a checkpoint file on disk, oldest first (damaged ones included)."""
        out = []
        for p in self.folder.iterdir():
            m = _NAME.match(p.name)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def save(
        self,
        step: int,
        params: np.ndarray,
        optimizer: dict,
        scheduler: dict | None = None,
        meta: dict | None = None,
        buffers: dict[str, np.ndarray] | None = None,
    ) -> Path:
        body = {
            "format": FORMAT,
            "step": int(step),
            "params": np.ascontiguousarray(params),
            "optimizer": optimizer,
            "scheduler": scheduler,
            "meta": meta or {},
        }
        if buffers is not None:
            # Only when there are any: a model without them writes the same file as before.
            # np.array keeps a 0-d count 0-d (ascontiguousarray would make it 1-d).
            body["buffers"] = {k: np.array(v, order="C") for k, v in buffers.items()}
        body["sha256"] = content_digest(body)
        path = self.path_for(step)
        # The temp file stays locked until it is renamed: a sweep never takes it for a
        # leftover while it is being written.
        fd, tmp = create_temp(self.folder, f".{path.name}.")
        try:
            with open(fd, "wb", closefd=False) as fh:
                shardgrad.save(body, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        fsync_dir(self.folder)
        self._prune()
        return path

    def _prune(self) -> None:
        for step in self.steps()[: -self.keep]:
            self.path_for(step).unlink(missing_ok=True)

    def load_file(self, path: str | os.PathLike) -> Checkpoint:
        """Load one checkpoint, raising CheckpointError unless it is complete and intact."""
        try:
            body = shardgrad.load(path)
        except (ValueError, TypeError, OSError) as exc:
            raise CheckpointError(f"{path}: unreadable: {exc}") from None
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not a {FORMAT} file")
        stored = body.pop("sha256", None)
        if stored != content_digest(body):
            raise CheckpointError(f"{path}: content does not match its sha256")
        params = body["params"]
        params = np.array(params.numpy() if isinstance(params, shardgrad.Tensor) else params)
        buffers = body.get("buffers")
        if buffers is not None:
            if not isinstance(buffers, dict):
                raise CheckpointError(f"{path}: buffers is not a mapping")
            buffers = {
                k: np.array(v.numpy() if isinstance(v, shardgrad.Tensor) else v)
                for k, v in buffers.items()
            }
        return Checkpoint(
            step=int(body["step"]),
            params=params,
            optimizer=body["optimizer"],
            scheduler=body["scheduler"],
            meta=body["meta"],
            path=Path(path),
            buffers=buffers,
        )

    def latest(self) -> Checkpoint | None:
        """The newest intact checkpoint; damaged newer ones are logged and skipped."""
        for step in reversed(self.steps()):
            path = self.path_for(step)
            try:
                return self.load_file(path)
            except CheckpointError as exc:
                log.warning("skipping damaged checkpoint: %s", exc)
        return None


@dataclass(frozen=True)
class CheckpointFile:
    """One checkpoint file as listed on disk, without reading it."""

    step: int
    path: Path
    bytes: int
    mtime: float


def list_checkpoint_files(folder: str | os.PathLike) -> list[CheckpointFile]:
    """The checkpoint files in `folder`, newest first.

    Unlike `CheckpointManager`, this never creates the folder, and a folder or file removed
    while it is being listed (a job deleted, an old checkpoint pruned) is simply left out:
    readers such as the dashboard and the API list jobs that may vanish under them.
    """
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for name in names:
        m = _NAME.match(name)
        if not m:
            continue
        path = Path(folder) / name
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        out.append(CheckpointFile(int(m.group(1)), path, st.st_size, st.st_mtime))
    out.sort(key=lambda f: f.step, reverse=True)
    return out


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks (checkpoints can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
