"""`shardgrad.client.Client`: submit jobs to a coordinator and follow them from Python.

    from shardgrad import nn, optim
    from shardgrad.client import Client

    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    client = Client("127.0.0.1:7070")    # or Client() next to `shardgrad serve`
    job = client.submit(model, dataset="digits", loss=nn.CrossEntropyLoss(),
                        optimizer=optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                        batch_size=64, epochs=3, workers=4, seed=0)
    job.wait()                  # a progress bar with step, loss, samples/s, time left
    trained = job.model()       # an nn.Module with the trained weights

Everything the coordinator refuses raises a ShardgradError subclass carrying its message.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from shardgrad.protos import coordinator_pb2

from . import convert
from .connection import Connection
from .datasets import DatasetInfo, encode_npz, sha256_hex, upload_requests
from .errors import UnavailableError
from .events import READ_DEFAULT, EventFollower, read_events
from .jobs import Job
from .progress import byte_bar
from .records import Event, JobStatus, ScaleResult, WorkerInfo, job_state_value

# Job options `submit` passes through to the coordinator's configuration as they are.
CONFIG_OPTIONS = (
    "micro_shards",
    "min_workers",
    "max_workers",
    "checkpoint_interval",
    "keep_checkpoints",
    "eval_fraction",
    "eval_interval",
    "eval_metrics",
    "skip_nonfinite",
    "compression",
    "dtype",
)


class Client:
    """A connection to one coordinator.

    `address` is `host:port`; without it, `SHARDGRAD_ADDRESS`, else the address a coordinator
    on this machine wrote into its state directory (`state_dir`, `SHARDGRAD_STATE_DIR` or
    `~/.shardgrad`). The token is `token`, else `SHARDGRAD_TOKEN`, else `token_file`, else
    the state directory's token file. `tls_ca` (a PEM file or bytes, or True for the
    system's roots) turns on TLS. `dashboard` (`http://HOST:PORT`, else
    `SHARDGRAD_DASHBOARD`) is the coordinator's dashboard, which `Job.checkpoints()` reads
    only from a coordinator too old to list checkpoints over gRPC.
    """

    def __init__(
        self,
        address: str | None = None,
        token: str | None = None,
        tls_ca: str | os.PathLike | bytes | bool | None = None,
        *,
        timeout: float = 30.0,
        token_file: str | os.PathLike | None = None,
        state_dir: str | os.PathLike | None = None,
        dashboard: str | None = None,
    ) -> None:
        self._conn = Connection(
            address,
            token,
            tls_ca,
            timeout=timeout,
            token_file=token_file,
            state_dir=state_dir,
            dashboard=dashboard,
        )

    @property
    def address(self) -> str:
        return self._conn.address

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.address!r})"

    # ------------------------------------------------------------------ datasets
    def upload_dataset(
        self,
        X,
        y,
        name: str = "",
        progress: bool = True,
        retries: int = 3,
        file: IO[str] | None = None,
    ) -> DatasetInfo:
        """Store arrays `X` (inputs) and `y` (targets) on the coordinator; return its info.

        The arrays are packed into canonical .npz bytes and named by their sha256: when the
        coordinator already holds that hash nothing is sent, and an interrupted transfer is
        sent again (up to `retries` times) under the same name.
        """
        data = encode_npz(X, y)
        return self.upload_npz_bytes(data, name, progress, retries, file)

    def upload_npz_bytes(
        self,
        data: bytes,
        name: str = "",
        progress: bool = True,
        retries: int = 3,
        file: IO[str] | None = None,
    ) -> DatasetInfo:
        """Upload .npz bytes as they are (arrays `x` and `y`); see `upload_dataset`."""
        digest = sha256_hex(data)
        known = self._find_dataset(digest)
        if known is not None:
            return known
        for attempt in range(retries + 1):
            bar = byte_bar(len(data), f"upload {name or digest[:12]}", progress, file)
            try:
                reply = self._conn.stream_in(
                    "UploadDataset", upload_requests(data, name, digest, on_chunk=bar.update)
                )
                return DatasetInfo.from_proto(reply)
            except UnavailableError:
                if attempt == retries:
                    raise
                known = self._find_dataset(digest)  # the bytes may have landed after all
                if known is not None:
                    return known
            finally:
                bar.close()
        raise AssertionError("unreachable")

    def _find_dataset(self, sha256: str) -> DatasetInfo | None:
        for info in self.datasets():
            if info.sha256 == sha256:
                return info
        return None

    def datasets(self) -> list[DatasetInfo]:
        reply = self._conn.call("ListDatasets", coordinator_pb2.ListDatasetsRequest())
        return [DatasetInfo.from_proto(d) for d in reply.datasets]

    def _dataset_ref(self, dataset: Any, progress: bool) -> str:
        if isinstance(dataset, DatasetInfo):
            return dataset.sha256
        if isinstance(dataset, os.PathLike) or (
            isinstance(dataset, str) and dataset.endswith(".npz") and Path(dataset).is_file()
        ):
            with np.load(dataset, allow_pickle=False) as z:
                missing = {"x", "y"} - set(z.files)
                if missing:
                    raise ValueError(f"{dataset} needs arrays 'x' and 'y'; has {z.files}")
                x, y = z["x"], z["y"]
            return self.upload_dataset(x, y, name=Path(dataset).stem, progress=progress).sha256
        if isinstance(dataset, str):
            return dataset
        if isinstance(dataset, dict):
            return self.upload_dataset(dataset["x"], dataset["y"], progress=progress).sha256
        if isinstance(dataset, (tuple, list)) and len(dataset) == 2:
            return self.upload_dataset(dataset[0], dataset[1], progress=progress).sha256
        raise TypeError(
            "dataset must be a name ('digits', 'synthetic:...', a sha256), a DatasetInfo, a "
            f"path to an .npz file, or a pair (X, y); got {type(dataset).__name__}"
        )

    # ------------------------------------------------------------------ jobs
    def build_config(
        self,
        model,
        dataset,
        loss: Any = "CrossEntropyLoss",
        optimizer: Any = None,
        batch_size: int = 32,
        epochs: int | None = None,
        steps: int | None = None,
        workers: int | Sequence[int] | None = None,
        seed: int = 0,
        lr_scheduler: Any = None,
        name: str = "",
        progress: bool = True,
        **options,
    ) -> tuple[dict, bytes | None]:
        """The job configuration `submit` would send, and the model's starting weights.

        Datasets given as arrays or files are uploaded here, since the configuration names
        them by hash.
        """
        unknown = set(options) - set(CONFIG_OPTIONS)
        if unknown:
            raise TypeError(
                f"unknown job option(s) {sorted(unknown)}; known: {list(CONFIG_OPTIONS)}"
            )
        if (epochs is None) == (steps is None):
            raise ValueError("give exactly one of 'epochs' and 'steps'")
        source, weights, dtype = convert.model_source(model)
        config: dict[str, Any] = {
            "name": name,
            "model": source,
            "loss": convert.loss_config(loss),
            "batch_size": batch_size,
            "seed": seed,
            "dtype": dtype,
        }
        if epochs is not None:
            config["epochs"] = epochs
        if steps is not None:
            config["steps"] = steps
        if optimizer is not None:
            config["optimizer"] = convert.optimizer_config(optimizer)
        scheduler = convert.scheduler_config(lr_scheduler)
        if scheduler is not None:
            config["lr_scheduler"] = scheduler
        if workers is not None:
            if isinstance(workers, int):
                config["max_workers"] = workers
            else:
                lo, hi = workers
                config["min_workers"], config["max_workers"] = lo, hi
        config.update(options)
        config["dataset"] = self._dataset_ref(dataset, progress)
        return config, weights

    def submit(
        self,
        model,
        dataset,
        loss: Any = "CrossEntropyLoss",
        optimizer: Any = None,
        batch_size: int = 32,
        epochs: int | None = None,
        steps: int | None = None,
        workers: int | Sequence[int] | None = None,
        seed: int = 0,
        lr_scheduler: Any = None,
        name: str = "",
        progress: bool = True,
        **options,
    ) -> Job:
        """Submit a training job and return its handle; it starts as soon as workers allow.

        `model`: an `nn.Module` (its spec and current weights travel), a spec dict or an
        import path. `dataset`: 'digits', 'synthetic:<kind>:<k=v,...>', a sha256 or
        DatasetInfo of an upload, a `.npz` path, or a pair `(X, y)` (uploaded first).
        `loss`, `optimizer`, `lr_scheduler`: core objects, names or `{"name", "kwargs"}`
        dicts (optimizer default: SGD with lr 0.1). Exactly one of `epochs` and `steps`.
        `workers`: the most workers the job uses, or `(min, max)`. Further options
        (`micro_shards`, `checkpoint_interval`, `eval_fraction`, ...) go into the job's
        configuration as they are.
        """
        config, weights = self.build_config(
            model,
            dataset,
            loss=loss,
            optimizer=optimizer,
            batch_size=batch_size,
            epochs=epochs,
            steps=steps,
            workers=workers,
            seed=seed,
            lr_scheduler=lr_scheduler,
            name=name,
            progress=progress,
            **options,
        )
        return self.submit_config(config, weights)

    def submit_config(self, config: dict, initial_weights: bytes | None = None) -> Job:
        """Submit a job configuration as the coordinator reads it (JSON-able dict)."""
        req = coordinator_pb2.SubmitJobRequest(
            config_json=json.dumps(config, allow_nan=False), initial_weights=initial_weights or b""
        )
        reply = self._conn.call("SubmitJob", req, timeout=max(self._conn.timeout, 60.0))
        status = JobStatus.from_proto(reply)
        return Job(self._conn, status.job_id, status)

    def job(self, job_id: str) -> Job:
        """The job with this id; NotFoundError if there is none."""
        job = Job(self._conn, job_id)
        job.status()
        return job

    def delete_job(self, job_id: str) -> int:
        """Delete an ended job (see `Job.delete`); returns the bytes freed on disk."""
        return Job(self._conn, job_id).delete()

    def jobs(self, state: str | Sequence[str] | None = None, limit: int = 0) -> list[Job]:
        """Every job (or those in `state`, one name or several), oldest first."""
        states = [state] if isinstance(state, str) else list(state or ())
        req = coordinator_pb2.ListJobsRequest(
            states=[job_state_value(s) for s in states], limit=limit
        )
        reply = self._conn.call("ListJobs", req)
        out = []
        for m in reply.jobs:
            status = JobStatus.from_proto(m)
            out.append(Job(self._conn, status.job_id, status))
        return out

    # ------------------------------------------------------------------ events
    def events(
        self,
        job_id: str | None = None,
        kinds: str | Sequence[str] | None = None,
        after_id: int = 0,
        limit: int = READ_DEFAULT,
        newest_first: bool = False,
    ) -> list[Event]:
        """The coordinator's event log: jobs submitted, started, ended; workers joining,
        dropped, lost; micro-shards recomputed; checkpoints written or not; steps skipped.

        Oldest first, the first `limit` (at most 1000) with ids above `after_id`: pass the
        last id seen to page through the log without a gap. `newest_first` gives the newest
        `limit` instead, newest first. `job_id` keeps one job's events (a deleted job's stay
        until they age out), `kinds` only those kinds ("worker_dropped", ...).
        """
        return read_events(self._conn, job_id, kinds, after_id, limit, newest_first)

    def follow_events(
        self,
        job_id: str | None = None,
        kinds: str | Sequence[str] | None = None,
        after_id: int = 0,
        poll_interval: float = 1.0,
    ) -> Iterator[Event]:
        """Events as they are written, oldest first, from `after_id` on (0: the whole log
        the coordinator keeps), asking for new ones every `poll_interval` seconds. With
        `job_id`, ends once that job has ended and its last events are read; else runs
        until the caller stops iterating."""
        follower = EventFollower(self._conn, job_id, kinds, after_id)
        while True:
            yield from follower.poll()
            if follower.done:
                return
            time.sleep(poll_interval)

    # ------------------------------------------------------------------ workers
    def workers(self) -> list[WorkerInfo]:
        reply = self._conn.call("ListWorkers", coordinator_pb2.ListWorkersRequest())
        return [WorkerInfo.from_proto(w) for w in reply.workers]

    def scale(self, n: int, pool: str | None = None) -> ScaleResult:
        """Ask the pool (default: the coordinator's) for `n` workers; takes effect at the next
        step of every job."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"worker count must be an integer >= 0, got {n!r}")
        reply = self._conn.call(
            "ScaleWorkers", coordinator_pb2.ScaleWorkersRequest(pool=pool or "", count=n)
        )
        return ScaleResult(int(reply.count), [WorkerInfo.from_proto(w) for w in reply.workers])
