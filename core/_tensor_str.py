"""How a tensor prints: torch's layout, element formats and print options.

A PyTorch user reads values at a glance in torch's style (fixed four decimals, scientific
notation when magnitudes span more than 1000x, `1.` for integral floats, `...` past 1000
elements), so shardgrad prints the same way, with `set_printoptions` to change it. The
algorithm is torch's `_tensor_str`: one element formatter for the whole tensor (chosen from
the values that will be shown), rows wrapped at the line width, nested brackets indented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["get_printoptions", "set_printoptions"]


@dataclass
class _Options:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


_OPTS = _Options()
_PROFILES = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80),
}


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """torch.set_printoptions: a profile ("default", "short", "full") first, then any
    option given. sci_mode=None lets each tensor choose."""
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(
                f"Invalid profile: {profile}. the profile must be one of {list(_PROFILES)}"
            )
        for key, value in _PROFILES[profile].items():
            setattr(_OPTS, key, value)
    for key, value in (
        ("precision", precision),
        ("threshold", threshold),
        ("edgeitems", edgeitems),
        ("linewidth", linewidth),
    ):
        if value is not None:
            setattr(_OPTS, key, value)
    _OPTS.sci_mode = sci_mode


def get_printoptions() -> dict:
    return dict(vars(_OPTS))


class _Formatter:
    """One width and one style for every element of a tensor."""

    def __init__(self, values: np.ndarray) -> None:
        self.floating = values.dtype.kind == "f"
        self.int_mode, self.sci_mode, self.width = True, False, 1
        p = _OPTS.precision
        flat = values.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.width = max(self.width, len(str(v)))
        else:
            values = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
            if values.size:
                shown = np.abs(values)
                lo, hi = float(shown.min()), float(shown.max())
                self.int_mode = bool(np.all(values == np.ceil(values)))
                if _OPTS.sci_mode is None:
                    self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
                else:
                    self.sci_mode = _OPTS.sci_mode
                if self.sci_mode:
                    fmt, extra = f"{{:.{p}e}}", 0
                elif self.int_mode:
                    fmt, extra = "{:.0f}", 1  # the trailing "." of an integral float
                else:
                    fmt, extra = f"{{:.{p}f}}", 0
                for v in values.tolist():
                    self.width = max(self.width, len(fmt.format(v)) + extra)

    def format(self, value) -> str:
        p = _OPTS.precision
        if self.floating:
            if self.sci_mode:
                text = f"{{:{self.width}.{p}e}}".format(value)
            elif self.int_mode:
                text = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    text += "."
            else:
                text = f"{{:.{p}f}}".format(value)
        else:
            text = f"{value}"
        return (self.width - len(text)) * " " + text


def _summarized(a: np.ndarray) -> np.ndarray:
    """The values that will be shown: the first and last `edgeitems` along every dim."""
    e = _OPTS.edgeitems
    if a.ndim == 0:
        return a
    if a.ndim == 1:
        return np.concatenate([a[:e], a[-e:]]) if a.shape[0] > 2 * e else a
    if not e:
        return a[tuple(slice(0, 0) for _ in a.shape)]
    rows = (
        list(range(e)) + list(range(a.shape[0] - e, a.shape[0]))
        if a.shape[0] > 2 * e
        else range(a.shape[0])
    )
    return np.stack([_summarized(a[i]) for i in rows])


def _vector(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    per_line = max(1, int(math.floor((_OPTS.linewidth - indent) / (fmt.width + 2))))
    e = _OPTS.edgeitems
    if summarize and not e:
        items = ["..."]
    elif summarize and a.shape[0] > 2 * e:
        items = [fmt.format(v) for v in a[:e].tolist()] + [" ..."]
        items += [fmt.format(v) for v in a[-e:].tolist()]
    else:
        items = [fmt.format(v) for v in a.tolist()]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector(a, indent, summarize, fmt)
    e = _OPTS.edgeitems
    if summarize and a.shape[0] > 2 * e:
        parts = [_nested(a[i], indent + 1, summarize, fmt) for i in range(e)] + ["..."]
        parts += [
            _nested(a[i], indent + 1, summarize, fmt) for i in range(a.shape[0] - e, a.shape[0])
        ]
    else:
        parts = [_nested(a[i], indent + 1, summarize, fmt) for i in range(a.shape[0])]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def hides_values() -> bool:
    """With edgeitems=0 no value is shown, so torch states the size instead."""
    return not _OPTS.edgeitems


def tensor_body(a: np.ndarray, indent: int) -> str:
    """The bracketed values of host array `a`, as torch prints them after `tensor(`."""
    if a.size == 0:
        return "[]"
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    summarize = a.size > _OPTS.threshold
    fmt = _Formatter(_summarized(a) if summarize else a)
    return _nested(a, indent, summarize, fmt)


def with_suffixes(text: str, suffixes: list[str], indent: int) -> str:
    """Append `, dtype=...` and the like, moving to a new line past the line width."""
    parts = [text]
    last = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last + len(suffix) + 2 > _OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last += len(suffix) + 2
    parts.append(")")
    return "".join(parts)
