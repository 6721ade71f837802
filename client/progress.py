"""Progress bars for long client operations: a job's steps and a dataset's bytes.

The job bar is driven by the metrics stream, not by polling: each event moves it to the
event's step and shows the step's loss and throughput; tqdm estimates the time left from the
rate of steps. When tqdm is not installed, or the bar is turned off, the same calls do
nothing, so callers never branch on it.
"""

from __future__ import annotations

import sys
from typing import IO


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _tqdm():
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415
    except ImportError:  # pragma: no cover - tqdm is in the service extra
        return None
    return tqdm


class JobProgress:
    """A bar over a job's steps: `update(record)` with each metrics record."""

    def __init__(
        self,
        job_id: str,
        total: int,
        initial: int = 0,
        name: str = "",
        enabled: bool = True,
        file: IO[str] | None = None,
    ) -> None:
        tqdm = _tqdm() if enabled else None
        self.step = initial
        self._desc = name or job_id
        self._bar = None
        if tqdm is not None:
            self._bar = tqdm(
                total=total or None,
                initial=initial,
                desc=self._desc,
                unit="step",
                file=file or sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )

    def set_total(self, total: int) -> None:
        if self._bar is not None and total and self._bar.total != total:
            self._bar.total = total
            self._bar.refresh()

    def update(self, record: dict) -> None:
        step = int(record.get("step", self.step))
        if self._bar is not None:
            if step > self.step:
                self._bar.update(step - self.step)
            postfix = {}
            if record.get("loss") is not None:
                postfix["loss"] = f"{record['loss']:.4g}"
            if record.get("samples_per_second"):
                postfix["samples/s"] = f"{record['samples_per_second']:.0f}"
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
        self.step = max(self.step, step)

    def finish(self, state: str) -> None:
        if self._bar is not None:
            self._bar.set_description_str(f"{self._desc} {state}")
            self._bar.close()
            self._bar = None


def byte_bar(total: int, desc: str, enabled: bool = True, file: IO[str] | None = None):
    """A bar over `total` bytes with `update(n)` and `close()`."""
    tqdm = _tqdm() if enabled else None
    if tqdm is None:
        return _NoBar()
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=file or sys.stderr,
        dynamic_ncols=True,
        leave=False,
    )
