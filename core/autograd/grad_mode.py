"""Whether operations record a graph: `no_grad`, `enable_grad`, `set_grad_enabled`,
`inference_mode`. The flag is thread-local, as in torch, so a worker thread computing
gradients is not switched off by another thread's `no_grad`."""

from __future__ import annotations

import functools
import threading


class _State(threading.local):
    enabled = True


state = _State()


def is_grad_enabled() -> bool:
    return state.enabled


class _GradMode:
    """Context manager and decorator that sets the grad flag and restores it on exit."""

    _mode: bool

    def __enter__(self) -> None:
        self._prev = state.enabled
        state.enabled = self._mode

    def __exit__(self, *exc) -> None:
        state.enabled = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):  # noqa: N801
    _mode = False


class enable_grad(_GradMode):  # noqa: N801
    _mode = True


class inference_mode(_GradMode):  # noqa: N801
    def __init__(self, mode: bool = True) -> None:
        self._mode = not mode

    def __call__(self, fn):
        mode = not self._mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)

        return wrapper


class set_grad_enabled(_GradMode):  # noqa: N801
    """Sets the flag at once (usable as a plain call) and restores it when used with `with`."""

    def __init__(self, mode: bool) -> None:
        self._prev = state.enabled
        self._mode = bool(mode)
        state.enabled = self._mode

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        state.enabled = self._prev
