"""The global random state behind `manual_seed`, `rand`, `randn`, dropout and `nn.init`.

One numpy Generator per process (and one cupy generator per GPU, made lazily) so a seed
gives the same numbers on every run. The numbers differ from torch's generator; code that
needs torch's exact draws should copy weights in.
"""

from __future__ import annotations

import numpy as np

from . import backend

_seed = 0
_generator = np.random.default_rng(0)
_cuda_generators: dict[int, object] = {}


def manual_seed(seed: int):
    global _seed, _generator
    _seed = int(seed)
    _generator = np.random.default_rng(_seed)
    _cuda_generators.clear()
    return _generator


seed = manual_seed


def initial_seed() -> int:
    return _seed


def generator(dev: backend.device | None = None):
    """The generator for `dev`: numpy's for CPU, a seeded cupy RandomState per GPU."""
    if dev is None or dev.type == "cpu":
        return _generator
    cp = backend.cupy()
    idx = dev.index or 0
    gen = _cuda_generators.get(idx)
    if gen is None:
        with cp.cuda.Device(idx):
            gen = _cuda_generators[idx] = cp.random.default_rng(_seed + 7919 * (idx + 1))
    return gen


def get_rng_state() -> dict:
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    _generator.bit_generator.state = state
