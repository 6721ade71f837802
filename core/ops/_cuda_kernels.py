"""Fused CUDA kernels for the ops whose array code would launch many small kernels.

On the GPU a training step of a small model is bound by kernel launches, not arithmetic: an
activation's backward written with ufuncs (`g * (1 - y * y)`) is three launches and three
passes over memory where one would do. The ops listed in `SPECS` therefore run as one cupy
kernel each on CUDA arrays; their formulas are the ones torch's CUDA kernels use, in the same
order, so results agree to rounding.

Every function here takes and returns cupy arrays and is only called where `active(array)`
says so; ops keep their array (numpy/cupy) code for the CPU and as the reference that the
CUDA tests compare against. `ENABLED = False` switches every fused path off (the array code
then runs on the GPU too), which is how the two are checked against each other.

A kernel is compiled once per (kernel, dtype) on first use and cached by cupy on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import backend

ENABLED = True

# CUDA C spellings of the array dtypes the kernels accept
CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


@dataclass(frozen=True)
class ElementwiseSpec:
    """A cupy ElementwiseKernel: typed parameters (`T` is the float dtype) and a body."""

    in_params: str
    out_params: str
    body: str
    preamble: str = ""


@dataclass(frozen=True)
class RawSpec:
    """A templated `__global__` function, instantiated per float type with `<T>`."""

    source: str
    function: str


# ---------------------------------------------------------------- activations
_GELU_CONSTS = """
#define SG_SQRT1_2 0.70710678118654752440
#define SG_2_SQRTPI 1.12837916709551257390
#define SG_SQRT2 1.41421356237309504880
#define SG_KAPPA 0.044715
"""

SPECS: dict[str, ElementwiseSpec | RawSpec] = {
    # CUDA's erf/erfc are accurate to 2 ulp; the normal CDF from erfc keeps both tails
    "erf": ElementwiseSpec("T x", "T y", "y = erf(x);"),
    "ndtr": ElementwiseSpec("T x", "T y", "y = T(0.5) * erfc(-x * T(SG_SQRT1_2));", _GELU_CONSTS),
    # torch's threshold_backward(grad, result, 0): a select, so g = inf/nan stays put
    "relu_backward": ElementwiseSpec("T g, T y", "T gx", "gx = y <= T(0) ? T(0) : g;"),
    "tanh_backward": ElementwiseSpec("T g, T y", "T gx", "gx = g * (T(1) - y * y);"),
    "sigmoid_backward": ElementwiseSpec("T g, T y", "T gx", "gx = g * ((T(1) - y) * y);"),
    # exp(-|a|) so neither sign overflows: 1/(1+e) for a >= 0, e/(1+e) below
    "sigmoid": ElementwiseSpec(
        "T a", "T y", "T e = exp(-fabs(a)); T r = T(1) / (T(1) + e); y = a >= T(0) ? r : e * r;"
    ),
    # torch's GeluCUDAKernelImpl / GeluBackwardCUDAKernelImpl
    "gelu": ElementwiseSpec(
        "T x",
        "T y",
        "y = x * T(0.5) * (T(1) + erf(x * T(SG_SQRT1_2)));",
        _GELU_CONSTS,
    ),
    "gelu_backward": ElementwiseSpec(
        "T g, T x",
        "T gx",
        """
        const T kAlpha = T(SG_2_SQRTPI * SG_SQRT1_2 * 0.5);
        T cdf = T(0.5) * (T(1) + erf(x * T(SG_SQRT1_2)));
        T pdf = exp(T(-0.5) * x * x) * kAlpha;
        gx = g * (cdf + x * pdf);
        """,
        _GELU_CONSTS,
    ),
    "gelu_tanh": ElementwiseSpec(
        "T x",
        "T y",
        """
        const T kBeta = T(SG_SQRT2 * SG_2_SQRTPI * 0.5);
        T inner = kBeta * (x + T(SG_KAPPA) * (x * x * x));
        y = T(0.5) * x * (T(1) + tanh(inner));
        """,
        _GELU_CONSTS,
    ),
    "gelu_tanh_backward": ElementwiseSpec(
        "T g, T x",
        "T gx",
        """
        const T kBeta = T(SG_SQRT2 * SG_2_SQRTPI * 0.5);
        T x_sq = x * x;
        T inner = kBeta * (x + T(SG_KAPPA) * (x_sq * x));
        T th = tanh(inner);
        T left = T(0.5) * x;
        T right = T(1) + th;
        T left_derivative = T(0.5) * right;
        T inner_derivative = kBeta * (T(1) + T(3 * SG_KAPPA) * x_sq);
        T right_derivative = left * (T(1) - th * th) * inner_derivative;
        gx = g * (left_derivative + right_derivative);
        """,
        _GELU_CONSTS,
    ),
    # ------------------------------------------------------------ convolution and pooling
    # Index kernels over NCHW arrays; `i` is the flat index of the output element. The
    # geometry (g_*) is the one of _ConvGeom / _PoolGeom: stride, top/left padding, dilation.
    # im2col: cols[n, (c, ki, kj), (oh, ow)] = x[n, c, oh*sh - pt + ki*dh, ow*sw - pl + kj*dw],
    # zero outside the input (a conv's zero padding, without a padded copy).
    "im2col": ElementwiseSpec(
        "raw T x, int64 g_c, int64 g_h, int64 g_w, int64 g_kh, int64 g_kw, int64 g_oh, "
        "int64 g_ow, int64 g_sh, int64 g_sw, int64 g_pt, int64 g_pl, int64 g_dh, int64 g_dw",
        "T col",
        """
        long long np_ = g_oh * g_ow, nk_ = g_c * g_kh * g_kw;
        long long p_ = i % np_, k_ = (i / np_) % nk_, n_ = i / (np_ * nk_);
        long long c_ = k_ / (g_kh * g_kw), r_ = k_ % (g_kh * g_kw);
        long long h_ = (p_ / g_ow) * g_sh - g_pt + (r_ / g_kw) * g_dh;
        long long w_ = (p_ % g_ow) * g_sw - g_pl + (r_ % g_kw) * g_dw;
        col = (h_ >= 0 && h_ < g_h && w_ >= 0 && w_ < g_w)
            ? x[((n_ * g_c + c_) * g_h + h_) * g_w + w_] : T(0);
        """,
    ),
    # col2im, the adjoint: each input element gathers the patch entries that read it, in
    # (ki, kj) order (the order of the array code's strided adds), so no atomics are needed.
    "col2im": ElementwiseSpec(
        "raw T cols, int64 g_c, int64 g_h, int64 g_w, int64 g_kh, int64 g_kw, int64 g_oh, "
        "int64 g_ow, int64 g_sh, int64 g_sw, int64 g_pt, int64 g_pl, int64 g_dh, int64 g_dw",
        "T out",
        """
        long long w_ = i % g_w, h_ = (i / g_w) % g_h, c_ = (i / (g_w * g_h)) % g_c;
        long long n_ = i / (g_w * g_h * g_c);
        long long np_ = g_oh * g_ow, nk_ = g_c * g_kh * g_kw;
        T acc = T(0);
        for (long long ki = 0; ki < g_kh; ++ki) {
            long long hh = h_ + g_pt - ki * g_dh;
            if (hh < 0 || hh % g_sh != 0 || hh / g_sh >= g_oh) continue;
            for (long long kj = 0; kj < g_kw; ++kj) {
                long long ww = w_ + g_pl - kj * g_dw;
                if (ww < 0 || ww % g_sw != 0 || ww / g_sw >= g_ow) continue;
                long long k_ = (c_ * g_kh + ki) * g_kw + kj;
                acc += cols[(n_ * nk_ + k_) * np_ + (hh / g_sh) * g_ow + ww / g_sw];
            }
        }
        out = acc;
        """,
    ),
    # max pool: each window's maximum and the offset (ki * kw + kj) of its first maximum;
    # a NaN wins (the first one), as in torch. Outside the input counts as -inf.
    "maxpool": ElementwiseSpec(
        "raw T x, T neg_inf, int64 g_h, int64 g_w, int64 g_kh, int64 g_kw, int64 g_oh, "
        "int64 g_ow, int64 g_sh, int64 g_sw, int64 g_pt, int64 g_pl, int64 g_dh, int64 g_dw",
        "T out, int32 arg",
        """
        long long ow_ = i % g_ow, oh_ = (i / g_ow) % g_oh, nc_ = i / (g_ow * g_oh);
        T best = neg_inf;
        int best_k = 0;
        for (long long ki = 0; ki < g_kh; ++ki) {
            long long h_ = oh_ * g_sh - g_pt + ki * g_dh;
            for (long long kj = 0; kj < g_kw; ++kj) {
                long long w_ = ow_ * g_sw - g_pl + kj * g_dw;
                T v = (h_ >= 0 && h_ < g_h && w_ >= 0 && w_ < g_w)
                    ? x[(nc_ * g_h + h_) * g_w + w_] : neg_inf;
                if ((ki == 0 && kj == 0) || v > best || (v != v && best == best)) {
                    best = v;
                    best_k = (int)(ki * g_kw + kj);
                }
            }
        }
        out = best;
        arg = best_k;
        """,
    ),
    # its gradient: each input element gathers g from the windows whose maximum it was
    "maxpool_backward": ElementwiseSpec(
        "raw T g, raw int32 arg, int64 g_h, int64 g_w, int64 g_kh, int64 g_kw, int64 g_oh, "
        "int64 g_ow, int64 g_sh, int64 g_sw, int64 g_pt, int64 g_pl, int64 g_dh, int64 g_dw",
        "T gx",
        """
        long long w_ = i % g_w, h_ = (i / g_w) % g_h, nc_ = i / (g_w * g_h);
        T acc = T(0);
        for (long long ki = 0; ki < g_kh; ++ki) {
            long long hh = h_ + g_pt - ki * g_dh;
            if (hh < 0 || hh % g_sh != 0 || hh / g_sh >= g_oh) continue;
            for (long long kj = 0; kj < g_kw; ++kj) {
                long long ww = w_ + g_pl - kj * g_dw;
                if (ww < 0 || ww % g_sw != 0 || ww / g_sw >= g_ow) continue;
                long long o_ = (nc_ * g_oh + hh / g_sh) * g_ow + ww / g_sw;
                if (arg[o_] == ki * g_kw + kj) acc += g[o_];
            }
        }
        gx = acc;
        """,
    ),
    # ------------------------------------------------------------ softmax cross-entropy
    # d(loss)/d(logits) for class-index targets: (softmax - onehot) * scale per row, zero for
    # ignored rows. `c` is the class of flat index i (rows are contiguous, C per row).
    "xent_backward": ElementwiseSpec(
        "T x, int64 t, T lse, T scale, int64 n_classes, int64 ignore",
        "T gx",
        """
        long long c = i % n_classes;
        gx = t == ignore ? T(0) : (exp(x - lse) - (c == t ? T(1) : T(0))) * scale;
        """,
    ),
    # One warp per row: max, then sum of exp(x - max), with shuffles; lane 0 writes the row's
    # log-sum-exp and its loss -(x[t] - max - log(sum)) (torch's log_softmax + nll_loss order).
    "xent_forward": RawSpec(
        r"""
