"""Whether an array holds only finite numbers, checked the cheap way first.

A sum is finite only when every term is (inf and nan carry through addition), so one reading
pass with no temporary answers "yes" almost always; only a sum of finite terms that
overflowed falls back to the element-wise check. Workers check what they send with it, and
the coordinator what it has not been told is checked.
"""

from __future__ import annotations

import math

import numpy as np


def all_finite(a, xp=np) -> bool:
    """True when no element of `a` (a numpy or cupy array; `xp` its module) is inf or nan."""
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(float(a.sum())):
            return True
    return bool(xp.isfinite(a).all())
