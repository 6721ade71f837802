"""Fused neural-network ops behind `nn.functional`.

Each op computes its forward on arrays in one pass (numerically stable where it matters:
softmax, log-softmax, logits losses) and writes its backward with Tensor ops, so
`create_graph=True` differentiates the backward again. Where a fast array-only backward is
worth it (GELU, SiLU, norms), the op takes it only when no graph is being recorded,
which is exactly when the Tensor-op path would have recorded nothing.

Convolution and pooling work on NCHW arrays through strided slices, one per kernel offset:
a convolution is one im2col copy plus per-sample GEMMs, and its input gradient scatters back
with a loop over kernel offsets only. The three convolution ops (forward, input gradient,
weight gradient) are each other's backward, which closes the set under repeated
differentiation; max pooling's scatter and gather pair does the same.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import grad_mode
from ..autograd.node import Op
from ..backend import xp_of
from ..tensor import Tensor
from . import _cuda_kernels as _kernels
from ._util import reduce_grad
from ._view import add_at
from .elementwise import where


def _const(array) -> Tensor:
    """A constant operand (no history) for backward formulas."""
    return Tensor._make(array)


def _recording() -> bool:
    """True while backward must itself be differentiable (create_graph=True)."""
    return grad_mode.state.enabled


# ================================================================ erf (no scipy at run time)
# erf(x) = x * P(x^2) on |x| <= 1, and erfc(x) = exp(-x^2) * Q_i(x) on a few intervals, with
# P and Q_i Chebyshev interpolants of smooth functions built once from `math.erf(c)`; beyond
# the last interval the asymptotic series of erfcx is exact to well below double precision.
_ERF_PIECES: list | None = None
_ERFC_EDGES = (1.0, 2.0, 3.5, 6.0, 10.0)


def _cheb_fit(fn, lo: float, hi: float, deg: int) -> tuple:
    k = np.arange(deg + 1)
    t = np.cos(np.pi * (k + 0.5) / (deg + 1))
    x = 0.5 * (hi - lo) * t + 0.5 * (hi + lo)
    y = np.array([fn(float(v)) for v in x])
    coeffs = np.polynomial.chebyshev.chebfit(t, y, deg)
    return lo, hi, tuple(float(c) for c in coeffs)


def _pieces() -> list:
    global _ERF_PIECES
    if _ERF_PIECES is None:
        small = _cheb_fit(
            lambda u: math.erf(math.sqrt(u)) / math.sqrt(u) if u > 0 else 2 / math.sqrt(math.pi),
            0.0,
            1.0,
            22,
        )
        erfcx = lambda v: math.erfc(v) * math.exp(v * v)  # noqa: E731
        big = [_cheb_fit(erfcx, lo, hi, 30) for lo, hi in zip(_ERFC_EDGES[:-1], _ERFC_EDGES[1:])]
        _ERF_PIECES = [small, *big]
    return _ERF_PIECES


def _cheb_eval(piece: tuple, x):
    lo, hi, coeffs = piece
    t = (2.0 * x - (hi + lo)) / (hi - lo)
    b1 = b2 = 0.0
    for c in coeffs[:0:-1]:
        b1, b2 = 2.0 * t * b1 - b2 + c, b1
    return t * b1 - b2 + coeffs[0]


def _erfc_pos(a):
    """erfc(a) for a >= 1 (float64 array)."""
    xp = xp_of(a)
    pieces = _pieces()
    out = xp.empty_like(a)
    for (lo, hi, coeffs), start in zip(pieces[1:], _ERFC_EDGES[:-1]):
        m = (a >= start) & (a < hi)
        if m.any():
            v = a[m]
            out[m] = xp.exp(-v * v) * _cheb_eval((lo, hi, coeffs), v)
    m = a >= _ERFC_EDGES[-1]
    if m.any():
        v = a[m]
        s = 1.0 / (2.0 * v * v)
        series = 1.0 + s * (
            -1.0 + s * (3.0 + s * (-15.0 + s * (105.0 + s * (-945.0 + s * 10395.0))))
        )
        out[m] = xp.exp(-v * v) / (v * math.sqrt(math.pi)) * series
    return out


def erf_array(x):
    """erf on an array, accurate to a few ulps in float64."""
    if _kernels.active(x):
        return _kernels.erf(x)
    xp = xp_of(x)
    a = xp.abs(x).astype(np.float64)
    out = xp.empty_like(a)
    small = a < 1.0
    if small.any():
        v = a[small]
        out[small] = v * _cheb_eval(_pieces()[0], v * v)
    big = ~small
    if big.any():
        out[big] = 1.0 - _erfc_pos(a[big])
    out = xp.copysign(out, x)
    return out.astype(x.dtype, copy=False)


def ndtr_array(x):
    """The standard normal CDF, accurate in both tails (erfc for the left one)."""
    if _kernels.active(x):
        return _kernels.ndtr(x)
    xp = xp_of(x)
    z = x.astype(np.float64) / math.sqrt(2.0)
    out = xp.empty_like(z)
    left = z < -1.0
    if left.any():
        out[left] = 0.5 * _erfc_pos(-z[left])
    rest = ~left
    if rest.any():
        out[rest] = 0.5 * (1.0 + erf_array(z[rest]))
    return out.astype(x.dtype, copy=False)


class NormalCdf(Op):
    save_inputs = (0,)

    def forward(self, a):
        return ndtr_array(a)

    def backward(self, g):
        (a,) = self.saved
        return g * _normal_pdf(a)


def _normal_pdf(a: Tensor) -> Tensor:
    return (a * a * -0.5).exp() * (1.0 / math.sqrt(2.0 * math.pi))


# ================================================================ activations
class Gelu(Op):
    save_inputs = (0,)

    def forward(self, a, approximate="none"):
        self.approximate = approximate
        if _kernels.active(a):  # one kernel each way on the GPU; backward recomputes cdf
            return _kernels.gelu(a, approximate)
        xp = xp_of(a)
        if approximate == "tanh":
            k = math.sqrt(2.0 / math.pi)
            inner = k * (a + 0.044715 * a * a * a)
            th = xp.tanh(inner)
            self.extras = th
            return 0.5 * a * (1.0 + th)
        cdf = ndtr_array(a)
        self.extras = cdf
        return a * cdf

    def backward(self, g):
        (a,) = self.saved
        if not _recording() and _kernels.active(a._data) and g._data.dtype == a._data.dtype:
            return _const(_kernels.gelu_backward(g._data, a._data, self.approximate))
        if self.approximate == "tanh":
            k = math.sqrt(2.0 / math.pi)
            if _recording() or self.extras is None:
                th = (k * (a + 0.044715 * a * a * a)).tanh()
            else:
                th = _const(self.extras)
            dinner = k * (1.0 + 3.0 * 0.044715 * a * a)
            return g * (0.5 * (1.0 + th) + 0.5 * a * (1.0 - th * th) * dinner)
        if _recording() or self.extras is None:
            return g * (NormalCdf.apply(a) + a * _normal_pdf(a))
        ad = a._data
        xp = xp_of(ad)
        pdf = xp.exp(-0.5 * ad * ad) * (1.0 / math.sqrt(2.0 * math.pi))
        return g * _const((self.extras + ad * pdf).astype(ad.dtype, copy=False))


class Silu(Op):
    save_inputs = (0,)

    def forward(self, a):
        s = _sigmoid_array(a)
        self.extras = s
        return a * s

    def backward(self, g):
        (a,) = self.saved
        if _recording():
            s = a.sigmoid()
            return g * (s * (1.0 + a * (1.0 - s)))
        s = self.extras
        return g * _const(s * (1.0 + a._data * (1.0 - s)))


def _sigmoid_array(a):
    xp = xp_of(a)
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)


class LeakyRelu(Op):
    save_inputs = (0,)

    def forward(self, a, negative_slope=0.01):
        self.slope = negative_slope
        xp = xp_of(a)
        return xp.where(a > 0, a, a * a.dtype.type(negative_slope))

    def backward(self, g):
        (a,) = self.saved
        d = a._data
        xp = xp_of(d)
        return g * _const(xp.where(d > 0, d.dtype.type(1), d.dtype.type(self.slope)))


class LogSigmoid(Op):
    save_inputs = (0,)

    def forward(self, a):
        xp = xp_of(a)
        return xp.minimum(a, 0) - xp.log1p(xp.exp(-xp.abs(a)))

    def backward(self, g):
        (a,) = self.saved
        return g * (-a).sigmoid()


class Softplus(Op):
    save_inputs = (0,)

    def forward(self, a, beta=1.0, threshold=20.0):
        self.beta, self.threshold = beta, threshold
        xp = xp_of(a)
        z = a * beta
        soft = (xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))) / beta
        return xp.where(z > threshold, a, soft).astype(a.dtype, copy=False)

    def backward(self, g):
        (a,) = self.saved
        z = a * self.beta
        return g * where(z._data > self.threshold, 1.0, z.sigmoid())


class Elu(Op):
    save_inputs = (0,)

    def forward(self, a, alpha=1.0):
        self.alpha = alpha
        xp = xp_of(a)
        return xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0))).astype(a.dtype, copy=False)

    def backward(self, g):
        (a,) = self.saved
        return g * where(a._data > 0, 1.0, a.clamp(max=0).exp() * self.alpha)


class Hardtanh(Op):
    save_inputs = (0,)

    def forward(self, a, min_val=-1.0, max_val=1.0):
        self.lo, self.hi = min_val, max_val
        return xp_of(a).clip(a, min_val, max_val)

    def backward(self, g):
        (a,) = self.saved
        d = a._data
        return g * _const((d > self.lo) & (d < self.hi))


# ================================================================ softmax family
class Softmax(Op):
    save_output = True

    def forward(self, a, dim=-1):
        self.dim = dim
        if a.size == 0:
            return a.copy()
        xp = xp_of(a)
        e = xp.exp(a - a.max(axis=dim, keepdims=True))
        e /= e.sum(axis=dim, keepdims=True)
        return e

    def backward(self, g):
        (y,) = self.saved
        gy = g * y
        return gy - y * gy.sum(self.dim, keepdim=True)


class LogSoftmax(Op):
    save_output = True

    def forward(self, a, dim=-1):
        self.dim = dim
        if a.size == 0:
            return a.copy()
        xp = xp_of(a)
        s = a - a.max(axis=dim, keepdims=True)
        s -= xp.log(xp.exp(s).sum(axis=dim, keepdims=True))
        return s

    def backward(self, g):
        (y,) = self.saved
        return g - y.exp() * g.sum(self.dim, keepdim=True)


# ================================================================ losses
class NllLoss(Op):
    """-weight[t] * logp[n, t, ...] over class axis 1, with ignore_index and reductions.

    Its backward puts -weight[t] (scaled) at the target positions: a constant mask times the
    incoming gradient, so it is linear in the gradient and differentiates again."""

    def forward(self, logp, target, weight=None, reduction="mean", ignore_index=-100):
        xp = xp_of(logp)
        n_classes = logp.shape[1]
        ignored = target == ignore_index
        _check_targets(target, ignored, n_classes)
        safe = xp.where(ignored, 0, target)
        picked = xp.take_along_axis(logp, xp.expand_dims(safe, 1), axis=1).squeeze(1)
        if weight is None:
            w = (~ignored).astype(logp.dtype)
        else:
            w = weight.astype(logp.dtype, copy=False)[safe]
            w[ignored] = 0
        losses = -(w * picked)
        self.reduction, self.in_shape = reduction, logp.shape
        if reduction == "none":
            self.extras = (safe, w)
            return losses
        if reduction == "sum":
            self.extras = (safe, w)
            return losses.sum()
        total = w.sum()
        # all targets ignored: torch returns nan and a zero gradient (w is all zero then)
        self.extras = (safe, w / xp.where(total != 0, total, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return losses.sum() / total

    def backward(self, g):
        safe, w = self.extras
        xp = xp_of(w)
        n_classes = self.in_shape[1]
        # built class-last so one fancy assignment fills it, then viewed class-second
        mask = xp.zeros((safe.size, n_classes), dtype=w.dtype)
        mask[xp.arange(safe.size), safe.reshape(-1)] = -w.reshape(-1)
        mask = xp.moveaxis(mask.reshape(*safe.shape, n_classes), -1, 1)
        if self.reduction == "none":
            g = g.unsqueeze(1)
        return g * _const(mask), None


def _check_targets(target, ignored, n_classes: int) -> None:
    """torch's IndexError for class indices out of range. Host arrays only: on a GPU the
    check would be a host round trip per step (torch asserts inside its kernel there)."""
    if type(target) is not np.ndarray:
        return
    bad = ((target < 0) | (target >= n_classes)) & ~ignored
    if bad.any():
        raise IndexError(f"Target {int(target[bad].reshape(-1)[0])} is out of bounds.")


class SoftmaxCrossEntropy(Op):
    """cross_entropy(x, t) for (N, C) logits and class indices, without class weights or label
    smoothing: log_softmax and nll_loss in one op.

    Forward keeps only the rows' log-sum-exp; the plain backward is one pass,
    (softmax(x) - onehot(t)) * scale, zero on ignored rows. On the GPU both are single
    kernels (see _cuda_kernels). Under create_graph the backward is written with Tensor ops
    (a Softmax of the saved logits), so it differentiates again.
    """

    save_inputs = (0,)

    def name(self) -> str:
        return "NllLossBackward0"  # what torch's cross_entropy graph ends in

    def forward(self, x, target, reduction="mean", ignore_index=-100):
        self.reduction, self.ignore = reduction, ignore_index
        xp = xp_of(x)
        keep = target != ignore_index
        _check_targets(target, ~keep, x.shape[1])
        if _kernels.active(x):
            losses, lse = _kernels.xent_forward(x, target, ignore_index)
        else:
            losses, lse = _xent_rows(xp, x, target, keep)
        self.extras = (target, keep, lse, None)
        if reduction == "none":
            return losses
        total = losses.sum()
        if reduction == "sum":
            return total
        count = xp.asarray(keep.sum(), dtype=x.dtype)  # an array (numpy sums are scalars)
        self.extras = (target, keep, lse, count)
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / count

    def backward(self, g):
        (x,) = self.saved
        target, keep, lse, count = self.extras
        xd = x._data
        xp = xp_of(xd)
        if _recording():
            n_classes = xd.shape[1]
            onehot = (xp.arange(n_classes) == target[:, None]) & keep[:, None]
            p = Softmax.apply(x, dim=1) * _const(keep[:, None].astype(xd.dtype))
            scale = g.unsqueeze(1) if self.reduction == "none" else g
            if count is not None:
                scale = scale / _const(count)
            return (p - _const(onehot.astype(xd.dtype))) * scale, None
        scale = g._data.astype(xd.dtype, copy=False)
        if count is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = scale / count
        if _kernels.active(xd):
            return _const(_kernels.xent_backward(xd, target, lse, scale, self.ignore)), None
        return _const(_xent_grad(xp, xd, target, keep, lse, scale)), None


def _xent_rows(xp, x, target, keep):
    """(per-row losses, per-row log-sum-exp) of log_softmax + nll_loss, in the order of the
    LogSoftmax and NllLoss ops (the same numbers as the two ops in sequence)."""
    m = x.max(axis=1, keepdims=True)
    s = x - m
    lse_rel = xp.log(xp.exp(s).sum(axis=1))
    safe = xp.where(keep, target, 0)
    picked = xp.take_along_axis(s, safe[:, None], axis=1)[:, 0]
    losses = xp.where(keep, -(picked - lse_rel), 0).astype(x.dtype, copy=False)
    return losses, m[:, 0] + lse_rel


def _xent_grad(xp, x, target, keep, lse, scale):
    """(softmax(x) - onehot(target)) * scale per row, zero on ignored rows."""
    n, c = x.shape
    grad = xp.exp(x - lse[:, None])
    safe = xp.where(keep, target, 0)
    grad[xp.arange(n), safe] -= 1
    scale = scale[:, None] if scale.ndim else scale
    with np.errstate(invalid="ignore"):
        grad *= scale
    return xp.where(keep[:, None], grad, 0).astype(x.dtype, copy=False)


class MseLoss(Op):
    save_inputs = (0, 1)

    def forward(self, a, b, reduction="mean"):
        self.reduction = reduction
        self.a_meta = (a.shape, a.dtype)
        self.b_meta = (b.shape, b.dtype) if hasattr(b, "shape") else None
        d = a - b
        d *= d
        self.out_shape = d.shape
        if reduction == "mean":
            return d.mean()
        if reduction == "sum":
            return d.sum()
        return d

    def backward(self, g):
        a, b = self.saved
        diff = a - b
        n = int(np.prod(self.out_shape))
        scale = 2.0 / n if self.reduction == "mean" else 2.0
        gd = diff * (g * scale)
        ga = reduce_grad(gd, *self.a_meta) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            gb = reduce_grad(-gd, *self.b_meta)
        return ga, gb


class SmoothL1(Op):
    """Elementwise smooth L1 of a difference d: 0.5 d^2 / beta where |d| < beta, else
    |d| - 0.5 beta; with `huber`, torch's huber_loss (delta = beta): delta times that.

    The gradient is torch's clamp(d / beta, -1, 1) (clamp(d, -delta, delta) for huber), which
    stays finite for an infinite d, where a `where` of the two branches would send 0 * inf =
    nan back through the branch it did not pick."""

    save_inputs = (0,)

    def forward(self, d, beta=1.0, huber=False):
        self.beta, self.huber = beta, huber
        xp = xp_of(d)
        a = xp.abs(d)
        if huber:
            out = xp.where(a < beta, 0.5 * a * a, beta * (a - 0.5 * beta))
        else:
            out = xp.where(a < beta, 0.5 * a * a / beta, a - 0.5 * beta)
        return out.astype(d.dtype, copy=False)

    def backward(self, g):
        (d,) = self.saved
        if self.huber:
            return g * d.clamp(-self.beta, self.beta)
        return g * (d / self.beta).clamp(-1.0, 1.0)


class BinaryCrossEntropy(Op):
    """-w (t log x + (1 - t) log(1 - x)), logs clamped at -100 as torch does."""

    save_inputs = (0, 1, 2)

    def forward(self, x, t, w=None, reduction="mean"):
        self.reduction, self.numel = reduction, x.size
        xp = xp_of(x)
        with np.errstate(divide="ignore"):
            lx = xp.maximum(xp.log(x), -100)
            l1x = xp.maximum(xp.log1p(-x), -100)
        loss = -(t * lx + (1 - t) * l1x)
        if w is not None:
            self.w_meta = (w.shape, w.dtype)
            loss = loss * w
        if reduction == "mean":
            return loss.mean()
        if reduction == "sum":
            return loss.sum()
        return loss

    def backward(self, g):
        x, t, w = self.saved
        if self.reduction == "mean":
            g = g / self.numel
        gx = gt = None
        if self.needs_input_grad[0]:
            denom = (x * (1.0 - x)).clamp(min=1e-12)
            gx = g * (x - t) / denom
            if w is not None:
                gx = gx * w
        if self.needs_input_grad[1]:
            gt = g * ((1.0 - x).log().clamp(min=-100) - x.log().clamp(min=-100))
            if w is not None:
                gt = gt * w
        return gx, gt, None


class BceWithLogits(Op):
    """(1 - t) x - lw * log_sigmoid(x), lw = 1 + (pos_weight - 1) t; stable for any x."""

    save_inputs = (0, 1, 2, 3)

    def forward(self, x, t, w=None, pos_weight=None, reduction="mean"):
        xp = xp_of(x)
        self.reduction, self.numel = reduction, x.size
        log_sig = xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))
        if pos_weight is not None:
            log_sig = log_sig * ((pos_weight - 1) * t + 1)
        loss = (1 - t) * x - log_sig
        if w is not None:
            loss = loss * w
        self.out_shape = loss.shape
        self.x_meta = (x.shape, x.dtype)
        self.t_meta = (t.shape, t.dtype)
        if reduction == "mean":
            return loss.mean()
        if reduction == "sum":
            return loss.sum()
        return loss

    def backward(self, g):
        x, t, w, pw = self.saved
        if self.reduction == "mean":
            g = g / int(np.prod(self.out_shape))
        if w is not None:
            g = g * w
        gx = gt = None
        if self.needs_input_grad[0]:
            if pw is not None:
                pt = pw * t
                gx = (pt + 1.0 - t) * x.sigmoid() - pt
            else:
                gx = x.sigmoid() - t
            gx = reduce_grad(g * gx, *self.x_meta)
        if self.needs_input_grad[1]:
            if pw is not None:
                gt = LogSigmoid.apply(-x) - LogSigmoid.apply(x) * pw
            else:
                gt = -x
            gt = reduce_grad(g * gt, *self.t_meta)
        return gx, gt, None, None


# ================================================================ normalisation
class NormAffine(Op):
    """(x - mean) / sqrt(var + eps) * weight + bias over `axes`, with the batch statistics
    computed here (layer norm: trailing axes; batch norm: all but the channel axis).
    `param_shape` is how weight and bias broadcast against x.

    `stats`, when given, receives the mean and biased variance so batch norm can update its
    running statistics without a second pass."""

    save_inputs = (0, 1)

    def forward(self, x, weight=None, bias=None, axes=(), eps=1e-5, param_shape=None, stats=None):
        xp = xp_of(x)
        self.axes, self.eps, self.param_shape = axes, eps, param_shape
        mean = x.mean(axis=axes, keepdims=True)
        xhat = x - mean
        var = xp.mean(xhat * xhat, axis=axes, keepdims=True)
        invstd = 1.0 / xp.sqrt(var + eps)
        xhat *= invstd
        if stats is not None:
            stats["mean"], stats["var"] = mean, var
        self.b_shape = bias.shape if bias is not None else None
        self.extras = (xhat, invstd)
        if weight is not None:
            out = xhat * weight.reshape(param_shape)
            if bias is not None:
                out += bias.reshape(param_shape)
            return out
        if bias is not None:
            return xhat + bias.reshape(param_shape)
        return xhat.copy()

    def backward(self, g):
        x, w = self.saved
        axes = self.axes
        lead = g.ndim - len(self.param_shape)
        p_axes = tuple(i for i in range(g.ndim) if i < lead or self.param_shape[i - lead] == 1)
        gx = gw = gb = None
        if _recording():
            xc = x - x.mean(axes, keepdim=True)
            invstd = ((xc * xc).mean(axes, keepdim=True) + self.eps) ** -0.5
            xhat = xc * invstd
        else:
            xhat, invstd = _const(self.extras[0]), _const(self.extras[1])
        if self.needs_input_grad[0]:
            gxhat = g if w is None else g * w.reshape(self.param_shape)
            gx = invstd * (
                gxhat
                - gxhat.mean(axes, keepdim=True)
                - xhat * (gxhat * xhat).mean(axes, keepdim=True)
            )
        if w is not None and self.needs_input_grad[1]:
            gw = (g * xhat).sum(p_axes).reshape(w.shape)
        if self.b_shape is not None and self.needs_input_grad[2]:
            gb = g.sum(p_axes).reshape(self.b_shape)
        return gx, gw, gb


# ================================================================ dropout, embedding, pad
class MaskMul(Op):
    """x * mask for a constant mask (dropout): the gradient is g * mask."""

    def forward(self, x, mask=None):
        self.extras = mask
        return x * mask

    def backward(self, g):
        return g * _const(self.extras)


class Embedding(Op):
    def forward(self, weight, idx=None, token_scale=None):
        self.idx, self.num, self.token_scale = idx, weight.shape[0], token_scale
        return xp_of(weight).take(weight, idx, axis=0)

    def backward(self, g):
        return EmbeddingGrad.apply(g, idx=self.idx, num=self.num, token_scale=self.token_scale)


class EmbeddingGrad(Op):
    """Rows of g summed into a (num, dim) table at their indices (scaled per token)."""

    def forward(self, g, idx=None, num=0, token_scale=None):
        self.idx, self.token_scale = idx, token_scale
        xp = xp_of(g)
        dim = g.shape[-1]
        flat = idx.reshape(-1)
        rows = g.reshape(-1, dim)
        if token_scale is not None:
            rows = rows * token_scale.reshape(-1, 1)
        out = xp.zeros((num, dim), dtype=g.dtype)
        add_at(out, flat, rows)
        return out

    def backward(self, gg):
        out = Embedding.apply(gg, idx=self.idx)
        if self.token_scale is not None:
            out = out * _const(xp_of(self.token_scale).expand_dims(self.token_scale, -1))
        return out


class ConstantPad(Op):
    """Pad (or, with negative widths, crop) each axis by (before, after) with `value`.
    Its adjoint is the same op with the widths negated and zeros."""

    def forward(self, a, pads=(), value=0.0):
        self.pads = pads
        xp = xp_of(a)
        out_shape = []
        for d, (s, (lo, hi)) in enumerate(zip(a.shape, pads)):
            n = s + lo + hi
            if n < 0:
                raise RuntimeError(
                    f"The input size {s}, plus negative padding {lo} and {hi} resulted in a "
                    f"negative output size, which is invalid. Check dimension {d} of your input."
                )
            out_shape.append(n)
        out = xp.full(out_shape, value, dtype=a.dtype)
        src, dst = [], []
        for s, (lo, hi) in zip(a.shape, pads):
            s0, s1 = max(-lo, 0), s - max(-hi, 0)
            d0 = max(lo, 0)
            n = max(s1 - s0, 0)
            src.append(slice(s0, s0 + n))
            dst.append(slice(d0, d0 + n))
        out[tuple(dst)] = a[tuple(src)]
        return out

    def backward(self, g):
        return ConstantPad.apply(g, pads=tuple((-lo, -hi) for lo, hi in self.pads), value=0.0)


class FlatCat(Op):
    """Concatenate the flattened inputs (parameters_to_vector)."""

    def forward(self, *arrays):
        self.shapes = [a.shape for a in arrays]
        return xp_of(arrays[0]).concatenate([a.reshape(-1) for a in arrays])

    def backward(self, g):
        out, start = [], 0
        for shape in self.shapes:
            n = int(np.prod(shape))
            out.append(g[start : start + n].reshape(shape))
            start += n
        return tuple(out)


# ================================================================ convolution
def conv_out_size(size: int, k: int, s: int, pad_total: int, d: int) -> int:
    return (size + pad_total - d * (k - 1) - 1) // s + 1


class _ConvGeom:
    """Shapes and parameters shared by the three convolution ops."""

    __slots__ = ("stride", "pads", "dilation", "groups", "in_shape", "w_shape", "out_hw")

    def __init__(self, in_shape, w_shape, stride, pads, dilation, groups):
        self.in_shape, self.w_shape = tuple(in_shape), tuple(w_shape)
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups
        _, _, h, w = in_shape
        kh, kw = w_shape[2:]
        pt, pb, pl, pr = pads
        self.out_hw = (
            conv_out_size(h, kh, stride[0], pt + pb, dilation[0]),
            conv_out_size(w, kw, stride[1], pl + pr, dilation[1]),
        )

    def kwargs(self) -> dict:
        return {
            "stride": self.stride,
            "pads": self.pads,
            "dilation": self.dilation,
            "groups": self.groups,
        }


def _pad2d(x, pads, value=0):
    pt, pb, pl, pr = pads
    if not (pt or pb or pl or pr):
        return x
    xp = xp_of(x)
    n, c, h, w = x.shape
    out = xp.full((n, c, h + pt + pb, w + pl + pr), value, dtype=x.dtype)
    out[:, :, pt : pt + h, pl : pl + w] = x
    return out


def _im2col(x, geom: _ConvGeom):
    """(N, C*kh*kw, OH*OW) patches: rows in the weight's (c, i, j) order, so a per-sample
    GEMM with the (O, C*kh*kw) weight gives NCHW output directly."""
    if _kernels.active(x):  # one kernel on the GPU, zero padding included
        kernel = geom.w_shape[2:]
        return _kernels.im2col(x, kernel, geom.out_hw, geom.stride, geom.pads, geom.dilation)
    xp = xp_of(x)
    n, c = x.shape[:2]
    kh, kw = geom.w_shape[2:]
    oh, ow = geom.out_hw
    sh, sw = geom.stride
    dh, dw = geom.dilation
    xpad = _pad2d(x, geom.pads)
    if kh == 1 and kw == 1:
        return xp.ascontiguousarray(
            xpad[:, :, : sh * (oh - 1) + 1 : sh, : sw * (ow - 1) + 1 : sw]
        ).reshape(n, c, oh * ow)
    cols = xp.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        hs = i * dh
        for j in range(kw):
            ws = j * dw
            cols[:, :, i, j] = xpad[
                :, :, hs : hs + sh * (oh - 1) + 1 : sh, ws : ws + sw * (ow - 1) + 1 : sw
            ]
    return cols.reshape(n, c * kh * kw, oh * ow)


def _col2im(cols, geom: _ConvGeom):
    """The adjoint of `_im2col`: scatter-add patch gradients back onto the input grid, one
    strided add per kernel offset."""
    if _kernels.active(cols):  # one gathering kernel on the GPU
        kernel = geom.w_shape[2:]
        return _kernels.col2im(
            cols, geom.in_shape, kernel, geom.out_hw, geom.stride, geom.pads, geom.dilation
        )
    xp = xp_of(cols)
    n, c, h, w = geom.in_shape
    kh, kw = geom.w_shape[2:]
    oh, ow = geom.out_hw
    sh, sw = geom.stride
    dh, dw = geom.dilation
    pt, pb, pl, pr = geom.pads
    cols6 = cols.reshape(n, c, kh, kw, oh, ow)
    out = xp.zeros((n, c, h + pt + pb, w + pl + pr), dtype=cols.dtype)
    for i in range(kh):
        hs = i * dh
        for j in range(kw):
            ws = j * dw
            out[:, :, hs : hs + sh * (oh - 1) + 1 : sh, ws : ws + sw * (ow - 1) + 1 : sw] += cols6[
                :, :, i, j
            ]
    if pt or pb or pl or pr:
        out = out[:, :, pt : pt + h, pl : pl + w]
    return out


# Per-sample GEMMs (batched matmul) over (N, K, P) patch matrices keep every operand in its
# natural layout: the output comes out NCHW, the output gradient is used as it arrives, and
# the input gradient's patches come out in the layout col2im reads contiguously.
def _conv_forward(x, w, geom: _ConvGeom, cols=None):
    xp = xp_of(x)
    n = x.shape[0]
    o = w.shape[0]
    g = geom.groups
    oh, ow = geom.out_hw
    if cols is None:
        cols = _im2col(x, geom)
    if g == 1:
        out = xp.matmul(w.reshape(o, -1), cols)  # (N, O, P)
    else:
        cg = cols.reshape(n, g, -1, oh * ow)  # (N, G, Kg, P)
        out = xp.matmul(w.reshape(1, g, o // g, -1), cg)  # (N, G, O/G, P)
    return out.reshape(n, o, oh, ow), cols


def _weight_grad(cols, g, w_shape, groups: int):
    xp = xp_of(g)
    n, o = g.shape[:2]
    gp = g.reshape(n, o, -1)
    if groups == 1:
        gw = xp.matmul(cols, gp.transpose(0, 2, 1)).sum(axis=0).T  # (O, K)
    else:
        p = gp.shape[2]
        cg = cols.reshape(n, groups, -1, p)  # (N, G, Kg, P)
        gg = gp.reshape(n, groups, o // groups, p).transpose(0, 1, 3, 2)  # (N, G, P, O/G)
        gw = xp.matmul(cg, gg).sum(axis=0).transpose(0, 2, 1)  # (G, O/G, Kg)
    return xp.ascontiguousarray(gw).reshape(w_shape)


def _input_grad(g, w, geom: _ConvGeom):
    xp = xp_of(g)
    n, o = g.shape[:2]
    groups = geom.groups
    gp = g.reshape(n, o, -1)
    p = gp.shape[2]
    if groups == 1 and _kernels.active(gp):
        # on the GPU: one batched GEMM for all patches, then one col2im kernel
        return _col2im(xp.matmul(w.reshape(o, -1).T, gp), geom)  # (N, K, P) patches
    if groups == 1:
        return _input_grad_by_offset(gp, w, geom)
    wg = w.reshape(groups, o // groups, -1).transpose(0, 2, 1)  # (G, Kg, O/G)
    cols = xp.matmul(wg, gp.reshape(n, groups, o // groups, p)).reshape(n, -1, p)
    return _col2im(cols, geom)


def _input_grad_by_offset(gp, w, geom: _ConvGeom):
    """col2im fused with its GEMM: for each kernel offset, W[:, :, i, j]^T @ g lands as one
    contiguous (N, C, OH, OW) block added onto the shifted input window, so the full patch
    gradient matrix is never materialised."""
    xp = xp_of(gp)
    n, c, h, w_in = geom.in_shape
    kh, kw = geom.w_shape[2:]
    oh, ow = geom.out_hw
    sh, sw = geom.stride
    dh, dw = geom.dilation
    pt, pb, pl, pr = geom.pads
    w_off = xp.ascontiguousarray(w.transpose(2, 3, 1, 0))  # (kh, kw, C, O)
    out = xp.zeros((n, c, h + pt + pb, w_in + pl + pr), dtype=gp.dtype)
    block = xp.empty((n, c, oh * ow), dtype=gp.dtype)
    block4 = block.reshape(n, c, oh, ow)
    for i in range(kh):
        hs = i * dh
        for j in range(kw):
            ws = j * dw
            xp.matmul(w_off[i, j], gp, out=block)
            out[:, :, hs : hs + sh * (oh - 1) + 1 : sh, ws : ws + sw * (ow - 1) + 1 : sw] += block4
    if pt or pb or pl or pr:
        out = out[:, :, pt : pt + h, pl : pl + w_in]
    return out


class Conv2d(Op):
    save_inputs = (0, 1)

    def forward(self, x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
        geom = self.geom = _ConvGeom(x.shape, w.shape, stride, pads, dilation, groups)
        out, cols = _conv_forward(x, w, geom)
        self.extras = cols
        self.has_bias = b is not None
        if b is not None:
            out += b.reshape(1, -1, 1, 1)
        return out

    def backward(self, g):
        x, w = self.saved
        kw = self.geom.kwargs()
        gx = gw = gb = None
        if self.needs_input_grad[0]:
            gx = Conv2dInputGrad.apply(g, w, in_shape=self.geom.in_shape, **kw)
        if self.needs_input_grad[1]:
            gw = Conv2dWeightGrad.apply(x, g, w_shape=self.geom.w_shape, cols=self.extras, **kw)
        if self.has_bias and self.needs_input_grad[2]:
            gb = g.sum((0, 2, 3))
        return gx, gw, gb


class Conv2dInputGrad(Op):
    """dL/dx of a convolution: (g, w) -> col2im(g^T w). Bilinear in g and w."""

    save_inputs = (0, 1)

    def forward(
        self, g, w, in_shape=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1
    ):
        self.geom = geom = _ConvGeom(in_shape, w.shape, stride, pads, dilation, groups)
        return _input_grad(g, w, geom)

    def backward(self, gg):
        g, w = self.saved
        kw = self.geom.kwargs()
        d_g = d_w = None
        if self.needs_input_grad[0]:
            d_g = Conv2d.apply(gg, w, **kw)
        if self.needs_input_grad[1]:
            d_w = Conv2dWeightGrad.apply(gg, g, w_shape=self.geom.w_shape, **kw)
        return d_g, d_w


class Conv2dWeightGrad(Op):
    """dL/dw of a convolution: (x, g) -> sum_n g_n im2col(x)_n. Bilinear in x and g."""

    save_inputs = (0, 1)

    def forward(
        self,
        x,
        g,
        w_shape=None,
        cols=None,
        stride=(1, 1),
        pads=(0, 0, 0, 0),
        dilation=(1, 1),
        groups=1,
    ):
        geom = self.geom = _ConvGeom(x.shape, w_shape, stride, pads, dilation, groups)
        if cols is None:
            cols = _im2col(x, geom)
        return _weight_grad(cols, g, w_shape, groups)

    def backward(self, ggw):
        x, g = self.saved
        kw = self.geom.kwargs()
        d_x = d_g = None
        if self.needs_input_grad[0]:
            d_x = Conv2dInputGrad.apply(g, ggw, in_shape=self.geom.in_shape, **kw)
        if self.needs_input_grad[1]:
            d_g = Conv2d.apply(x, ggw, **kw)
        return d_x, d_g


class Unfold(Op):
    """torch's unfold (im2col): (N, C, H, W) -> (N, C*kh*kw, L) sliding-window patches. Its
    backward is Fold, the scatter-add back onto the grid; each is the other's adjoint."""

    def forward(self, x, kernel=(1, 1), stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)):
        n, c = x.shape[:2]
        self.geom = _ConvGeom(x.shape, (1, c, *kernel), stride, pads, dilation, 1)
        return _im2col(x, self.geom)

    def backward(self, g):
        return Fold.apply(g, geom=self.geom)