template <typename T>
__device__ __forceinline__ T sg_warp_max(T v) {
    for (int off = 16; off > 0; off >>= 1) {
        T o = __shfl_xor_sync(0xffffffffu, v, off);
        v = (o > v || o != o) ? o : v;  /* NaN wins, as in torch's max */
    }
    return v;
}

template <typename T>
__device__ __forceinline__ T sg_warp_sum(T v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

template <typename T>
__global__ void sg_xent_forward(const T* __restrict__ x, const long long* __restrict__ t,
                                T* __restrict__ loss, T* __restrict__ lse,
                                long long n_rows, long long n_classes, long long ignore) {
    long long row = (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= n_rows) return;  /* whole warps leave together */
    const T* xr = x + row * n_classes;
    T m = -(T)__int_as_float(0x7f800000);  /* -inf */
    for (long long j = lane; j < n_classes; j += 32) {
        T v = xr[j];
        m = (v > m || v != v) ? v : m;
    }
    m = sg_warp_max(m);
    T shift = isinf(m) ? T(0) : m;  /* all -inf (or an inf) row: no inf - inf */
    T s = T(0);
    for (long long j = lane; j < n_classes; j += 32) s += exp(xr[j] - shift);
    s = sg_warp_sum(s);
    if (lane == 0) {
        T log_s = log(s);
        lse[row] = shift + log_s;
        long long k = t[row];
        if (k == ignore) loss[row] = T(0);
        else if (k < 0 || k >= n_classes) loss[row] = __int_as_float(0x7fc00000);  /* NaN */
        else loss[row] = -((xr[k] - shift) - log_s);
    }
}
""",
        "sg_xent_forward",
    ),
}

_compiled: dict = {}


def active(array) -> bool:
    """Whether the fused kernels apply to `array` (a float32/float64 cupy array)."""
    return ENABLED and backend.is_cuda_array(array) and array.dtype in CTYPES


def _elementwise(name: str):
    kernel = _compiled.get(name)
    if kernel is None:
        spec = SPECS[name]
        kernel = backend.cupy().ElementwiseKernel(
            spec.in_params, spec.out_params, spec.body, f"sg_{name}", preamble=spec.preamble
        )
        _compiled[name] = kernel
    return kernel


def _raw(name: str, dtype):
    key = (name, dtype)
    fn = _compiled.get(key)
    if fn is None:
        spec = SPECS[name]
        cp = backend.cupy()
        expr = f"{spec.function}<{CTYPES[dtype]}>"
        module = cp.RawModule(code=spec.source, name_expressions=[expr])
        fn = _compiled[key] = module.get_function(expr)
    return fn


def _run(name: str, *args):
    """Launch an elementwise kernel on the device of its first array argument."""
    with args[0].device:
        return _elementwise(name)(*args)


# ---------------------------------------------------------------- public entry points
def erf(x):
    return _run("erf", x)


def ndtr(x):
    return _run("ndtr", x)


def relu_backward(g, y):
    return _run("relu_backward", g, y)


def tanh_backward(g, y):
    return _run("tanh_backward", g, y)


def sigmoid(a):
    return _run("sigmoid", a)


def sigmoid_backward(g, y):
    return _run("sigmoid_backward", g, y)


def gelu(x, approximate: str = "none"):
    return _run("gelu_tanh" if approximate == "tanh" else "gelu", x)


def gelu_backward(g, x, approximate: str = "none"):
    return _run("gelu_tanh_backward" if approximate == "tanh" else "gelu_backward", g, x)


def _geometry(kh, kw, out_hw, stride, pads, dilation) -> tuple:
    i64 = np.int64
    return (i64(kh), i64(kw), i64(out_hw[0]), i64(out_hw[1]), i64(stride[0]), i64(stride[1]),
            i64(pads[0]), i64(pads[2]), i64(dilation[0]), i64(dilation[1]))  # fmt: skip


def im2col(x, kernel, out_hw, stride, pads, dilation):
    """(N, C*kh*kw, OH*OW) patches of NCHW `x` (zero padding), as _im2col's array code."""
    cp = backend.cupy()
    n, c, h, w = x.shape
    kh, kw = kernel
    with x.device:
        x = cp.ascontiguousarray(x)
        cols = cp.empty((n, c * kh * kw, out_hw[0] * out_hw[1]), dtype=x.dtype)
        geometry = _geometry(kh, kw, out_hw, stride, pads, dilation)
        return _elementwise("im2col")(x, np.int64(c), np.int64(h), np.int64(w), *geometry, cols)


def col2im(cols, in_shape, kernel, out_hw, stride, pads, dilation):
    """The adjoint of im2col: (N, C*kh*kw, OH*OW) patch values summed onto (N, C, H, W)."""
    cp = backend.cupy()
    n, c, h, w = in_shape
    with cols.device:
        cols = cp.ascontiguousarray(cols)
        out = cp.empty((n, c, h, w), dtype=cols.dtype)
        geometry = _geometry(*kernel, out_hw, stride, pads, dilation)
        return _elementwise("col2im")(cols, np.int64(c), np.int64(h), np.int64(w), *geometry, out)


def maxpool(x, kernel, out_hw, stride, pads, dilation):
    """(window maxima, int32 offsets of the first maxima) of NCHW `x`."""
    cp = backend.cupy()
    n, c, h, w = x.shape
    with x.device:
        x = cp.ascontiguousarray(x)
        out = cp.empty((n, c, *out_hw), dtype=x.dtype)
        arg = cp.empty((n, c, *out_hw), dtype=np.int32)
        geometry = _geometry(*kernel, out_hw, stride, pads, dilation)
        neg_inf = x.dtype.type(-np.inf)
        return _elementwise("maxpool")(x, neg_inf, np.int64(h), np.int64(w), *geometry, out, arg)


def maxpool_backward(g, arg, in_shape, kernel, out_hw, stride, pads, dilation):
    """Each window's gradient onto its first maximum (summed where windows overlap)."""
    cp = backend.cupy()
    n, c, h, w = in_shape
    with g.device:
        g = cp.ascontiguousarray(g)
        arg = cp.ascontiguousarray(arg, dtype=np.int32)
        out = cp.empty((n, c, h, w), dtype=g.dtype)
        geometry = _geometry(*kernel, out_hw, stride, pads, dilation)
        return _elementwise("maxpool_backward")(g, arg, np.int64(h), np.int64(w), *geometry, out)


_WARPS_PER_BLOCK = 8


def xent_forward(logits, target, ignore_index: int):
    """Per-row losses and log-sum-exps of (N, C) logits against (N,) int64 class indices."""
    cp = backend.cupy()
    n, c = logits.shape
    with logits.device:
        x = cp.ascontiguousarray(logits)
        t = cp.ascontiguousarray(target, dtype=np.int64)
        loss = cp.empty(n, dtype=x.dtype)
        lse = cp.empty(n, dtype=x.dtype)
        if n:
            grid = ((n + _WARPS_PER_BLOCK - 1) // _WARPS_PER_BLOCK,)
            _raw("xent_forward", x.dtype)(
                grid,
                (32 * _WARPS_PER_BLOCK,),
                (x, t, loss, lse, np.int64(n), np.int64(c), np.int64(ignore_index)),
            )
    return loss, lse


def xent_backward(logits, target, lse, scale, ignore_index: int):
    """(softmax(logits) - onehot(target)) * scale[:, None], zero on ignored rows. `scale` is
    a 0-d or (N,) array (the incoming gradient divided by the mean's denominator)."""
    cp = backend.cupy()
    n, c = logits.shape
    with logits.device:
        scale = scale.reshape(-1, 1) if scale.ndim else scale
        out = cp.empty((n, c), dtype=logits.dtype)
        return _elementwise("xent_backward")(
            logits,
            target.astype(np.int64, copy=False).reshape(-1, 1),
            lse.reshape(-1, 1),
            scale.astype(logits.dtype, copy=False),
            np.int64(c),
            np.int64(ignore_index),
            out,
        )
