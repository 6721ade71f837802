"""Training first: the threads that answer API and dashboard requests run at a lower CPU
priority than the training loops and the workers.

One coordinator process answers clients and runs every job's training loop, often beside
worker processes on the same machine. At equal priority a flood of requests takes CPU from
the loops and the workers as readily as from anything else, and every wake-up of a step
(a dispatch, a reply) waits behind request handlers for a core, so training slows by more
than the clients' own share of the machine (tests/reliability/test_load.py measures it).
Linux gives each thread its own nice value: the request threads raise theirs, so a busy API
slows its own answers before it slows training, while an idle machine still gives the API
every core it wants. Elsewhere, or where the value cannot be changed, nothing happens.

What this cannot fix: in one process the request threads share the GIL with the loops, and
a handler the OS has set aside while it holds the GIL delays them (docs/reliability.md
measures it); only an API served from a process of its own removes that. Measured under 20
clients, training still loses less at the default than at equal priority.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

# Nice values: 0 is the default priority, 19 the lowest.
DEFAULT_API_NICE = 10
_LOWEST = 19


def lower_this_thread(increment: int) -> bool:
    """Raise the calling thread's nice value by `increment` (at most to 19); False where the
    platform has no per-thread priority or refuses. Lowering priority needs no privilege."""
    if increment <= 0 or not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()  # on Linux, PRIO_PROCESS with a thread id sets that thread
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(_LOWEST, current + int(increment)))
    except OSError as exc:
        log.debug("could not lower the priority of thread %d: %s", tid, exc)
        return False
    return True
