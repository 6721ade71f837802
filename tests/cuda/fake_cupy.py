"""A stand-in for cupy that runs on the CPU and is as strict as cupy about host memory.

Installed as shardgrad's cupy (`install(monkeypatch)`), it lets machines without a GPU run
shardgrad's CUDA code paths. Its arrays wrap numpy arrays but behave like device arrays:

- `numpy.asarray(device_array)` raises TypeError, as with cupy (no implicit host copies);
- mixing a device array and a host (numpy) array in one operation raises TypeError;
- reductions return 0-d device arrays, never host scalars;
- every device-to-host read (`.item()`, `.get()`, `bool()`, `float()`, `int()`, `.tolist()`)
  is a synchronisation and is recorded in `SYNCS`, or raises `HostSync` inside `strict()`.

Because the arithmetic underneath is numpy's, a computation on the fake device must give
bit-for-bit the numbers of the same computation on the CPU; the tests use that as an oracle.
shardgrad's own CUDA kernels run as numpy emulations (kernel_emulation.py), so the code around
them is exercised; other raw kernels (the optimizers' fused updates) are switched off.
"""

from __future__ import annotations

import contextlib
import sys
import types

import kernel_emulation
import numpy as np

SYNCS: list[str] = []
UPLOADS: list[str] = []
ALL_SYNCS: list[str] = []  # never cleared: a whole session's record
ALL_UPLOADS: list[str] = []
_STRICT = [False]


class HostSync(RuntimeError):
    """A device-to-host read where none is allowed."""


def _site(depth: int = 3) -> str:
    """The innermost shardgrad frames that caused the event (for readable reports)."""
    frames = []
    f = sys._getframe(2)
    while f is not None and len(frames) < depth:
        name = f.f_code.co_filename
        if "/tests/" not in name and "pytest" not in name and "fake_cupy" not in name:
            short = "/".join(name.replace("\\", "/").split("/")[-2:])
            frames.append(f"{short}:{f.f_lineno} ({f.f_code.co_name})")
        f = f.f_back
    return " <- ".join(frames) if frames else "?"


def _sync(what: str) -> None:
    site = _site()
    if _STRICT[0]:
        raise HostSync(f"device-to-host read ({what}) at {site}")
    SYNCS.append(f"{what} at {site}")
    ALL_SYNCS.append(SYNCS[-1])


@contextlib.contextmanager
def strict():
    """Inside this block any device-to-host read raises HostSync."""
    old = _STRICT[0]
    _STRICT[0] = True
    try:
        yield
    finally:
        _STRICT[0] = old


def _unwrap(x):
    if type(x) is ndarray:
        return x._a
    if type(x) is np.ndarray:
        raise TypeError(f"Unsupported type {type(x)}")  # cupy's message for host arrays
    if type(x) in (list, tuple):
        return type(x)(_unwrap(v) for v in x)
    return x


def _unwrap_index(key):
    if type(key) is ndarray:
        return key._a
    if type(key) is tuple:
        return tuple(_unwrap_index(k) for k in key)
    if type(key) is np.ndarray:  # cupy uploads host index arrays
        UPLOADS.append(f"index array at {_site()}")
        ALL_UPLOADS.append(UPLOADS[-1])
        return key
    return key


def _wrap(x):
    if type(x) is np.ndarray:
        return ndarray(x)
    if isinstance(x, np.generic):
        return ndarray(np.asarray(x))
    if type(x) is tuple:
        return tuple(_wrap(v) for v in x)
    if isinstance(x, tuple):  # numpy's named results (linalg's QRResult, SVDResult, ...)
        return type(x)(*(_wrap(v) for v in x))
    if type(x) is list:
        return [_wrap(v) for v in x]
    return x


def _call(fn, args, kwargs):
    return _wrap(fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))


class _Device:
    """`cupy.cuda.Device`: an id and a context manager."""

    def __init__(self, device_id: int | None = None) -> None:
        self.id = 0 if device_id is None else int(device_id)
        if self.id != 0:
            raise RuntimeError("the fake device has one GPU")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def synchronize(self) -> None:
        return None

    def __eq__(self, other) -> bool:
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self) -> int:
        return self.id


