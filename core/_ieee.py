"""IEEE special values without numpy's warnings, as in torch.

torch computes 1/0 = inf, log(-1) = nan and exp(1000) = inf silently; numpy does the same
arithmetic but warns ("RuntimeWarning: divide by zero encountered in ..."). Every op's forward,
every backward pass, every in-place op and every optimizer update runs between `quiet()` and
`loud(token)`, so shardgrad says nothing where torch says nothing.

The state is numpy's own error state, which since numpy 2 lives in a context variable: setting
it to a prebuilt "ignore everything" object costs a fraction of a microsecond, where entering
`np.errstate` builds that object on every call (about a microsecond, paid by every op). A
caller's own `np.errstate` is untouched outside the op and applies again once it returns.
"""

from __future__ import annotations

import numpy as np

try:  # numpy >= 2
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj

    _IGNORE_ALL = _make_extobj(all="ignore")

    def quiet():
        """Silence numpy's floating-point warnings until `loud(token)`."""
        return _extobj_contextvar.set(_IGNORE_ALL)

    def loud(token) -> None:
        """Restore the error state `quiet()` replaced."""
        _extobj_contextvar.reset(token)

except ImportError:  # pragma: no cover - numpy 1.26: the public context manager

    def quiet():
        state = np.errstate(all="ignore")
        state.__enter__()
        return state

    def loud(token) -> None:
        token.__exit__(None, None, None)
