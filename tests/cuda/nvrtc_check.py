"""Compile shardgrad's CUDA kernel sources with NVRTC, which needs no GPU.

cupy builds an ElementwiseKernel into a `__global__` function around its body; here the
same body goes into an equivalent translation unit (parameters as typed locals, `i` the flat
index, `T` the float type), so syntax errors, unknown identifiers and type mistakes show up
on any machine with the NVRTC library, long before a GPU run.
"""

from __future__ import annotations

_CTYPES = {
    "float32": "float", "float64": "double", "float16": "__half", "int64": "long long",
    "int32": "int", "int16": "short", "int8": "signed char", "uint8": "unsigned char",
    "bool": "bool",
}  # fmt: skip


def nvrtc_available() -> str | None:
    """None when NVRTC can compile here, else the reason it cannot."""
    try:
        compile_source('extern "C" __global__ void sg_probe(float* x) { x[0] = erff(1.0f); }')
    except Exception as exc:  # noqa: BLE001 - missing cupy, missing libnvrtc, ...
        return f"{type(exc).__name__}: {exc}"
    return None


def compile_source(source: str, arch: str = "compute_90") -> bytes:
    """PTX for `source`; raises cupy's CompileException with NVRTC's log on errors."""
    from cupy.cuda import compiler

    prog = compiler._NVRTCProgram(source, "sg_check.cu", (), (), method="ptx")
    ptx, _ = prog.compile((f"-arch={arch}", "--device-as-default-execution-space"))
    return ptx


def _params(spec: str, ctype: str, is_out: bool) -> tuple[list[str], list[str]]:
    """(kernel arguments, local declarations) for an ElementwiseKernel parameter list."""
    args, decls = [], []
    for k, part in enumerate(p.strip() for p in spec.split(",") if p.strip()):
        words = part.split()
        raw = words[0] == "raw"
        typ, name = words[-2], words[-1]
        c = ctype if typ == "T" else _CTYPES[typ]
        ptr = f"_p{'o' if is_out else 'i'}{k}"
        if raw:
            args.append(f"{'' if is_out else 'const '}{c}* {ptr}")
            decls.append(f"{'' if is_out else 'const '}{c}* {name} = {ptr};")
        elif is_out:
            args.append(f"{c}* {ptr}")
            decls.append(f"{c}& {name} = {ptr}[i];")
        else:
            args.append(f"const {c}* {ptr}")
            decls.append(f"const {c} {name} = {ptr}[i];")
    return args, decls


def elementwise_source(
    in_params: str, out_params: str, body: str, preamble: str, ctype: str
) -> str:
    in_args, in_decls = _params(in_params, ctype, False)
    out_args, out_decls = _params(out_params, ctype, True)
    args = ", ".join([*in_args, *out_args, "long long _n"])
    decls = "\n    ".join(in_decls + out_decls)
    return f"""typedef {ctype} T;
{preamble}
extern "C" __global__ void sg_check({args}) {{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= _n) return;
    {decls}
    {body}
}}
"""


def raw_source(source: str, function: str, ctype: str) -> str:
    """A templated kernel with an explicit instantiation for `ctype` (what cupy's
    name_expressions make it compile)."""
    return f"{source}\ntemplate __global__ decltype({function}<{ctype}>) {function}<{ctype}>;\n"
