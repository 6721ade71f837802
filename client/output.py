"""How the CLI prints: aligned tables for people, JSON for programs.

`--json` output is one JSON document per command (or one JSON object per line for streams),
with no colour or decoration, so `jq` and scripts can rely on it.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from typing import IO, Any


def print_json(obj: Any, file: IO[str] | None = None) -> None:
    print(json.dumps(_plain(obj), sort_keys=True), file=file or sys.stdout, flush=True)


def _plain(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], file: IO[str] | None = None
) -> None:
    """Columns padded to their widest cell; numbers right-aligned."""
    out = file or sys.stdout
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    numeric = [
        all(_is_number(row[i]) for row in rows if row[i] not in (None, "")) and bool(rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    print(line([h.upper() for h in headers]), file=out)
    for row in cells:
        print(line(row), file=out)
    out.flush()


def key_values(pairs: Sequence[tuple[str, Any]], file: IO[str] | None = None) -> None:
    out = file or sys.stdout
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        print(f"{key + ':':<{width + 1}} {_cell(value)}", file=out)
    out.flush()


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:.6g}"
    return str(v)


def when(t: float | None) -> str:
    """A Unix time as local 'YYYY-mm-dd HH:MM:SS', or '-'."""
    if not t:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
