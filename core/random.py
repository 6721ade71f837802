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

    def binomial(self, n, p, size=None):
        with self._cp().cuda.Device(self._index):
            return self._gen.binomial(n, p, size)

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


class Generator:
    """`torch.Generator`: a random stream of its own, for code that keeps its draws apart from
    the global one (random_split, a DataLoader's shuffling, nn.init, rand(..., generator=g)).

    Seeded by `manual_seed` (or by `seed()`, from the operating system); its state is
    numpy's bit-generator state. It has the draw methods shardgrad's ops call, so every
    function that takes `generator=` uses it in place of the global stream. The numbers are
    not torch's."""

    def __init__(self, device="cpu") -> None:
        self.device = backend.as_device(device)
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self._reseed()

    def _reseed(self) -> None:
        if self.device is None or self.device.type == "cpu":
            self._impl = np.random.default_rng(self._seed)
        else:
            self._impl = CudaGenerator(backend.resolve(self.device).index, self._seed)

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self._reseed()
        return self

    def seed(self) -> int:
        """Reseed from the operating system's entropy; returns the new seed."""
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self._reseed()
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        if not isinstance(self._impl, np.random.Generator):
            raise NotImplementedError("get_state is provided for CPU generators")
        return self._impl.bit_generator.state

    def set_state(self, state: dict) -> Generator:
        if not isinstance(self._impl, np.random.Generator):
            raise NotImplementedError("set_state is provided for CPU generators")
        self._impl.bit_generator.state = state
        return self

    # the draws shardgrad's ops ask a generator for
    def random(self, size=None, dtype=np.float64):
        return self._impl.random(size, dtype=dtype)

    def standard_normal(self, size=None, dtype=np.float64):
        return self._impl.standard_normal(size, dtype=dtype)

    def integers(self, low, high=None, size=None, dtype=np.int64):
        return self._impl.integers(low, high, size, dtype=dtype)

    def permutation(self, n: int):
        return self._impl.permutation(n)

    def gamma(self, shape, scale=1.0, size=None):
        return self._impl.gamma(shape, scale, size)

    def poisson(self, lam=1.0, size=None):
        return self._impl.poisson(lam, size)

    def binomial(self, n, p, size=None):
        return self._impl.binomial(n, p, size)

    def __repr__(self) -> str:
        return f"<shardgrad.Generator object at {hex(id(self))}>"


def stream(dev, chosen: Generator | None = None):
    """What to draw from: the caller's Generator, or the global stream of `dev`."""
    return chosen if chosen is not None else generator(dev)


# ---------------------------------------------------------------- replaying a region's draws
def fork_state(devices) -> dict:
    """What `replay` needs to give a piece of code the same random draws again.

    The CPU stream's state is saved exactly. A GPU generator's state cannot be read back,
    so each GPU in `devices` gets a fresh generator seeded from its current stream; the
    code draws from that, and a replay seeds it again the same way."""
    saved: dict = {"cpu": _generator.bit_generator.state}
    for dev in devices:
        if dev is None or dev.type == "cpu":
            continue
        idx = backend.resolve(dev).index
        seed = int(generator(dev).integers(0, 2**62))
        _cuda_generators[idx] = CudaGenerator(idx, seed)
        saved[idx] = seed
    return saved


class replay:
    """Context manager: draws inside it repeat those made after `fork_state(saved)`; the
    streams outside it are left where they were."""

    def __init__(self, saved: dict) -> None:
        self._saved = saved

    def __enter__(self) -> None:
        self._cpu = _generator.bit_generator.state
        self._cuda = {i: _cuda_generators.get(i) for i in self._saved if i != "cpu"}
        _generator.bit_generator.state = self._saved["cpu"]
        for idx in self._cuda:
            _cuda_generators[idx] = CudaGenerator(idx, self._saved[idx])

    def __exit__(self, *exc) -> None:
        _generator.bit_generator.state = self._cpu
        for idx, gen in self._cuda.items():
            if gen is None:
                _cuda_generators.pop(idx, None)
            else:
                _cuda_generators[idx] = gen
