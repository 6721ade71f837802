"""The jobs a gRPC worker holds: at most `capacity`, rebuilt from their specs at will.

A job's model and dataset can always be built again from its spec, and every compute request
carries the step's parameters, so a held job is a cache entry: a worker that is full drops an
idle one to load another, and the coordinator loads the dropped job again when it next needs
it. What must never be dropped is a job in use: one computing (or waiting for its own lock to
compute), or one just loaded whose first compute is on its way (for `pin_seconds` at most;
otherwise two jobs taking turns could each drop the other between its load and its compute).

When every held job is in use a load is refused, and the job is queued as a claimant. Places
go to claimants in the order they were refused: a load from further back (or from a job not
queued) never takes the place owed to one ahead of it, and when a compute ends while
claimants wait, idle jobs are dropped at once so that the next load finds room. Without that
a job that computes back to back would keep its place forever and starve the others. A claim
that is not renewed within `claim_seconds` (its job ended, its coordinator went away) lapses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger("shardgrad.worker")

DEFAULT_PIN_SECONDS = 10.0
DEFAULT_CLAIM_SECONDS = 3.0
# How the worker's RESOURCE_EXHAUSTED for a refused load begins, which tells "full, ask again"
# apart from the same code for other limits (a message over the size gRPC takes).
BUSY_REFUSAL = "busy: "


@dataclass
class Entry(Generic[T]):
    """One held job: the worker's object for it and what decides whether it can go."""

    job_id: str
    value: T
    last_used: float
    pinned_until: float
    users: int = 0  # compute requests that hold or wait for it

    def idle(self, now: float) -> bool:
        return self.users == 0 and self.pinned_until <= now


class JobCache(Generic[T]):
    """Thread-safe; see the module docstring."""

    def __init__(
        self,
        capacity: int,
        pin_seconds: float = DEFAULT_PIN_SECONDS,
        claim_seconds: float = DEFAULT_CLAIM_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"a worker must hold at least one job, got max_jobs={capacity}")
        self.capacity = capacity
        self.pin_seconds = pin_seconds
        self.claim_seconds = claim_seconds
        self.clock = clock
        self.evicted = 0  # jobs dropped to make room for another
        self._lock = threading.Lock()
        self._entries: dict[str, Entry[T]] = {}
        self._claims: OrderedDict[str, float] = OrderedDict()  # job id -> last refusal
        self._reserved = 0  # places taken by loads still building their job

    # ------------------------------------------------------------------ looking
    def get(self, job_id: str) -> T | None:
        entry = self._entries.get(job_id)
        return None if entry is None else entry.value

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def waiting(self) -> list[str]:
        """The claimants, first in line first."""
        with self._lock:
            self._expire_claims(self.clock())
            return list(self._claims)

    # ------------------------------------------------------------------ loading
    def reserve(self, job_id: str) -> bool:
        """Take a place for `job_id`, dropping idle jobs if needed; False (and `job_id`
        queued, or kept in its place in the queue) when none is free for it. A True must be
        followed by `put` or `cancel`."""
        with self._lock:
            now = self.clock()
            self._expire_claims(now)
            self._claims[job_id] = now
            ahead = list(self._claims).index(job_id)
            free = self.capacity - len(self._entries) - self._reserved
            idle = sum(1 for e in self._entries.values() if e.idle(now))
            if ahead >= free + idle:
                return False
            while self.capacity - len(self._entries) - self._reserved < 1:
                if not self._evict_one(now):
                    break
            del self._claims[job_id]
            self._reserved += 1
            return True

    def cancel(self) -> None:
        """Give back a place `reserve` took (the job could not be built)."""
        with self._lock:
            self._reserved -= 1

    def put(self, job_id: str, value: T) -> None:
        """Hold `value` in the place `reserve` took; it stays until its first compute."""
        with self._lock:
            now = self.clock()
            self._reserved -= 1
            self._entries[job_id] = Entry(job_id, value, now, now + self.pin_seconds)

    def pop(self, job_id: str) -> T | None:
        """Let go of a job (released by the coordinator); None when it was not held."""
        with self._lock:
            self._claims.pop(job_id, None)
            entry = self._entries.pop(job_id, None)
        return None if entry is None else entry.value

    def pin(self, job_id: str) -> None:
        """Keep a held job (asked to load again) until its next compute begins."""
        with self._lock:
            entry = self._entries.get(job_id)
            if entry is not None and entry.users == 0:
                entry.pinned_until = self.clock() + self.pin_seconds

    # ------------------------------------------------------------------ computing
    def begin(self, job_id: str) -> Entry[T] | None:
        """Mark the job in use for one compute request (None when it is not held); pair
        with `end`."""
        with self._lock:
            entry = self._entries.get(job_id)
            if entry is not None:
                entry.users += 1
                entry.pinned_until = 0.0
                entry.last_used = self.clock()
            return entry

    def end(self, entry: Entry[T]) -> None:
        """The compute request that `begin` returned `entry` for is over. If claimants wait,
        idle jobs go now, before their next compute can take them again."""
        with self._lock:
            now = self.clock()
            entry.users -= 1
            entry.last_used = now
            self._expire_claims(now)
            while len(self._claims) > self.capacity - len(self._entries) - self._reserved:
                if not self._evict_one(now):
                    break

    # ------------------------------------------------------------------ internals
    def _expire_claims(self, now: float) -> None:
        for job_id, since in list(self._claims.items()):
            if now - since > self.claim_seconds:
                del self._claims[job_id]

    def _evict_one(self, now: float) -> bool:
        idle = [e for e in self._entries.values() if e.idle(now)]
        if not idle:
            return False
        victim = min(idle, key=lambda e: e.last_used)
        del self._entries[victim.job_id]
        self.evicted += 1
        log.info("dropped idle job %s to make room (it is loaded again when asked)", victim.job_id)
        return True
