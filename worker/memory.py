"""Keep freed memory for reuse instead of handing it back to the OS after every step.

Every step allocates and frees the same large buffers: the chunk messages of the parameters
and the gradients, which gRPC needs as fresh `bytes` objects. glibc serves allocations above
128 KiB with new mmap()s and returns free memory at the top of its heap to the OS once more
than that is free, so each step page-faults the model's size in again: measured ~40 ms for
64 MiB of chunks, against ~7 ms for the copy itself. Raising both thresholds lets steady-state
steps reuse the same pages. The setting is process-wide, so the owners of a process call it
(the worker command, Ray actors, the coordinator, the benchmark), never an import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def retain_freed_memory(trim_bytes: int = 1 << 30, mmap_bytes: int = 64 << 20) -> bool:
    """Ask glibc to keep up to `trim_bytes` of freed memory; False where not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # pragma: no cover - a libc without mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_bytes)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_bytes)
    )
