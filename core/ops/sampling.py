"""Random draws shaped by tensors: multinomial, bernoulli and normal, and the in-place fills
(`uniform_`, `normal_`, `bernoulli_`, `random_`, `exponential_`, `cauchy_`, `log_normal_`,
`geometric_`) that custom initialisations use.

They draw from shardgrad's generators (the one `manual_seed` seeds, or a device's own), on the
tensor's device, so the same seed gives the same draws; the streams are not torch's. The draws
carry no gradient (torch's gradients through them are zeros).
"""

from __future__ import annotations

import numpy as np

from .. import _dtype
from .. import random as _random
from ..backend import device_of, xp_of
from ..tensor import Tensor


def _uniform(like, shape: tuple, generator=None) -> object:
    """Uniform [0, 1) draws of `shape` on `like`'s device, in its float dtype (float64 for
    other dtypes), from the caller's generator or the global stream."""
    dtype = like.dtype if like.dtype in (np.float32, np.float64) else np.float64
    return _random.stream(device_of(like), generator).random(shape, dtype=dtype)


def multinomial(
    input: Tensor, num_samples: int, replacement: bool = False, *, generator=None
) -> Tensor:
    """Indices drawn from each row of non-negative weights (rows need not sum to 1).

    Without replacement: the Gumbel-top-k trick (the k largest of log w - log(-log u) are a
    draw of k distinct indices with torch's probabilities). With it: each draw inverts the
    row's cumulative distribution."""
    p = input._data
    if p.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if p.dtype.kind != "f":
        raise RuntimeError(
            f"multinomial only supports floating-point dtypes for input, got: {input.dtype}"
        )
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    xp = xp_of(p)
    rows = p.reshape(1, -1) if p.ndim == 1 else p
    categories = rows.shape[1]
    if not replacement and num_samples > categories:
        raise RuntimeError(
            "cannot sample n_sample > prob_dist.size(-1) samples without replacement"
        )
    if bool((rows < 0).any()) or not bool(xp.isfinite(rows).all()):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    totals = rows.sum(axis=1, keepdims=True)
    if bool((totals <= 0).any()):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    if replacement:
        cdf = xp.cumsum(rows / totals, axis=1)
        u = _uniform(p, (rows.shape[0], num_samples), generator)
        out = (u[:, :, None] >= cdf[:, None, :]).sum(axis=2)
        out = xp.minimum(out, categories - 1)  # u just below 1 against a cdf ending below 1
    else:
        if bool(((rows > 0).sum(axis=1) < num_samples).any()):
            raise RuntimeError(
                "invalid multinomial distribution (with replacement=False, not enough non-negative category to sample)"
            )
        u = _uniform(p, rows.shape, generator)
        with np.errstate(divide="ignore"):
            keys = xp.log(rows) - xp.log(-xp.log(u))
        out = xp.argsort(-keys, axis=1)[:, :num_samples]
    out = out.astype(np.int64)
    return Tensor._make(out.reshape(-1) if p.ndim == 1 else out)


def bernoulli(input: Tensor, p: float | None = None, *, generator=None) -> Tensor:
    """1 with probability `input` (or `p`), else 0, in input's dtype."""
    probs = input._data if p is None else None
    if probs is not None and (bool((probs < 0).any()) or bool((probs > 1).any())):
        raise RuntimeError("Expected p_in >= 0 && p_in <= 1 to be true, but got false.")
    u = _uniform(input._data, input._data.shape, generator)
    threshold = probs if probs is not None else p
    return Tensor._make((u < threshold).astype(input._data.dtype))


def poisson(input: Tensor, generator=None) -> Tensor:
    """Poisson draws with the rates in `input` (same shape and dtype; not differentiable)."""
    if bool((input._data < 0).any()):
        raise RuntimeError("poisson_cpu: invalid Poisson rate, expected rate to be non-negative")
    draws = _random.stream(input.device, generator).poisson(input._data)
    return Tensor._make(draws.astype(input._data.dtype))


def binomial(count: Tensor, prob: Tensor, generator=None) -> Tensor:
    """Binomial draws: successes in `count` trials of probability `prob` (broadcast)."""
    xp = xp_of(count._data)
    n, p = xp.broadcast_arrays(count._data, prob._data)
    if bool(((p < 0) | (p > 1)).any()):
        raise RuntimeError("binomial: probabilities must be in [0, 1]")
    draws = _random.stream(count.device, generator).binomial(n.astype(np.int64), p)
    return Tensor._make(draws.astype(count._data.dtype))


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None) -> Tensor:
    """Normal draws with the given mean and standard deviation: tensors (broadcast against
    each other) or numbers with a `size`."""
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        if size is None:
            raise TypeError("normal() with number mean and std needs a size")
        from ..factory import randn  # noqa: PLC0415

        return randn(*size, dtype=dtype, device=device, generator=generator) * float(std) + float(
            mean
        )
    like = mean if isinstance(mean, Tensor) else std
    m = mean._data if isinstance(mean, Tensor) else mean
    s = std._data if isinstance(std, Tensor) else std
    xp = xp_of(like._data)
    if bool((xp.asarray(s) < 0).any()):
        raise RuntimeError("normal expects all elements of std >= 0.0")
    shape = np.broadcast_shapes(xp.shape(m), xp.shape(s))
    dt = like._data.dtype if like._data.dtype.kind == "f" else _dtype.get_default_dtype().np
    z = _random.stream(device_of(like._data), generator).standard_normal(shape, dtype=dt)
    return Tensor._make((z * s + m).astype(dt, copy=False))


