"""A handle on one job: its status, its metrics, waiting for it, stopping it, its model.

The handle holds only the job's id and the client's connection; every method asks the
coordinator, so handles are cheap and never stale. `wait()` follows the metrics stream and
reconnects from the last step it saw if the stream breaks (a coordinator restart), so a long
wait survives what the job itself survives.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from shardgrad.protos import coordinator_pb2

from .connection import Connection
from .errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    JobFailedError,
    ResourceExhaustedError,
    ShardgradError,
    UnavailableError,
    UnimplementedError,
)
from .progress import JobProgress
from .records import JobStatus, ModelInfo, merge_by_step, metric_record

_RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)


class Job:
    """A submitted job. Get one from `Client.submit`, `Client.job(id)` or `Client.jobs()`."""

    def __init__(self, conn: Connection, job_id: str, status: JobStatus | None = None) -> None:
        self._conn = conn
        self.id = job_id
        self._last = status

    def __repr__(self) -> str:
        state = f" {self._last.state}" if self._last is not None else ""
        return f"<Job {self.id}{state}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # ------------------------------------------------------------------ status
    def status(self) -> JobStatus:
        """The job's current status, asked of the coordinator."""
        reply = self._conn.call("GetJob", coordinator_pb2.GetJobRequest(job_id=self.id))
        self._last = JobStatus.from_proto(reply)
        return self._last

    @property
    def last_status(self) -> JobStatus | None:
        """The status from the last call that fetched one, without asking again."""
        return self._last

    @property
    def state(self) -> str:
        return self.status().state

    @property
    def config(self) -> dict:
        """The validated configuration, with every default filled in."""
        return (self._last or self.status()).config

    def stop(self) -> JobStatus:
        """Ask the job to stop: it checkpoints and ends STOPPED. An ended job is unchanged."""
        reply = self._conn.call("StopJob", coordinator_pb2.StopJobRequest(job_id=self.id))
        self._last = JobStatus.from_proto(reply)
        return self._last

    # ------------------------------------------------------------------ metrics
    def open_metrics(
        self, from_step: int = 0, follow: bool = True, timeout: float | None = None
    ) -> MetricsStream:
        """Metric records from `from_step` on as an iterator that `cancel()` ends from any
        thread; with `follow`, it runs until the job ends."""
        req = coordinator_pb2.StreamMetricsRequest(
            job_id=self.id, from_step=max(0, int(from_step)), follow=follow
        )
        return MetricsStream(self._conn, req, timeout)

    def stream_metrics(
        self, from_step: int = 0, follow: bool = True, timeout: float | None = None
    ) -> Iterator[dict]:
        """Metric records from `from_step` on; with `follow`, until the job ends."""
        stream = self.open_metrics(from_step, follow, timeout)
        try:
            yield from stream
        finally:
            stream.cancel()

    def metrics(self, as_frame: bool | None = None):
        """The job's metric history, one row per step (step, loss, lr, samples_per_second,
        step_seconds, workers, ..., and `eval_*` values at the steps that were evaluated):
        a pandas DataFrame when pandas is installed (unless `as_frame=False`), else a list
        of dicts."""
        events = list(self.stream_metrics(follow=False, timeout=self._conn.timeout * 4))
        records = merge_by_step(events)
        if as_frame is False:
            return records
        try:
            import pandas as pd  # noqa: PLC0415
        except ImportError:
            if as_frame:
                raise
            return records
        return pd.DataFrame.from_records(records)

    # ------------------------------------------------------------------ waiting
    def wait(
        self,
        progress: bool = True,
        timeout: float | None = None,
        raise_on_failure: bool = True,
        file: IO[str] | None = None,
    ) -> JobStatus:
        """Block until the job ends and return its final status.

        With `progress`, shows a bar with the step, loss, samples/s and time left, driven by
        the metrics stream. Raises JobFailedError (with the job's error) when it ends FAILED
        and `raise_on_failure`, and DeadlineExceededError when `timeout` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        status = self.status()
        bar = JobProgress(
            self.id,
            status.total_steps,
            initial=status.step,
            name=status.name,
            enabled=progress and not status.done,
            file=file,
        )
        last_step = status.step
        failures = 0
        try:
            while not status.done:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise DeadlineExceededError(
                        f"job {self.id} is still {status.state} at step {status.step} "
                        f"after {timeout:g} s"
                    )
                try:
                    for rec in self.stream_metrics(last_step + 1, follow=True, timeout=left):
                        failures = 0
                        if rec["step"] > last_step:
                            last_step = rec["step"]
                        bar.update(rec)
                    status = self.status()
                except DeadlineExceededError:
                    continue  # the loop's own check reports it with the job's state
                except ResourceExhaustedError:
                    # The coordinator follows only so many streams at once: poll instead.
                    time.sleep(1.0 if deadline is None else min(1.0, max(0.0, left or 0.0)))
                    status = self.status()
                    bar.update({"step": status.step, "loss": status.last_loss})
                    continue
                except UnavailableError:
                    # A coordinator restart: try again from the last step seen.
                    delay = _RECONNECT_DELAYS[min(failures, len(_RECONNECT_DELAYS) - 1)]
                    failures += 1
                    if deadline is not None:
                        delay = min(delay, max(0.0, deadline - time.monotonic()))
                    time.sleep(delay)
                    try:
                        status = self.status()
                    except UnavailableError:
                        pass
                    continue
                bar.set_total(status.total_steps)
                if not status.done:
                    # The stream ended with the job still going (the coordinator let go of
                    # it); follow again after a moment.
                    time.sleep(0.2)
                    status = self.status()
            bar.update({"step": status.step})
        finally:
            bar.finish(status.state)
        if status.state == "FAILED" and raise_on_failure:
            raise JobFailedError(f"job {self.id} failed: {status.error}", status=status)
        return status

    def checkpoints(self) -> list[dict]:
        """The job's checkpoints on the coordinator, newest first: `step`, `file` (its name),
        `bytes`, `time` (Unix seconds) and `sha256` (of the file's bytes).

        A coordinator older than ListCheckpoints is asked through its dashboard JSON API
        instead (see the client's `dashboard` argument), which gives no `sha256`."""
        req = coordinator_pb2.ListCheckpointsRequest(job_id=self.id)
        try:
            reply = self._conn.call("ListCheckpoints", req)
        except UnimplementedError:
            from urllib.parse import quote  # noqa: PLC0415

            found = self._conn.get_json(f"/api/v1/jobs/{quote(self.id, safe='')}/checkpoints")
            return list(found.get("checkpoints", []))
        return [
            {
                "step": int(c.step),
                "file": c.name,
                "bytes": int(c.bytes),
                "time": c.created_unix,
                "sha256": c.sha256,
            }
            for c in reply.checkpoints
        ]

    def delete(self) -> int:
        """Delete the ended job on the coordinator: its record, metrics, checkpoints and
        trained model. Returns the bytes freed on disk. A pending or running job raises
        FailedPreconditionError (stop it first); the handle is useless afterwards."""
        reply = self._conn.call("DeleteJob", coordinator_pb2.DeleteJobRequest(job_id=self.id))
        self._last = None
        return int(reply.freed_bytes)

    # ------------------------------------------------------------------ the model
    def model_bytes(self, timeout: float | None = None) -> tuple[ModelInfo, bytes]:
        """The trained state_dict as safetensors bytes, and what model it belongs to."""
        req = coordinator_pb2.FetchModelRequest(job_id=self.id)
        stream = self._conn.stream("FetchModel", req, timeout=timeout or self._conn.timeout * 10)
        info = None
        buf = bytearray()
        for part in stream:
            which = part.WhichOneof("part")
            if which == "info":
                m = part.info
                try:
                    model = json.loads(m.model_json) if m.model_json else {}
                except ValueError:
                    raise ShardgradError("the coordinator sent an unreadable model") from None
                info = ModelInfo(m.job_id, int(m.step), model, int(m.nbytes))
                buf = bytearray()
            elif which == "chunk":
                if info is None:
                    raise ShardgradError("the coordinator sent model bytes before their header")
                if part.chunk.offset != len(buf):
                    raise ShardgradError(
                        f"model bytes out of order: offset {part.chunk.offset}, have {len(buf)}"
                    )
                buf += part.chunk.data
        if info is None:
            raise FailedPreconditionError(f"job {self.id} has no model to fetch")
        if len(buf) != info.nbytes:
            raise ShardgradError(f"model transfer incomplete: {len(buf)} of {info.nbytes} bytes")
        return info, bytes(buf)

    def model(self, allowed_prefixes: list[str] | None = None):
        """The trained model as an `nn.Module` with the job's final weights.

        A user's own Module class is imported by its path, so it must be importable here;
        `allowed_prefixes` limits which packages that may be (None: any).
        """
        from shardgrad import nn  # noqa: PLC0415
        from shardgrad.serialization import load_safetensors_bytes  # noqa: PLC0415

        info, data = self.model_bytes()
        module = build_module(info.model, allowed_prefixes)
        state = load_safetensors_bytes(data)
        dtypes = {str(v.dtype) for v in state.values() if v.is_floating_point()}
        if dtypes == {"shardgrad.float64"}:
            module.double()
        module.load_state_dict(state)
        if not isinstance(module, nn.Module):  # pragma: no cover - from_spec returns Modules
            raise TypeError("the model source did not build a Module")
        return module

    def download(self, path: str | Path) -> ModelInfo:
        """Write the trained state_dict to `path` (safetensors) and the model source to
        `path` with `.json` appended, and return what was written."""
        info, data = self.model_bytes()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        meta = {"job_id": info.job_id, "step": info.step, "model": info.model}
        Path(f"{path}.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return info


class MetricsStream:
    """An open metrics stream: iterate for records, `cancel()` to end it early.

    It asks for the events in batches (StreamMetricsBatches: a long history is a few messages,
    which costs the coordinator far less), and one by one (StreamMetrics) from a coordinator
    too old to batch them.
    """

    def __init__(self, conn, request, timeout: float | None) -> None:
        self._conn, self._request, self._timeout = conn, request, timeout
        self._lock = threading.Lock()
        self._cancelled = False
        self._stream = conn.stream("StreamMetricsBatches", request, timeout=timeout)

    def __iter__(self) -> Iterator[dict]:
        try:
            for batch in self._stream:
                for event in batch.events:
                    yield metric_record(event)
        except UnimplementedError:
            with self._lock:
                if self._cancelled:
                    return
                self._stream = self._conn.stream(
                    "StreamMetrics", self._request, timeout=self._timeout
                )
            for event in self._stream:
                yield metric_record(event)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            self._stream.cancel()


def build_module(source: dict[str, Any], allowed_prefixes: list[str] | None = None):
    """A fresh Module from a model source `{"spec": ...}` or `{"import_path": ..., ...}`."""
    from shardgrad import nn  # noqa: PLC0415

    if "spec" in source and source["spec"] is not None:
        return nn.from_spec(source["spec"], allowed_prefixes=allowed_prefixes)
    if source.get("import_path"):
        spec = {"import": source["import_path"], "kwargs": source.get("kwargs") or {}}
        return nn.from_spec(spec, allowed_prefixes=allowed_prefixes)
    raise ShardgradError(f"unknown model source {sorted(source)}")
