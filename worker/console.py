"""Status lines of shardgrad's commands, for whatever reads their output.

The local-worker launcher, supervisors and tests read a command's stdout, often with its log
merged in, for lines such as `shardgrad worker listening on HOST:PORT`. print() writes the
text and its newline in two writes, so a log line from another thread can land between them
and run into the line; the whole line in one write cannot be split (a pipe keeps each write of
up to 4 KiB whole).
"""

from __future__ import annotations

import sys


def announce(line: str) -> None:
    """Write `line` and its newline to stdout in one write, and flush."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
