"""Anomaly detection (torch.autograd.detect_anomaly): a debugging mode in which every graph
node remembers where the forward pass created it, and the backward pass stops at the first
node whose gradient holds a NaN, naming the node and showing that forward traceback.

It costs a stack capture per recorded op, so it is off unless asked for.
"""

from __future__ import annotations

import os
import traceback
import warnings

from . import node as _node

__all__ = [
    "detect_anomaly",
    "is_anomaly_check_nan_enabled",
    "is_anomaly_enabled",
    "set_detect_anomaly",
]


def is_anomaly_enabled() -> bool:
    return _node.anomaly_enabled


def is_anomaly_check_nan_enabled() -> bool:
    return _node.anomaly_check_nan


def _set(mode: bool, check_nan: bool) -> None:
    _node.anomaly_enabled = bool(mode)
    _node.anomaly_check_nan = bool(check_nan)


class set_detect_anomaly:  # noqa: N801 - torch's name
    """Turn anomaly detection on or off now; as a context manager, restore on exit."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev = (_node.anomaly_enabled, _node.anomaly_check_nan)
        _set(mode, check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        _set(*self.prev)


class detect_anomaly:  # noqa: N801 - torch's name
    """Context manager (or decorator) that enables anomaly detection inside it."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan
        warnings.warn(
            "Anomaly Detection has been enabled. This mode will increase the runtime and should "
            "only be enabled for debugging.",
            UserWarning,
            stacklevel=2,
        )

    def __enter__(self) -> None:
        self.prev = (_node.anomaly_enabled, _node.anomaly_check_nan)
        _set(True, self.check_nan)

    def __exit__(self, *exc) -> None:
        _set(*self.prev)

    def __call__(self, fn):
        def wrapped(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)

        return wrapped


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def forward_trace() -> list[str]:
    """Where the op being recorded was called from: the caller's frames, not shardgrad's."""
    frames = [f for f in traceback.extract_stack() if not f.filename.startswith(_PACKAGE)]
    return traceback.format_list(frames)


def _warn_trace(node) -> None:
    trace = "".join(getattr(node, "_forward_trace", None) or ["  (not recorded)\n"])
    warnings.warn(
        f"Error detected in {node.name()}. Traceback of forward call that caused the error:\n"
        f"{trace}",
        UserWarning,
        stacklevel=4,
    )


def backward_checked(node, grads: tuple):
    """node.backward(*grads), stopping at an error or (with check_nan) a NaN gradient, with
    the forward traceback of the node that produced it."""
    try:
        in_grads = node.backward(*grads)
    except Exception:
        _warn_trace(node)
        raise
    if not _node.anomaly_check_nan:
        return in_grads
    outs = in_grads if type(in_grads) is tuple else (in_grads,)
    for i, g in enumerate(outs):
        if g is None:
            continue
        data = g._data
        if data.dtype.kind in "fc" and bool((data != data).any()):
            _warn_trace(node)
            raise RuntimeError(f"Function '{node.name()}' returned nan values in its {i}th output.")
    return in_grads
