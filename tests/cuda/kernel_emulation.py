"""numpy stand-ins for shardgrad's CUDA kernels, for the fake device (fake_cupy.py).

They follow each kernel's CUDA source (core/ops/_cuda_kernels.py) line for line, and the
calling conventions of cupy's ElementwiseKernel (broadcast inputs, one type `T` shared by the
T-typed parameters, optional output arrays, the flat index `i`) and RawModule launches
(grid, block, args). So on a machine without a GPU the code around each kernel (argument
order, shapes, dtypes, launch sizes, the reductions after it) runs for real; only the CUDA C
itself is left to the GPU tests, and to NVRTC for compiling.
"""

from __future__ import annotations

import math
import os

import cpu_kernels
import numpy as np

_SQRT1_2 = 0.70710678118654752440
_2_SQRTPI = 1.12837916709551257390
_SQRT2 = 1.41421356237309504880
_KAPPA = 0.044715

_erf = np.frompyfunc(math.erf, 1, 1)
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _f(fn, x):
    return np.asarray(fn(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def _gelu_backward(g, x):
    k_alpha = _2_SQRTPI * _SQRT1_2 * 0.5
    cdf = 0.5 * (1 + _f(_erf, x * _SQRT1_2))
    pdf = np.exp(-0.5 * x * x) * k_alpha
    return {"gx": g * (cdf + x * pdf)}


def _gelu_tanh(x):
    k_beta = _SQRT2 * _2_SQRTPI * 0.5
    inner = k_beta * (x + _KAPPA * (x * x * x))
    return {"y": 0.5 * x * (1 + np.tanh(inner))}


def _gelu_tanh_backward(g, x):
    k_beta = _SQRT2 * _2_SQRTPI * 0.5
    x_sq = x * x
    th = np.tanh(k_beta * (x + _KAPPA * (x_sq * x)))
    left = 0.5 * x
    left_derivative = 0.5 * (1 + th)
    inner_derivative = k_beta * (1 + 3 * _KAPPA * x_sq)
    right_derivative = left * (1 - th * th) * inner_derivative
    return {"gx": g * (left_derivative + right_derivative)}


def _sigmoid(a):
    e = np.exp(-np.abs(a))
    r = 1 / (1 + e)
    return {"y": np.where(a >= 0, r, e * r)}


def _xent_backward(x, t, lse, scale, n_classes, ignore, i):
    c = i % n_classes
    with np.errstate(invalid="ignore", over="ignore"):
        val = (np.exp(x - lse) - (c == t)) * scale
    return {"gx": np.where(t == ignore, 0, val)}


def _geom(v: dict) -> dict:
    def pair(a, b):
        return int(v[a].flat[0]), int(v[b].flat[0])

    return dict(hw=pair("g_h", "g_w"), k=pair("g_kh", "g_kw"), out=pair("g_oh", "g_ow"),
                s=pair("g_sh", "g_sw"), p=pair("g_pt", "g_pl"), d=pair("g_dh", "g_dw"))  # fmt: skip


def _windows(geo):
    """(ki, kj, rows, cols) of each kernel offset: input coordinates per output position."""
    (oh, ow), (sh, sw), (pt, pl), (dh, dw) = geo["out"], geo["s"], geo["p"], geo["d"]
    for ki in range(geo["k"][0]):
        for kj in range(geo["k"][1]):
            yield ki, kj, np.arange(oh) * sh - pt + ki * dh, np.arange(ow) * sw - pl + kj * dw


def _gather(x, rows, cols, fill):
    """x[..., rows, cols] for every (row, col) pair, `fill` outside the input."""
    h, w = x.shape[-2:]
    ok = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    vals = x[..., np.clip(rows, 0, h - 1)[:, None], np.clip(cols, 0, w - 1)[None, :]]
    return np.where(ok, vals, fill)


def _scatter_add(acc, rows, cols, vals):
    """acc[..., rows, cols] += vals for the in-range (row, col) pairs."""
    h, w = acc.shape[-2:]
    r_ok, c_ok = (rows >= 0) & (rows < h), (cols >= 0) & (cols < w)
    vals = vals[..., r_ok, :][..., c_ok]
    np.add.at(acc, (Ellipsis, rows[r_ok][:, None], cols[c_ok][None, :]), vals)


def _im2col(v: dict) -> dict:
    geo, col = _geom(v), v["col"]
    n, c, (kh, kw) = col.shape[0], int(v["g_c"].flat[0]), geo["k"]
    x4 = v["x"].reshape(n, c, *geo["hw"])
    out = np.empty((n, c, kh, kw, *geo["out"]), dtype=col.dtype)
    for ki, kj, rows, cols in _windows(geo):
        out[:, :, ki, kj] = _gather(x4, rows, cols, 0)
    return {"col": out.reshape(col.shape)}


def _col2im(v: dict) -> dict:
    geo, out = _geom(v), v["out"]
    n, c, (kh, kw) = out.shape[0], int(v["g_c"].flat[0]), geo["k"]
    c6 = v["cols"].reshape(n, c, kh, kw, *geo["out"])
    acc = np.zeros((n, c, *geo["hw"]), dtype=out.dtype)
    for ki, kj, rows, cols in _windows(geo):
        _scatter_add(acc, rows, cols, c6[:, :, ki, kj])
    return {"out": acc.reshape(out.shape)}


def _maxpool(v: dict) -> dict:
    geo, out = _geom(v), v["out"]
    nc = out.size // (geo["out"][0] * geo["out"][1])
    x3 = v["x"].reshape(nc, *geo["hw"])
    fill = v["neg_inf"].flat[0]
    best = np.full((nc, *geo["out"]), fill, dtype=out.dtype)
    arg = np.zeros((nc, *geo["out"]), dtype=np.int32)
    for ki, kj, rows, cols in _windows(geo):
        val = _gather(x3, rows, cols, fill)
        take = (ki == 0 and kj == 0) | (val > best) | (np.isnan(val) & ~np.isnan(best))
        best = np.where(take, val, best)
        arg = np.where(take, ki * geo["k"][1] + kj, arg).astype(np.int32)
    return {"out": best.reshape(out.shape), "arg": arg.reshape(out.shape)}


def _maxpool_backward(v: dict) -> dict:
    geo, gx = _geom(v), v["gx"]
    nc = gx.size // (geo["hw"][0] * geo["hw"][1])
    g3 = v["g"].reshape(nc, *geo["out"])
    a3 = v["arg"].reshape(nc, *geo["out"])
    acc = np.zeros((nc, *geo["hw"]), dtype=gx.dtype)
    for ki, kj, rows, cols in _windows(geo):
        _scatter_add(acc, rows, cols, np.where(a3 == ki * geo["k"][1] + kj, g3, 0))
    return {"gx": acc.reshape(gx.shape)}


# index kernels: their parameters (and output) arrive by name, broadcast values unused
INDEX = {
    "sg_im2col": _im2col, "sg_col2im": _col2im, "sg_maxpool": _maxpool,
    "sg_maxpool_backward": _maxpool_backward,
}  # fmt: skip

ELEMENTWISE = {
    "sg_relu_backward": lambda g, y: {"gx": np.where(y <= 0, 0, g)},
    "sg_tanh_backward": lambda g, y: {"gx": g * (1 - y * y)},
    "sg_sigmoid_backward": lambda g, y: {"gx": g * ((1 - y) * y)},
    "sg_sigmoid": _sigmoid,
    "sg_gelu": lambda x: {"y": x * 0.5 * (1 + _f(_erf, x * _SQRT1_2))},
    "sg_gelu_backward": _gelu_backward,
    "sg_gelu_tanh": _gelu_tanh,
    "sg_gelu_tanh_backward": _gelu_tanh_backward,
    "sg_erf": lambda x: {"y": _f(_erf, x)},
    "sg_ndtr": lambda x: {"y": 0.5 * _f(_erfc, -x * _SQRT1_2)},
    "sg_xent_backward": _xent_backward,
}


def xent_forward(x, t, loss, lse, n_rows, n_classes, ignore, grid, block):
    warps = grid[0] * (block[0] // 32)
    assert block[0] % 32 == 0 and warps >= n_rows, "launch covers fewer rows than the input"
    assert x.flags.c_contiguous and t.flags.c_contiguous and t.dtype == np.int64
    assert x.shape == (n_rows, n_classes) and loss.shape == lse.shape == (n_rows,)
    for row in range(int(n_rows)):
        xr = x[row].astype(np.float64)
        m = np.max(xr) if not np.isnan(xr).any() else np.nan
        shift = 0.0 if np.isinf(m) else m
        log_s = np.log(np.exp(xr - shift).sum())
        lse[row] = shift + log_s
        k = int(t[row])
        if k == ignore:
            loss[row] = 0
        elif k < 0 or k >= n_classes:
            loss[row] = np.nan
        else:
            loss[row] = -((xr[k] - shift) - log_s)


RAW = {"sg_xent_forward": xent_forward}


# ---------------------------------------------------------------- cupy's calling conventions
_CTYPE_NAMES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32,
                "bool": np.bool_}  # fmt: skip


def _parse(params: str) -> list[tuple[bool, str, str]]:
    out = []
    for part in (p.strip() for p in params.split(",") if p.strip()):
        words = part.split()
        out.append((words[0] == "raw", words[-2], words[-1]))
    return out


# Run kernel bodies compiled for the CPU (cpu_kernels.py) where a C++ compiler is present;
# else their numpy emulations above.
NATIVE = cpu_kernels.available() and os.environ.get("SG_FAKE_KERNELS", "native") == "native"


class ElementwiseKernel:
    def __init__(self, in_params, out_params, operation, name, preamble="", **kwargs) -> None:
        known = name in ELEMENTWISE or name in INDEX
        if not known and not NATIVE:
            raise NotImplementedError(f"no CPU version of kernel {name}")
        self.ins, self.outs, self.name = _parse(in_params), _parse(out_params), name
        # kernels other than shardgrad's op kernels (the optimizers' updates) run natively
        self.spec = None if known else cpu_kernels.Spec(in_params, out_params, operation, preamble)

    def __call__(self, *args, wrap, unwrap):
        n_in = len(self.ins)
        if len(args) not in (n_in, n_in + len(self.outs)):
            raise TypeError(f"{self.name}: wrong number of arguments ({len(args)})")
        values, t_dtype, shapes = {}, None, []
        for (raw, typ, name), a in zip(self.ins, args[:n_in]):
            arr = unwrap(a)  # raises TypeError for host arrays, as cupy
            if typ == "T":
                if not isinstance(arr, np.ndarray | np.generic):
                    raise TypeError(f"{self.name}: {name} must be typed (got a Python scalar)")
                if t_dtype is None:
                    t_dtype = arr.dtype
                elif arr.dtype != t_dtype:
                    raise TypeError(f"Type is mismatched. {name} {arr.dtype} {t_dtype}")
            arr = np.asarray(arr) if typ == "T" else np.asarray(arr, _CTYPE_NAMES[typ])
            values[name] = arr
            if not raw:
                shapes.append(arr.shape)
        given = [unwrap(o) for o in args[n_in:]]
        shapes += [o.shape for o in given]
        shape = np.broadcast_shapes(*shapes)
        outs = given or [
            np.empty(shape, dtype=t_dtype if typ == "T" else _CTYPE_NAMES[typ])
            for _, typ, _ in self.outs
        ]
        for o, (_, typ, name) in zip(outs, self.outs):
            want = t_dtype if typ == "T" else np.dtype(_CTYPE_NAMES[typ])
            if o.dtype != want or o.shape != shape:
                raise TypeError(f"{self.name}: output {name} is {o.dtype}{o.shape}")
        if self.spec is not None:
            cpu_kernels.run({"k": self.spec}, "k", list(values.values()), outs)
        elif NATIVE:
            from shardgrad.ops import _cuda_kernels

            specs = {k: v for k, v in _cuda_kernels.SPECS.items() if hasattr(v, "in_params")}
            cpu_kernels.run(specs, self.name[3:], list(values.values()), outs)
        elif self.name in INDEX:
            named = dict(values, **{name: o for o, (_, _, name) in zip(outs, self.outs)})
            result = INDEX[self.name](named)
            for o, (_, _, name) in zip(outs, self.outs):
                o[...] = result[name]
        else:
            full = {k: np.broadcast_to(v, shape) for k, v in values.items()}
            full["i"] = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
            fn = ELEMENTWISE[self.name]
            wanted = fn.__code__.co_varnames[: fn.__code__.co_argcount]
            result = fn(**{k: full[k] for k in wanted})
            for o, (_, _, name) in zip(outs, self.outs):
                o[...] = np.asarray(result[name]).astype(o.dtype)
        wrapped = [a if given else wrap(o) for a, o in zip(args[n_in:] or outs, outs)]
        return wrapped[0] if len(wrapped) == 1 else tuple(wrapped)


class RawFunction:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, grid, block, args, *, unwrap):
        base = self.name.split("<")[0]
        arrays = [unwrap(a) for a in args]
        RAW[base](*arrays, grid=tuple(grid), block=tuple(block))


class RawModule:
    def __init__(self, code: str = "", name_expressions=(), **kwargs) -> None:
        self.names = set(name_expressions)

    def get_function(self, name: str) -> RawFunction:
        if name not in self.names:
            raise KeyError(f"{name} was not among the name_expressions")
        if name.split("<")[0] not in RAW:
            raise NotImplementedError(f"no numpy emulation of kernel {name}")
        return RawFunction(name)
