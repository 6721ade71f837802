"""Run the bodies of shardgrad's CUDA ElementwiseKernels on the CPU, compiled with g++.

An ElementwiseKernel body is C++ over one output index `i`; wrapped in a loop over `i`, with
the same typed parameters (`raw` arrays as pointers, other inputs as per-element values,
outputs as references), it compiles with any C++ compiler. The fake device (fake_cupy.py)
uses these builds, so on a machine without a GPU the CUDA code itself runs, indexing and
all, and its results are compared with the array code and with torch.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np

_CTYPES = {
    "float32": "float", "float64": "double", "int64": "long long", "int32": "int",
    "int8": "signed char", "uint8": "unsigned char", "bool": "bool",
}  # fmt: skip
_NP = {"float": np.float32, "double": np.float64}

_PRELUDE = """
#include <cmath>
#include <cstdint>
using namespace std;
"""

_libs: dict = {}  # loaded libraries by source hash


class Spec:
    """An ElementwiseKernel's parts, for kernels built at run time (the optimizers')."""

    def __init__(self, in_params: str, out_params: str, body: str, preamble: str = "") -> None:
        self.in_params, self.out_params, self.body, self.preamble = (
            in_params, out_params, body, preamble
        )  # fmt: skip


def available() -> bool:
    return shutil.which(os.environ.get("CXX", "g++")) is not None


def _parse(params: str) -> list[tuple[bool, str, str]]:
    out = []
    for part in (p.strip() for p in params.split(",") if p.strip()):
        words = part.split()
        out.append((words[0] == "raw", words[-2], words[-1]))
    return out


def _ctype(typ: str, t: str) -> str:
    return t if typ == "T" else _CTYPES[typ]


def source(name: str, spec, t: str) -> str:
    """A C function `sg_<name>(n, ptrs)` running the body for i in [0, n)."""
    lines, decls = [], []
    ins, outs = _parse(spec.in_params), _parse(spec.out_params)
    for k, (raw, typ, pname) in enumerate(ins):
        c = _ctype(typ, t)
        if raw:
            decls.append(f"const {c}* {pname} = (const {c}*)ptrs[{k}];")
        else:
            lines.append(f"const {c} {pname} = ((const {c}*)ptrs[{k}])[i];")
    for k, (_, typ, pname) in enumerate(outs, start=len(ins)):
        c = _ctype(typ, t)
        lines.append(f"{c}& {pname} = (({c}*)ptrs[{k}])[i];")
    body = "\n        ".join(lines)
    return f"""
namespace sg_{name}_{t} {{
typedef {t} T;
{spec.preamble}
extern "C" void sg_{name}_{t}(long long n, void** ptrs) {{
    {" ".join(decls)}
    for (long long i = 0; i < n; ++i) {{
        {body}
        {spec.body}
    }}
}}
}}
"""


def _cache_dir() -> str:
    """Built libraries are kept between runs, keyed by their source's hash."""
    path = os.environ.get("SG_CPU_KERNEL_CACHE") or os.path.join(
        tempfile.gettempdir(), f"sg_cpu_kernels_{os.getuid()}"
    )
    os.makedirs(path, exist_ok=True)
    return path


def _library(specs: dict, t: str):
    """Build (once) one shared library holding every kernel for float type `t`."""
    text = _PRELUDE + "".join(source(name, spec, t) for name, spec in sorted(specs.items()))
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    lib = _libs.get(key)
    if lib is None:
        so = os.path.join(_cache_dir(), f"k_{key}.so")
        if not os.path.exists(so):
            with tempfile.TemporaryDirectory() as tmp:
                src, built = os.path.join(tmp, "k.cpp"), os.path.join(tmp, "k.so")
                with open(src, "w") as f:
                    f.write(text)
                cxx = os.environ.get("CXX", "g++")
                flags = ["-O0", "-shared", "-fPIC", "-fno-fast-math", "-ffp-contract=off"]
                subprocess.run(
                    [cxx, *flags, "-o", built, src], check=True, capture_output=True, timeout=300
                )
                os.replace(built, so)  # atomic: parallel test processes may race here
        lib = _libs[key] = ctypes.CDLL(so)
    return lib


def run(specs: dict, name: str, inputs: list, outputs: list) -> None:
    """Run kernel `name` with cupy's conventions: non-raw inputs broadcast to the outputs'
    shape, raw inputs as C-contiguous arrays, outputs written in place."""
    spec = specs[name]
    ins = _parse(spec.in_params)
    t_dtype = None
    for (_raw, typ, _), a in zip(ins, inputs):
        if typ == "T":
            t_dtype = np.asarray(a).dtype
            break
    t = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[t_dtype]
    shape = outputs[0].shape
    keep = []
    ptrs = (ctypes.c_void_p * (len(inputs) + len(outputs)))()
    for k, ((raw, typ, pname), a) in enumerate(zip(ins, inputs)):
        dtype = t_dtype if typ == "T" else np.dtype(typ)
        arr = np.asarray(a)
        if arr.dtype != dtype:
            raise TypeError(f"{name}: {pname} is {arr.dtype}, the kernel wants {dtype}")
        arr = (
            np.ascontiguousarray(arr) if raw else np.ascontiguousarray(np.broadcast_to(arr, shape))
        )
        keep.append(arr)
        ptrs[k] = arr.ctypes.data
    for k, out in enumerate(outputs, start=len(inputs)):
        if not out.flags.c_contiguous or out.shape != shape:
            raise ValueError(f"{name}: outputs must be C-contiguous and of one shape")
        ptrs[k] = out.ctypes.data
    fn = getattr(_library(specs, t), f"sg_{name}_{t}")
    fn.argtypes = [ctypes.c_longlong, ctypes.POINTER(ctypes.c_void_p)]
    fn(int(np.prod(shape)), ptrs)
