"""Reading the coordinator's event log, once or as it grows.

The log is a table the coordinator appends to, read by id: `read_events` asks ListEvents for
one page, and `EventFollower` polls for whatever came after the last id it saw. Following
one job ends once the job has ended and its last events are read, as following its metrics
does.
"""

from __future__ import annotations

from collections.abc import Sequence

from shardgrad.protos import coordinator_pb2

from .connection import Connection
from .errors import NotFoundError
from .records import TERMINAL_STATES, Event, job_state_name

# The coordinator's page sizes: answered when `limit` is 0, and the most one call returns.
READ_DEFAULT = 200
READ_MAX = 1000


def _kinds(kinds: str | Sequence[str] | None) -> list[str]:
    if kinds is None:
        return []
    if isinstance(kinds, str):
        return [kinds]
    return [str(k) for k in kinds]


def read_events(
    conn: Connection,
    job_id: str | None = None,
    kinds: str | Sequence[str] | None = None,
    after_id: int = 0,
    limit: int = READ_DEFAULT,
    newest_first: bool = False,
) -> list[Event]:
    """One ListEvents call: the coordinator checks every argument (InvalidArgumentError)."""
    req = coordinator_pb2.ListEventsRequest(
        job_id=job_id or "",
        kinds=_kinds(kinds),
        after_id=int(after_id),
        limit=int(limit),
        newest_first=newest_first,
    )
    reply = conn.call("ListEvents", req)
    return [Event.from_proto(e) for e in reply.events]


class EventFollower:
    """Where a reader following the log stands: the last id read, and whether the job it
    follows (if any) has ended with nothing more to read."""

    def __init__(
        self,
        conn: Connection,
        job_id: str | None = None,
        kinds: str | Sequence[str] | None = None,
        after_id: int = 0,
    ) -> None:
        self.conn = conn
        self.job_id = job_id
        self.kinds = _kinds(kinds)
        self.after_id = int(after_id)
        self.done = False
        self._ended_before = False

    def poll(self) -> list[Event]:
        """Every event written since the last poll, oldest first, in as many pages as it
        takes; sets `done` once the followed job's story is complete."""
        # The job's state is read before its events: a job writes its ending event just
        # after its final state, so only a read that began after the state was seen final
        # is sure to hold it.
        ended = self.job_id is not None and self._job_ended()
        found: list[Event] = []
        while True:
            page = read_events(self.conn, self.job_id, self.kinds, self.after_id, READ_MAX)
            found.extend(page)
            if page:
                self.after_id = page[-1].id
            if len(page) < READ_MAX:
                break
        if ended:
            self.done = self._ended_before or any(
                e.kind in ("job_succeeded", "job_failed", "job_stopped", "job_deleted")
                for e in found
            )
            self._ended_before = True
        return found

    def _job_ended(self) -> bool:
        req = coordinator_pb2.GetJobRequest(job_id=self.job_id)
        try:
            reply = self.conn.call("GetJob", req)
        except NotFoundError:
            return True  # deleted: its events stay readable, and no more will come
        return job_state_name(reply.state) in TERMINAL_STATES