class Fold(Op):
    """torch's fold (col2im): patches (N, C*kh*kw, L) summed back onto (N, C, H, W)."""

    def forward(self, cols, geom=None):
        self.geom = geom
        return _col2im(xp_of(cols).ascontiguousarray(cols), geom)

    def backward(self, g):
        geom = self.geom
        return Unfold.apply(
            g, kernel=geom.w_shape[2:], stride=geom.stride, pads=geom.pads,
            dilation=geom.dilation,
        )  # fmt: skip


# ================================================================ pooling
def pool_out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling output length (ceil mode never starts a window in the right padding)."""
    num = size + 2 * p - d * (k - 1) - 1
    out = (num + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


class _PoolGeom:
    __slots__ = ("in_shape", "kernel", "stride", "padding", "dilation", "out_hw", "pads", "tiled")

    def __init__(self, in_shape, kernel, stride, padding, dilation, ceil_mode):
        self.in_shape = tuple(in_shape)
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        h, w = in_shape[2:]
        oh = pool_out_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
        ow = pool_out_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
        self.out_hw = (oh, ow)
        # right/bottom padding: whatever the last window needs beyond the input
        need_h = (oh - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1
        need_w = (ow - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1
        self.pads = (
            padding[0],
            max(need_h - h - padding[0], 0),
            padding[1],
            max(need_w - w - padding[1], 0),
        )
        # non-overlapping windows that tile the input: reshape instead of window views
        self.tiled = (
            padding == (0, 0)
            and dilation == (1, 1)
            and stride == kernel
            and self.pads == (0, 0, 0, 0)
        )

    def windows(self, xpad):
        """(N, C, OH, OW) views, one per kernel position (i, j)."""
        oh, ow = self.out_hw
        sh, sw = self.stride
        dh, dw = self.dilation
        for i in range(self.kernel[0]):
            for j in range(self.kernel[1]):
                hs, ws = i * dh, j * dw
                yield (
                    i,
                    j,
                    (
                        slice(None),
                        slice(None),
                        slice(hs, hs + sh * (oh - 1) + 1, sh),
                        slice(ws, ws + sw * (ow - 1) + 1, sw),
                    ),
                )


class MaxPool2d(Op):
    """Max over windows; backward sends each window's gradient to its first maximum.

    The winning offsets are found at forward time only when a gradient will be needed
    (`track=True`), so inference pays for the maxima alone."""

    def forward(
        self,
        x,
        kernel=(2, 2),
        stride=(2, 2),
        padding=(0, 0),
        dilation=(1, 1),
        ceil_mode=False,
        track=True,
        indices_out=None,
    ):
        geom = self.geom = _PoolGeom(x.shape, kernel, stride, padding, dilation, ceil_mode)
        if _kernels.active(x):  # maxima and first-maximum offsets in one kernel
            out, arg = _kernels.maxpool(
                x, geom.kernel, geom.out_hw, geom.stride, geom.pads, geom.dilation
            )
            self.extras = arg
            if indices_out is not None:
                indices_out["indices"] = maxpool_flat_indices(arg, geom)
            return out
        xp = xp_of(x)
        xpad = _pad2d(x, geom.pads, value=-np.inf)
        views = [xpad[sl] for _, _, sl in geom.windows(xpad)]
        if len(views) == 1:
            out = views[0].copy()
        else:
            out = xp.maximum(views[0], views[1])
            for v in views[2:]:
                xp.maximum(out, v, out=out)
        if track or indices_out is not None:
            # the first maximum's offset = how many leading offsets are not a maximum
            arg = xp.zeros(out.shape, dtype=np.int8 if len(views) < 128 else np.int32)
            if len(views) > 1:
                before = xp.not_equal(views[0], out)
                arg += before
                differs = xp.empty(out.shape, dtype=bool)
                for v in views[1:-1]:
                    xp.not_equal(v, out, out=differs)
                    before &= differs
                    arg += before
            self.extras = arg
            if indices_out is not None:
                indices_out["indices"] = maxpool_flat_indices(arg, geom)
        return out

    def backward(self, g):
        return MaxPoolScatter.apply(g, arg=self.extras, geom=self.geom)


def maxpool_flat_indices(arg, geom: _PoolGeom):
    """torch's `return_indices`: each maximum's position as h * W + w in the input plane."""
    xp = xp_of(arg)
    kw = geom.kernel[1]
    oh, ow = geom.out_hw
    arg = arg.astype(np.int64)
    rows = (
        xp.arange(oh).reshape(oh, 1) * geom.stride[0]
        - geom.padding[0]
        + (arg // kw) * geom.dilation[0]
    )
    cols = xp.arange(ow) * geom.stride[1] - geom.padding[1] + (arg % kw) * geom.dilation[1]
    return rows * geom.in_shape[3] + cols


class MaxPoolScatter(Op):
    """The max-pool gradient: each window's g goes to its winning position (summed where
    windows overlap). Linear in g; its adjoint is MaxPoolGather."""

    def forward(self, g, arg=None, geom=None):
        self.arg, self.geom = arg, geom
        if _kernels.active(g):
            return _kernels.maxpool_backward(
                g, arg, geom.in_shape, geom.kernel, geom.out_hw, geom.stride, geom.pads,
                geom.dilation,
            )  # fmt: skip
        xp = xp_of(g)
        n, c, h, w = geom.in_shape
        pt, pb, pl, pr = geom.pads
        out = xp.zeros((n, c, h + pt + pb, w + pl + pr), dtype=g.dtype)
        for i, j, sl in geom.windows(out):
            k = i * geom.kernel[1] + j
            if geom.tiled:
                xp.multiply(g, arg == k, out=out[sl])
            else:
                out[sl] += g * (arg == k)
        if pt or pb or pl or pr:
            out = out[:, :, pt : pt + h, pl : pl + w]
        return out

    def backward(self, gg):
        return MaxPoolGather.apply(gg, arg=self.arg, geom=self.geom)


class MaxPoolGather(Op):
    """Pick each window's value at its recorded winning position."""

    def forward(self, x, arg=None, geom=None):
        self.arg, self.geom = arg, geom
        xp = xp_of(x)
        xpad = _pad2d(x, geom.pads)
        out = xp.zeros(arg.shape, dtype=x.dtype)
        for i, j, sl in geom.windows(xpad):
            xp.copyto(out, xpad[sl], where=arg == i * geom.kernel[1] + j)
        return out

    def backward(self, g):
        return MaxPoolScatter.apply(g, arg=self.arg, geom=self.geom)