class _Pointer:
    def __init__(self, a: np.ndarray) -> None:
        self.ptr = a.__array_interface__["data"][0]


class _Flags:
    def __init__(self, a: np.ndarray) -> None:
        self.c_contiguous = a.flags.c_contiguous
        self.f_contiguous = a.flags.f_contiguous
        self.owndata = a.flags.owndata


class ndarray:  # noqa: N801 - cupy's name
    """A device array: a numpy array that refuses to leave the device implicitly."""

    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 100

    def __init__(self, a: np.ndarray) -> None:
        self._a = a

    # metadata
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: _Flags(self._a))
    device = property(lambda self: _Device(0))
    data = property(lambda self: _Pointer(self._a))
    T = property(lambda self: ndarray(self._a.T))
    mT = property(lambda self: ndarray(np.swapaxes(self._a, -1, -2)))
    real = property(lambda self: ndarray(self._a.real))

    @property
    def __cuda_array_interface__(self) -> dict:
        """What other libraries read to view the array in place (its host memory here)."""
        ai = self._a.__array_interface__
        return {k: ai[k] for k in ("shape", "typestr", "data", "strides")} | {"version": 3}

    @property
    def base(self):
        return None if self._a.base is None else ndarray(np.asarray(self._a.base))

    def __getattr__(self, name: str):
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            return _call(attr, args, kwargs)

        return method

    # device -> host reads
    def get(self, stream=None, order="C", out=None) -> np.ndarray:
        _sync("get()")
        return self._a.copy()

    def item(self):
        _sync("item()")
        return self._a.item()

    def tolist(self):
        _sync("tolist()")
        return self._a.tolist()

    def __bool__(self) -> bool:
        _sync("bool()")
        return bool(self._a)

    def __float__(self) -> float:
        _sync("float()")
        return float(self._a)

    def __int__(self) -> int:
        _sync("int()")
        return int(self._a)

    def __index__(self) -> int:
        _sync("index")
        return self._a.__index__()

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
            "construct a NumPy array explicitly."
        )

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (ndarray(np.asarray(self._a[i])) for i in range(self._a.shape[0]))

    def __len__(self) -> int:
        return len(self._a)

    def __repr__(self) -> str:
        return f"fake_cupy.ndarray(shape={self._a.shape}, dtype={self._a.dtype})"

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap_index(key)])

    def __setitem__(self, key, value) -> None:
        self._a[_unwrap_index(key)] = _unwrap(value)

    def scatter_add(self, slices, value) -> None:  # cupy's method behind cupyx.scatter_add
        np.add.at(self._a, _unwrap_index(slices), _unwrap(value))

    def __copy__(self):
        return ndarray(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray(self._a.copy())

    def __reduce__(self):
        raise TypeError("device arrays are not pickled by shardgrad")

    # numpy's protocols: np.<ufunc>(device) dispatches here, as cupy's arrays do
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        try:
            ins = _unwrap(inputs)
        except TypeError:
            return NotImplemented
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"])
        return _wrap(getattr(ufunc, method)(*ins, **kwargs))

    def __array_function__(self, func, types_, args, kwargs):
        return _call(func, args, kwargs)


def _binary(name: str, ufunc, reflected: bool = False, inplace: bool = False):
    def op(self, other):
        if type(other) is np.ndarray:
            raise TypeError(f"Unsupported type {type(other)}")
        if not isinstance(other, (ndarray, np.generic, int, float, bool, complex)):
            return NotImplemented
        o = _unwrap(other)
        if inplace:
            ufunc(self._a, o, out=self._a)
            return self
        return _wrap(ufunc(o, self._a) if reflected else ufunc(self._a, o))

    op.__name__ = name
    return op


_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
    "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power, "matmul": np.matmul,
    "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor,
    "lshift": np.left_shift, "rshift": np.right_shift,
}  # fmt: skip
for _n, _u in _BINARY.items():
    setattr(ndarray, f"__{_n}__", _binary(f"__{_n}__", _u))
    setattr(ndarray, f"__r{_n}__", _binary(f"__r{_n}__", _u, reflected=True))
    setattr(ndarray, f"__i{_n}__", _binary(f"__i{_n}__", _u, inplace=True))