# ---------------------------------------------------------------- in-place fills
def _fill_with(t: Tensor, values) -> Tensor:
    """Write `values` (drawn once) into t in place: a leaf that requires grad refuses (outside
    no_grad), and in a graph the new value depends on nothing (its gradient is zero)."""
    from .inplace import Fill, run_inplace  # noqa: PLC0415 - inplace imports the op families

    def fast(dst) -> None:
        xp_of(dst).copyto(dst, values, casting="unsafe")

    return run_inplace(t, lambda s: Fill.apply(s, values), (), fast, keep_old=False)


def _draw_uniform(t: Tensor, generator=None):
    dtype = t._data.dtype if t._data.dtype.kind == "f" else np.float64
    return _random.stream(device_of(t._data), generator).random(t._data.shape, dtype=dtype)


def _draw_normal(t: Tensor, generator=None):
    dtype = t._data.dtype if t._data.dtype.kind == "f" else np.float64
    gen = _random.stream(device_of(t._data), generator)
    return gen.standard_normal(t._data.shape, dtype=dtype)


def _check_float(t: Tensor, name: str) -> None:
    if t._data.dtype.kind != "f":
        raise RuntimeError(f"{name} expects a floating point tensor, got {t.dtype}")


def uniform_(self: Tensor, from_: float = 0.0, to: float = 1.0, *, generator=None, **kw):
    """Uniform draws in [from, to)."""
    from_ = kw.pop("from", from_)
    _check_float(self, "uniform_")
    if from_ > to:
        raise RuntimeError(
            f"uniform_ expects to return a [from, to) range, but found from={from_} > to={to}"
        )
    return _fill_with(self, from_ + (to - from_) * _draw_uniform(self, generator))


def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None):
    _check_float(self, "normal_")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    return _fill_with(self, mean + std * _draw_normal(self, generator))


def bernoulli_(self: Tensor, p=0.5, *, generator=None):
    """1 with probability p (a number, or a tensor broadcast to self), else 0."""
    probs = p._data if isinstance(p, Tensor) else p
    if bool((xp_of(self._data).asarray(probs) < 0).any()) or bool(
        (xp_of(self._data).asarray(probs) > 1).any()
    ):
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
    return _fill_with(self, _draw_uniform(self, generator) < probs)


def random_(self: Tensor, *args, generator=None, **kwargs):
    """Integers drawn uniformly from [from, to): random_(from, to), random_(to) for [0, to),
    and random_() for [0, 2^mantissa] on floats (every integer the dtype holds exactly) or
    the integer dtype's range."""
    if len(args) == 1 and not kwargs:
        from_, to = 0, args[0]
    else:
        from_ = args[0] if args else kwargs.get("from", 0)
        to = args[1] if len(args) > 1 else kwargs.get("to")
    dt = self._data.dtype
    if to is None:
        if dt == np.bool_:
            to = 2
        elif dt.kind == "f":
            to = 2 ** (np.finfo(dt).nmant + 1) + 1
        else:
            to = int(np.iinfo(dt).max) + 1
    if from_ >= to:
        raise RuntimeError(
            f"random_ expects 'from' to be less than 'to', but got from={from_} >= to={to}"
        )
    gen = _random.stream(device_of(self._data), generator)
    return _fill_with(self, gen.integers(from_, to, size=self._data.shape, dtype=np.int64))


def exponential_(self: Tensor, lambd: float = 1.0, *, generator=None):
    _check_float(self, "exponential_")
    if lambd <= 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
    u = _draw_uniform(self, generator)
    return _fill_with(self, -xp_of(u).log1p(-u) / lambd)


def cauchy_(self: Tensor, median: float = 0.0, sigma: float = 1.0, *, generator=None):
    _check_float(self, "cauchy_")
    u = _draw_uniform(self, generator)
    return _fill_with(self, median + sigma * xp_of(u).tan(np.pi * (u - 0.5)))


def log_normal_(self: Tensor, mean: float = 1.0, std: float = 2.0, *, generator=None):
    _check_float(self, "log_normal_")
    if std <= 0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
    return _fill_with(self, xp_of(self._data).exp(mean + std * _draw_normal(self, generator)))


def geometric_(self: Tensor, p: float, *, generator=None):
    """The number of Bernoulli(p) trials up to the first success (1, 2, ...)."""
    if not 0 < p < 1:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    u = _draw_uniform(self, generator)
    xp = xp_of(u)
    return _fill_with(self, xp.ceil(xp.log1p(-u) / np.log1p(-p)).clip(1, None))


TENSOR_METHODS = {
    "multinomial": multinomial,
    "bernoulli": bernoulli,
    "uniform_": uniform_,
    "normal_": normal_,
    "bernoulli_": bernoulli_,
    "random_": random_,
    "exponential_": exponential_,
    "cauchy_": cauchy_,
    "log_normal_": log_normal_,
    "geometric_": geometric_,
}

__all__ = ["multinomial", "bernoulli", "normal", "poisson", "binomial"]