def _avg_divisors(xp, geom: _PoolGeom, count_include_pad: bool, divisor_override, dtype):
    """(OH, OW) window sizes, torch's rule: windows are clipped to the padded input, and
    with count_include_pad=False to the input itself."""
    if divisor_override:
        return xp.asarray(float(divisor_override), dtype=dtype)
    sizes = []
    for axis in range(2):
        length = geom.in_shape[2 + axis]
        k, s, p = geom.kernel[axis], geom.stride[axis], geom.padding[axis]
        start = xp.arange(geom.out_hw[axis]) * s - p
        end = xp.minimum(start + k, length + p)
        size = end - start
        if not count_include_pad:
            size = xp.minimum(end, length) - xp.maximum(start, 0)
        sizes.append(size)
    return xp.outer(sizes[0], sizes[1]).astype(dtype)  # built where it is used: no upload


class AvgPool2d(Op):
    def forward(
        self,
        x,
        kernel=(2, 2),
        stride=(2, 2),
        padding=(0, 0),
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        geom = self.geom = _PoolGeom(x.shape, kernel, stride, padding, (1, 1), ceil_mode)
        self.opts = (ceil_mode, count_include_pad, divisor_override)
        xp = xp_of(x)
        self.div = div = _avg_divisors(xp, geom, count_include_pad, divisor_override, x.dtype)
        n, c = x.shape[:2]
        oh, ow = geom.out_hw
        kh, kw = kernel
        if geom.tiled:
            s = x[:, :, : oh * kh, : ow * kw].reshape(n, c, oh, kh, ow, kw).sum(axis=(3, 5))
        else:
            xpad = _pad2d(x, geom.pads)
            s = None
            for _, _, sl in geom.windows(xpad):
                s = xpad[sl].copy() if s is None else s.__iadd__(xpad[sl])
        s /= div
        return s

    def backward(self, g):
        return AvgPool2dAdjoint.apply(g, geom=self.geom, div=self.div, opts=self.opts)


class AvgPool2dAdjoint(Op):
    def forward(self, g, geom=None, div=None, opts=None):
        self.geom, self.opts = geom, opts
        xp = xp_of(g)
        n, c, h, w = geom.in_shape
        oh, ow = geom.out_hw
        kh, kw = geom.kernel
        gs = g / div
        if geom.tiled:
            spread = xp.broadcast_to(gs[:, :, :, None, :, None], (n, c, oh, kh, ow, kw))
            spread = spread.reshape(n, c, oh * kh, ow * kw)
            if (oh * kh, ow * kw) == (h, w):
                return spread
            out = xp.zeros((n, c, h, w), dtype=g.dtype)
            out[:, :, : oh * kh, : ow * kw] = spread
            return out
        pt, pb, pl, pr = geom.pads
        out = xp.zeros((n, c, h + pt + pb, w + pl + pr), dtype=g.dtype)
        for _, _, sl in geom.windows(out):
            out[sl] += gs
        return out[:, :, pt : pt + h, pl : pl + w]

    def backward(self, gg):
        ceil_mode, cip, dov = self.opts
        geom = self.geom
        return AvgPool2d.apply(
            gg,
            kernel=geom.kernel,
            stride=geom.stride,
            padding=geom.padding,
            ceil_mode=ceil_mode,
            count_include_pad=cip,
            divisor_override=dov,
        )


# ================================================================ torch.* spellings
def _functional():
    from ..nn import functional  # noqa: PLC0415 - nn imports this module

    return functional


def softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    return _functional().softmax(input, dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    return _functional().log_softmax(input, dim, dtype=dtype)


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    return _functional().conv2d(input, weight, bias, stride, padding, dilation, groups)


def max_pool2d(
    input: Tensor, kernel_size, stride=(), padding=0, dilation=1, ceil_mode: bool = False
) -> Tensor:
    return _functional().max_pool2d(
        input, kernel_size, stride or None, padding, dilation, ceil_mode
    )


def layer_norm(
    input: Tensor,
    normalized_shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    cudnn_enable: bool = True,
) -> Tensor:
    return _functional().layer_norm(input, normalized_shape, weight, bias, eps)


def dropout(input: Tensor, p: float, train: bool) -> Tensor:
    return _functional().dropout(input, p, train)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    return _functional().prelu(input, weight)


TENSOR_METHODS: dict = {
    "softmax": lambda self, dim, dtype=None: softmax(self, dim, dtype),
    "log_softmax": lambda self, dim, dtype=None: log_softmax(self, dim, dtype),
    "prelu": prelu,
    "hardshrink": lambda self, lambd=0.5: _functional().hardshrink(self, lambd),
}

__all__: list[str] = [
    "softmax", "log_softmax", "conv2d", "max_pool2d", "layer_norm", "dropout", "prelu",
]  # fmt: skip
