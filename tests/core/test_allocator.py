"""`import shardgrad` keeps freed memory for the next step instead of giving it back to the
OS: a loop that allocates and frees the same 8 MiB arrays page-faults them in once, not on
every pass; SHARDGRAD_MALLOC=system leaves glibc's defaults (and the faults) alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

LOOP = """
import resource
import numpy as np
import shardgrad  # noqa: F401

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

for _ in range(3):  # the heap grows to the loop's working set once
    a = np.ones(2 << 20, dtype=np.float32)
    b = a * 2
    del a, b
before = faults()
for _ in range(20):
    a = np.ones(2 << 20, dtype=np.float32)
    b = a * 2
    del a, b
print(faults() - before)
"""

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's allocator settings are Linux-only"
)


def _page_faults(**env: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", LOOP],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(out.stdout.strip())


def test_freed_arrays_are_reused_instead_of_faulted_in_again():
    pages_per_array = (8 << 20) // 4096
    # all 20 passes together fault in less than half of one array...
    assert _page_faults() < pages_per_array // 2
    # ...where glibc's defaults fault in about one array's worth every pass
    assert _page_faults(SHARDGRAD_MALLOC="system") > 5 * pages_per_array