for _n, _u in {
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
    "gt": np.greater, "ge": np.greater_equal,
}.items():  # fmt: skip
    setattr(ndarray, f"__{_n}__", _binary(f"__{_n}__", _u))
ndarray.__hash__ = None  # arrays are unhashable, like cupy's
for _n, _u in {
    "neg": np.negative,
    "pos": np.positive,
    "abs": np.absolute,
    "invert": np.invert,
}.items():
    setattr(ndarray, f"__{_n}__", (lambda u: lambda self: ndarray(u(self._a)))(_u))


# the ufuncs whose `.at` cupy implements (cupy 14: those built with a scatter op); the
# others have the method but raise when called. maximum.at and minimum.at exist too, but on
# an H100 their float64 results were not exactly any of the values combined (so an
# amax's winners could not be found by equality): shardgrad must not use them, and here
# they raise.
_SCATTER_UFUNCS = {
    "add",
    "subtract",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
}


def _unsupported(name: str, method: str):
    def call(*args, **kwargs):
        raise NotImplementedError(f"`cupy_{name}.{method}` is not supported yet")

    return call


class _Ufunc:
    """A numpy ufunc taking and returning device arrays (cupy's ufuncs have `.at` too, for
    the few in `_SCATTER_UFUNCS`)."""

    def __init__(self, u) -> None:
        self._u = u
        self.__name__ = u.__name__
        self.nin, self.nout = u.nin, u.nout

    def __call__(self, *args, **kwargs):
        return _call(self._u, args, kwargs)

    def __getattr__(self, name: str):
        if name == "at" and self.__name__ not in _SCATTER_UFUNCS:
            return _unsupported(self.__name__, "at")
        if name == "accumulate":  # cupy 14 raises for maximum, minimum and logaddexp at least
            return _unsupported(self.__name__, name)
        attr = getattr(self._u, name)
        if not callable(attr):
            return attr
        return lambda *a, **k: _call(attr, a, k)


def _view_foreign(obj) -> np.ndarray:
    """Another library's device array, viewed in place through the CUDA array interface (as
    cupy does); the fake device's memory is host memory, so numpy can read the pointer."""
    cai = obj.__cuda_array_interface__
    ai = {k: cai.get(k) for k in ("shape", "typestr", "data", "strides")} | {"version": 3}
    return np.asarray(types.SimpleNamespace(__array_interface__=ai))


def _upload(obj, dtype=None, **kwargs):
    if type(obj) is not ndarray and hasattr(obj, "__cuda_array_interface__"):
        obj = ndarray(_view_foreign(obj))
    if type(obj) is ndarray:
        return obj if dtype is None or obj.dtype == dtype else ndarray(obj._a.astype(dtype))
    if type(obj) is np.ndarray or isinstance(obj, np.generic):
        UPLOADS.append(f"asarray at {_site()}")
        ALL_UPLOADS.append(UPLOADS[-1])
        return ndarray(np.array(obj, dtype=dtype, **kwargs))
    return ndarray(np.array(_unwrap(obj), dtype=dtype, **kwargs))


def _array(obj, dtype=None, copy=True, order="K", ndmin=0):
    if type(obj) is ndarray:
        a = np.array(obj._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
        return ndarray(a)
    return _upload(obj, dtype, order=order, ndmin=ndmin)


def _asnumpy(a, stream=None, order="C", out=None):
    if type(a) is ndarray:
        return a.get()
    return np.asarray(a)


class _Generator:
    """`cupy.random.Generator`: numpy's PCG64 underneath, device arrays out. cupy's has no
    permutation/choice/normal, so neither has this one."""

    def __init__(self, seed=None) -> None:
        self._g = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64, out=None):
        return ndarray(np.asarray(self._g.random(size, dtype=dtype)))

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        return ndarray(np.asarray(self._g.standard_normal(size, dtype=dtype)))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        return ndarray(np.asarray(self._g.uniform(low, high, size)).astype(dtype))

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return ndarray(np.asarray(self._g.integers(low, high, size, dtype, endpoint)))

    def gamma(self, shape, scale=1.0, size=None):
        return ndarray(np.asarray(self._g.gamma(_unwrap(shape), _unwrap(scale), size)))

    def poisson(self, lam=1.0, size=None):
        return ndarray(np.asarray(self._g.poisson(_unwrap(lam), size)))

    def binomial(self, n, p, size=None):
        return ndarray(np.asarray(self._g.binomial(_unwrap(n), _unwrap(p), size)))


