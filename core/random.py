"""The global random state behind `manual_seed`, `rand`, `randn`, dropout and `nn.init`.

One numpy Generator per process (and one generator per GPU, made lazily) so a seed gives the
same numbers on every run. The numbers differ from torch's generator; code that needs torch's
exact draws should copy weights in.
"""

from __future__ import annotations

import numpy as np

from . import backend

_seed = 0
_generator = np.random.default_rng(0)
_cuda_generators: dict[int, object] = {}
_cuda_seed: int | None = None  # set by cuda.manual_seed; None follows the global seed


def manual_seed(seed: int):
    global _seed, _generator, _cuda_seed
    _seed = int(seed)
    _generator = np.random.default_rng(_seed)
    _cuda_seed = None
    _cuda_generators.clear()
    return _generator


def cuda_manual_seed(seed: int) -> None:
    """`shardgrad.cuda.manual_seed`: reseed the GPU generators only."""
    global _cuda_seed
    _cuda_seed = int(seed)
    _cuda_generators.clear()


seed = manual_seed


def initial_seed() -> int:
    return _seed


class CudaGenerator:
    """A seeded cupy Generator for one GPU, with the numpy Generator methods shardgrad uses.

    cupy's Generator draws on the device (no host round trip) but lacks `permutation`;
    that one is an argsort of uniform draws, also on the device.
    """

    __slots__ = ("_gen", "_index")

    def __init__(self, index: int, seed: int) -> None:
        cp = backend.cupy()
        self._index = index
        with cp.cuda.Device(index):
            self._gen = cp.random.default_rng(seed)

    def _cp(self):
        return backend.cupy()

    def random(self, size=None, dtype=np.float64):
        with self._cp().cuda.Device(self._index):
            return self._gen.random(size, dtype=dtype)

    def standard_normal(self, size=None, dtype=np.float64):
        with self._cp().cuda.Device(self._index):
            return self._gen.standard_normal(size, dtype=dtype)

    def integers(self, low, high=None, size=None, dtype=np.int64):
        with self._cp().cuda.Device(self._index):
            return self._gen.integers(low, high, size, dtype=dtype)

    def gamma(self, shape, scale=1.0, size=None):
        with self._cp().cuda.Device(self._index):
            return self._gen.gamma(shape, scale, size)

    def poisson(self, lam=1.0, size=None):
        with self._cp().cuda.Device(self._index):
            return self._gen.poisson(lam, size)

    def permutation(self, n: int):
        cp = self._cp()
        with cp.cuda.Device(self._index):
            return cp.argsort(self._gen.random(int(n))).astype(np.int64, copy=False)


def generator(dev: backend.device | None = None):
    """The generator for `dev`: numpy's for CPU, a seeded device generator per GPU (seeded
    from the global seed, so `manual_seed` makes GPU draws repeatable too)."""
    if dev is None or dev.type == "cpu":
        return _generator
    idx = backend.resolve(dev).index
    gen = _cuda_generators.get(idx)
    if gen is None:
        base = _seed if _cuda_seed is None else _cuda_seed
        gen = _cuda_generators[idx] = CudaGenerator(idx, base + 7919 * (idx + 1))
    return gen


def get_rng_state() -> dict:
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    _generator.bit_generator.state = state
