"""The coordinator's event log: what happened to jobs, workers and the coordinator, for people.

Metrics say how training goes; events say why it went that way: a worker was dropped and its
micro-shards recomputed by the others, a checkpoint could not be written, the coordinator
restarted and a job resumed from its checkpoint. They are written where they happen, into
the store's `events` table, and read by the dashboard (`/api/v1/events`, the page's events
section, `shardgrad_events_total`) and the gRPC API (ListEvents: the SDK's `Client.events`,
`shardgrad events`).

Recording an event must never hurt what it describes: `record` swallows every error (a full
disk, a closed store), logs it and drops the event, so a training loop goes on regardless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

# Every kind the coordinator records, with its level. The level says how much a reader should
# care: "info" is the normal course of things, "warning" a fault shardgrad worked around (the
# job goes on), "error" a job that cannot go on.
KINDS: dict[str, str] = {
    "coordinator_started": "info",
    "coordinator_stopping": "info",
    "job_submitted": "info",
    "job_waiting": "info",  # a job waits for its first workers
    "job_started": "info",
    "job_resumed": "info",  # from a checkpoint, with its step
    "job_recovered": "warning",  # picked up again after a coordinator restart
    "job_paused": "warning",  # lost every worker mid-job: PENDING until one comes
    "job_continued": "info",  # workers came back after a pause
    "job_succeeded": "info",
    "job_failed": "error",
    "job_stopped": "info",
    "job_deleted": "info",
    "worker_live": "info",  # registered (or came back) and can be given work
    "worker_dropped": "warning",  # a job gave up on it: it failed or missed its deadline
    "worker_lost": "warning",  # it left the pool: died, stopped heartbeating, deregistered
    "worker_draining": "info",  # scaled down: finishes its work in flight, then leaves
    "worker_left": "info",  # a draining worker is gone
    "workers_scaled": "info",  # the pool's target worker count changed
    "shards_recomputed": "warning",  # a dropped worker's micro-shards went to the others
    "checkpoint_written": "info",
    "checkpoint_failed": "warning",  # e.g. a full disk; the next checkpoint tries again
    "step_skipped": "warning",  # a non-finite loss or gradient (skip_nonfinite)
}

# How many events one read of the log returns (the dashboard's `/api/v1/events`, the gRPC
# API's ListEvents) when not told, and at most: a client pages through more by id.
READ_DEFAULT = 200
READ_MAX = 1000


def record(
    store,
    kind: str,
    message: str = "",
    *,
    level: str | None = None,
    job_id: str | None = None,
    worker_id: str | None = None,
) -> int | None:
    """Write one event; returns its id, or None when it could not be written (logged).

    `level` defaults to the kind's level in KINDS ("info" for other kinds). Never raises.
    """
    try:
        return store.add_event(
            kind,
            message,
            level=level or KINDS.get(kind, "info"),
            job_id=job_id,
            worker_id=worker_id,
        )
    except Exception as exc:  # noqa: BLE001 - an event must never break what it describes
        log.warning("event %s (%s) not recorded: %s", kind, message, exc)
        return None


class JobEvents:
    """`record` bound to one job, for its training loop. Never raises."""

    def __init__(self, store, job_id: str) -> None:
        self.store = store
        self.job_id = job_id

    def add(self, kind: str, message: str = "", worker_id: str | None = None) -> int | None:
        return record(self.store, kind, message, job_id=self.job_id, worker_id=worker_id)

    def shards_recomputed(
        self,
        step: int,
        shard_ids: Iterable[int],
        failed_workers: Iterable[str],
        workers: Iterable[str],
    ) -> int | None:
        """Record that micro-shards of failed workers go to `workers` within step `step`;
        nothing when no worker has failed in the step (its first round of work)."""
        try:
            failed = sorted(failed_workers)
            if not failed:
                return None
            shards = ", ".join(str(int(i)) for i in shard_ids)
            message = (
                f"step {step}: micro-shards {shards} of {', '.join(failed)} recomputed on "
                f"{', '.join(workers)}"
            )
        except Exception as exc:  # noqa: BLE001
            log.warning("event shards_recomputed not recorded: %s", exc)
            return None
        return self.add("shards_recomputed", message, failed[0] if len(failed) == 1 else None)