def _getDevice() -> int:  # noqa: N802 - cupy's name
    return 0


_runtime = types.SimpleNamespace(getDeviceCount=lambda: 1, getDevice=_getDevice)
_cuda = types.SimpleNamespace(
    Device=_Device,
    runtime=_runtime,
    get_current_stream=lambda: types.SimpleNamespace(synchronize=lambda: None),
)


def _as_strided(x, shape=None, strides=None):
    return ndarray(np.lib.stride_tricks.as_strided(x._a, shape=shape, strides=strides))


class _ElementwiseKernel:
    """cupy.ElementwiseKernel for shardgrad's kernels, run by their numpy emulations."""

    def __init__(self, *args, **kwargs) -> None:
        self._k = kernel_emulation.ElementwiseKernel(*args, **kwargs)

    def __call__(self, *args):
        return self._k(*args, wrap=_wrap, unwrap=_unwrap_device)


class _RawModule:
    def __init__(self, *args, **kwargs) -> None:
        self._m = kernel_emulation.RawModule(*args, **kwargs)

    def get_function(self, name: str):
        fn = self._m.get_function(name)
        return lambda grid, block, args, **kw: fn(grid, block, args, unwrap=_unwrap_device)


def _unwrap_device(x):
    """A kernel argument: device arrays and scalars only (cupy refuses host arrays)."""
    if type(x) is np.ndarray:
        raise TypeError(f"Unsupported type {type(x)}")
    return x._a if type(x) is ndarray else x


_SPECIAL = {
    "ElementwiseKernel": _ElementwiseKernel,
    "RawModule": _RawModule,
    "ndarray": ndarray,
    "asarray": _upload,
    "asanyarray": _upload,
    "ascontiguousarray": lambda a, dtype=None: (
        ndarray(np.ascontiguousarray(a._a, dtype=dtype))
        if type(a) is ndarray
        else _upload(a, dtype, order="C")
    ),
    "array": _array,
    "asnumpy": _asnumpy,
    "cuda": _cuda,
    "random": types.SimpleNamespace(default_rng=_Generator),
    "lib": types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=_as_strided)),
    "get_array_module": lambda *a: sys.modules[__name__].xp,
    "__name__": "fake_cupy",
    "__version__": "0.0-fake",
}
# numpy names cupy does not have (so code must not rely on them for device arrays)
_MISSING = {"errstate", "seterr", "RawKernel", "fuse"}


class _Module(types.ModuleType):
    """`import cupy`: numpy's namespace with device arrays in and out."""

    def __getattr__(self, name: str):
        if name in _SPECIAL:
            return _SPECIAL[name]
        if name in _MISSING:
            raise AttributeError(f"module 'cupy' has no attribute '{name}'")
        attr = getattr(np, name)
        if isinstance(attr, np.ufunc):
            wrapped = _Ufunc(attr)
        elif isinstance(attr, type) or not callable(attr):
            return attr
        else:

            def wrapped(*args, __fn=attr, **kwargs):
                return _call(__fn, args, kwargs)

            wrapped.__name__ = name
        setattr(self, name, wrapped)
        return wrapped


xp = _Module("fake_cupy")


def install(monkeypatch) -> types.ModuleType:
    """Make shardgrad treat the fake module as cupy for the duration of a test."""
    from shardgrad import backend
    from shardgrad import random as sg_random

    SYNCS.clear()
    UPLOADS.clear()
    monkeypatch.setattr(backend, "_cupy", xp)
    monkeypatch.setattr(backend, "_cuda_ok", True)
    monkeypatch.setattr(sg_random, "_cuda_generators", {})
    for mod, flag in [] if kernel_emulation.NATIVE else _FUSED_SWITCHES:
        module = sys.modules.get(mod)
        if module is None:
            __import__(mod)
            module = sys.modules[mod]
        monkeypatch.setattr(module, flag, False)
    return xp


# Raw-kernel paths switched off on the fake device where kernels cannot run natively.
_FUSED_SWITCHES = [("shardgrad.optim._arrays", "FUSED")]
