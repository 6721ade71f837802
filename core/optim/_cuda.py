"""Fused CUDA updates: each optimizer's step for one parameter as a single cupy elementwise
kernel, instead of a dozen ufunc launches with a pass over memory each.

The kernels spell out the same formulas, in the same order, as the host kernels (and torch's
single-tensor updates); only the compiler's fused multiply-adds can change a last bit. Options
that change the code path (maximize, amsgrad, centered, ...) become preprocessor constants,
and each combination is compiled once and cached.
"""

from __future__ import annotations

from .. import backend

_KERNELS: dict = {}

# d = the gradient as torch's update sees it (negated for maximize, plus coupled weight decay)
_EFFECTIVE_GRAD = """
T d = SG_MAXIMIZE ? -g : g;
#if SG_WD
d = d + wd * p;
#endif
"""


def _kernel(name: str, in_params: str, out_params: str, body: str, **flags: bool):
    key = (name, out_params, tuple(sorted(flags.items())))
    kernel = _KERNELS.get(key)
    if kernel is None:
        preamble = "\n".join(f"#define SG_{k.upper()} {int(v)}" for k, v in flags.items())
        kernel = backend.cupy().ElementwiseKernel(
            in_params, out_params, body, f"shardgrad_{name}", preamble=preamble
        )
        _KERNELS[key] = kernel
    return kernel


def usable(arrays: tuple) -> bool:
    """The fused kernels want every array on the GPU with the parameter's shape and dtype."""
    cp = backend.cupy()
    p = arrays[0]
    for a in arrays:
        if a is None:
            continue
        if not isinstance(a, cp.ndarray) or a.shape != p.shape or a.dtype != p.dtype:
            return False
    return True


def sgd(p, g, buf, *, lr, wd, momentum, dampening, nesterov, maximize, first) -> None:
    body = (
        _EFFECTIVE_GRAD
        + """
#if SG_MOMENTUM
#if SG_FIRST
buf = d;
#else
buf = buf * momentum + one_minus_dampening * d;
#endif
#if SG_NESTEROV
d = d + momentum * buf;
#else
d = buf;
#endif
#endif
p = p + neg_lr * d;
"""
    )
    has_buf = buf is not None
    k = _kernel(
        "sgd",
        "T g, T wd, T momentum, T one_minus_dampening, T neg_lr",
        "T p, T buf" if has_buf else "T p",
        body,
        maximize=maximize,
        wd=wd != 0,
        momentum=has_buf,
        first=first,
        nesterov=nesterov,
    )
    t = p.dtype.type
    outs = (p, buf) if has_buf else (p,)
    k(g, t(wd), t(momentum), t(1 - dampening), t(-lr), *outs)


def adam(
    p,
    g,
    exp_avg,
    exp_avg_sq,
    max_exp_avg_sq,
    *,
    beta1,
    beta2,
    eps,
    wd,
    decay,
    maximize,
    step_size,
    bias_correction2_sqrt,
) -> None:
    body = """
#if SG_DECOUPLED
p = p * decay;
#endif
""" + _EFFECTIVE_GRAD + """
T diff = d - exp_avg;
#if SG_SMALL_WEIGHT
exp_avg = exp_avg + w1 * diff;
#else
exp_avg = d + w1_minus_one * diff;
#endif
exp_avg_sq = exp_avg_sq * beta2 + (one_minus_beta2 * d) * d;
#if SG_AMSGRAD
max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq);
T second = max_exp_avg_sq;
#else
T second = exp_avg_sq;
#endif
T denom = sqrt(second) / bias_correction2_sqrt + eps;
p = p + (neg_step_size * exp_avg) / denom;
"""  # fmt: skip
    amsgrad = max_exp_avg_sq is not None
    decoupled = decay is not None and wd != 0
    k = _kernel(
        "adam",
        "T g, T wd, T decay, T w1, T w1_minus_one, T beta2, T one_minus_beta2, "
        "T bias_correction2_sqrt, T eps, T neg_step_size",
        "T p, T exp_avg, T exp_avg_sq, T max_exp_avg_sq"
        if amsgrad
        else "T p, T exp_avg, T exp_avg_sq",
        body,
        maximize=maximize,
        wd=wd != 0 and decay is None,
        decoupled=decoupled,
        small_weight=abs(1 - beta1) < 0.5,
        amsgrad=amsgrad,
    )
    t = p.dtype.type
    w1 = 1 - beta1
    outs = (p, exp_avg, exp_avg_sq, max_exp_avg_sq) if amsgrad else (p, exp_avg, exp_avg_sq)
    k(
        g,
        t(wd),
        t(decay if decoupled else 1),
        t(w1),
        t(w1 - 1),
        t(beta2),
        t(1 - beta2),
        t(bias_correction2_sqrt),
        t(eps),
        t(-step_size),
        *outs,
    )


def rmsprop(p, g, square_avg, buf, grad_avg, *, lr, alpha, eps, wd, momentum, maximize) -> None:
    body = _EFFECTIVE_GRAD + """
square_avg = square_avg * alpha + (one_minus_alpha * d) * d;
#if SG_CENTERED
T diff = d - grad_avg;
#if SG_SMALL_WEIGHT
grad_avg = grad_avg + one_minus_alpha * diff;
#else
grad_avg = d + alpha_weight_minus_one * diff;
#endif
T avg = sqrt(square_avg - grad_avg * grad_avg) + eps;
#else
T avg = sqrt(square_avg) + eps;
#endif
#if SG_MOMENTUM
buf = buf * momentum + d / avg;
p = p + neg_lr * buf;
#else
p = p + (neg_lr * d) / avg;
#endif
"""  # fmt: skip
    outs = [p]
    names = ["T p"]
    if buf is not None:
        outs.append(buf)
        names.append("T buf")
    if grad_avg is not None:
        outs.append(grad_avg)
        names.append("T grad_avg")
    outs.insert(1, square_avg)
    names.insert(1, "T square_avg")
    k = _kernel(
        "rmsprop",
        "T g, T wd, T alpha, T one_minus_alpha, T alpha_weight_minus_one, T eps, T momentum, "
        "T neg_lr",
        ", ".join(names),
        body,
        maximize=maximize,
        wd=wd != 0,
        centered=grad_avg is not None,
        momentum=buf is not None,
        small_weight=abs(1 - alpha) < 0.5,
    )
    t = p.dtype.type
    k(g, t(wd), t(alpha), t(1 - alpha), t((1 - alpha) - 1), t(eps), t(momentum), t(-lr), *outs)


def adagrad(p, g, state_sum, *, clr, eps, wd, maximize) -> None:
    body = _EFFECTIVE_GRAD + """
state_sum = state_sum + d * d;
p = p + (neg_clr * d) / (sqrt(state_sum) + eps);
"""  # fmt: skip
    k = _kernel(
        "adagrad",
        "T g, T wd, T eps, T neg_clr",
        "T p, T state_sum",
        body,
        maximize=maximize,
        wd=wd != 0,
    )
    t = p.dtype.type
    k(g, t(wd), t(eps), t(-clr), p, state_sum)
