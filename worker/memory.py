"""Keep more freed memory in the processes that shardgrad runs itself.

`import shardgrad` already keeps up to 256 MiB of freed memory (see shardgrad._allocator).
A worker's steps also allocate and free the chunk messages of the parameters and gradients,
which gRPC needs as fresh `bytes` objects: measured ~40 ms to page-fault 64 MiB of chunks in
again, against ~7 ms for the copy itself. The owners of such a process (the worker command,
Ray actors) raise the limits further; an import never does.
"""

from __future__ import annotations

from shardgrad import _allocator


def retain_freed_memory(trim_bytes: int = 1 << 30, mmap_bytes: int = 64 << 20) -> bool:
    """Ask glibc to keep up to `trim_bytes` of freed memory; False where not possible."""
    return _allocator.retain_freed_memory(trim_bytes, mmap_bytes)
