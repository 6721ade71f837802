"""Async variants of the client for asyncio programs (notebooks, web services).

Each call runs the blocking client's call in a worker thread (`asyncio.to_thread`), so the
two behave identically, errors included; the metrics stream is an async iterator fed from a
thread, and leaving the loop early cancels the stream. Following the event log polls from
the event loop, sleeping with `asyncio.sleep` between polls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence

from .events import READ_DEFAULT, EventFollower
from .jobs import Job
from .records import Event, JobStatus, ScaleResult, WorkerInfo
from .sdk import Client

_END = object()


class AsyncJob:
    """The async twin of `Job`."""

    def __init__(self, job: Job) -> None:
        self.sync = job
        self.id = job.id

    def __repr__(self) -> str:
        return f"<AsyncJob {self.id}>"

    async def status(self) -> JobStatus:
        return await asyncio.to_thread(self.sync.status)

    async def stop(self) -> JobStatus:
        return await asyncio.to_thread(self.sync.stop)

    async def checkpoints(self) -> list[dict]:
        return await asyncio.to_thread(self.sync.checkpoints)

    async def delete(self) -> int:
        return await asyncio.to_thread(self.sync.delete)

    async def wait(self, progress: bool = False, timeout: float | None = None, **kw) -> JobStatus:
        return await asyncio.to_thread(self.sync.wait, progress, timeout, **kw)

    async def metrics(self, as_frame: bool | None = None):
        return await asyncio.to_thread(self.sync.metrics, as_frame)

    async def model(self, allowed_prefixes: list[str] | None = None):
        return await asyncio.to_thread(self.sync.model, allowed_prefixes)

    async def stream_metrics(self, from_step: int = 0, follow: bool = True) -> AsyncIterator[dict]:
        """Metric records as they arrive; with `follow`, until the job ends."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stream = self.sync.open_metrics(from_step, follow)

        def pump() -> None:
            try:
                for rec in stream:
                    loop.call_soon_threadsafe(queue.put_nowait, rec)
                loop.call_soon_threadsafe(queue.put_nowait, _END)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        thread = threading.Thread(target=pump, name=f"sg-metrics-{self.id}", daemon=True)
        thread.start()
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stream.cancel()


class AsyncClient:
    """The async twin of `Client`; same arguments."""

    def __init__(self, *args, **kwargs) -> None:
        self.sync = Client(*args, **kwargs)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sync.close()

    async def submit(self, *args, **kwargs) -> AsyncJob:
        return AsyncJob(await asyncio.to_thread(self.sync.submit, *args, **kwargs))

    async def upload_dataset(self, X, y, name: str = "", progress: bool = False):
        return await asyncio.to_thread(self.sync.upload_dataset, X, y, name, progress)

    async def job(self, job_id: str) -> AsyncJob:
        return AsyncJob(await asyncio.to_thread(self.sync.job, job_id))

    async def jobs(self, state=None, limit: int = 0) -> list[AsyncJob]:
        return [AsyncJob(j) for j in await asyncio.to_thread(self.sync.jobs, state, limit)]

    async def delete_job(self, job_id: str) -> int:
        return await asyncio.to_thread(self.sync.delete_job, job_id)

    async def workers(self) -> list[WorkerInfo]:
        return await asyncio.to_thread(self.sync.workers)

    async def scale(self, n: int, pool: str | None = None) -> ScaleResult:
        return await asyncio.to_thread(self.sync.scale, n, pool)

    async def events(
        self,
        job_id: str | None = None,
        kinds: str | Sequence[str] | None = None,
        after_id: int = 0,
        limit: int = READ_DEFAULT,
        newest_first: bool = False,
    ) -> list[Event]:
        return await asyncio.to_thread(
            self.sync.events, job_id, kinds, after_id, limit, newest_first
        )

    async def follow_events(
        self,
        job_id: str | None = None,
        kinds: str | Sequence[str] | None = None,
        after_id: int = 0,
        poll_interval: float = 1.0,
    ) -> AsyncIterator[Event]:
        """Events as they are written (see `Client.follow_events`)."""
        follower = EventFollower(self.sync._conn, job_id, kinds, after_id)
        while True:
            for event in await asyncio.to_thread(follower.poll):
                yield event
            if follower.done:
                return
            await asyncio.sleep(poll_interval)
