"""Every CUDA kernel shardgrad ships compiles (NVRTC needs no GPU, only its library), for
float and double: the fused op kernels and each option combination of the optimizers'
fused updates. A syntax or type error here would otherwise surface only on a GPU."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from nvrtc_check import compile_source, elementwise_source, nvrtc_available, raw_source

from shardgrad.ops import _cuda_kernels as kernels
from shardgrad.optim import _cuda as optim_kernels

_WHY = nvrtc_available()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"NVRTC not available: {_WHY}")


@pytest.mark.parametrize("ctype", ["float", "double"])
@pytest.mark.parametrize("name", sorted(kernels.SPECS))
def test_op_kernels_compile(name, ctype):
    spec = kernels.SPECS[name]
    if isinstance(spec, kernels.ElementwiseSpec):
        src = elementwise_source(spec.in_params, spec.out_params, spec.body, spec.preamble, ctype)
    else:
        src = raw_source(spec.source, spec.function, ctype)
    assert compile_source(src)


def test_compile_errors_are_caught():
    """The check itself can fail: an unknown identifier is a compile error."""
    bad = kernels.ElementwiseSpec("T x", "T y", "y = no_such_function(x);")
    with pytest.raises(Exception, match="no_such_function"):
        compile_source(elementwise_source(bad.in_params, bad.out_params, bad.body, "", "float"))


class _Recorder:
    """Stands in for cupy: records each ElementwiseKernel the optimizers build."""

    def __init__(self) -> None:
        self.kernels: list[tuple] = []

    def ElementwiseKernel(self, in_params, out_params, body, name, preamble=""):  # noqa: N802
        self.kernels.append((in_params, out_params, body, preamble))
        return lambda *args: None


def _optimizer_kernel_sources(monkeypatch) -> list[tuple]:
    rec = _Recorder()
    monkeypatch.setattr(optim_kernels.backend, "cupy", lambda: rec)
    monkeypatch.setattr(optim_kernels, "_KERNELS", {})
    p = np.zeros(3, dtype=np.float32)
    flags = (False, True)
    for maximize, wd, momentum, nesterov, first in itertools.product(flags, repeat=5):
        optim_kernels.sgd(p, p, p if momentum else None, lr=0.1, wd=0.1 * wd, momentum=0.9,
                          dampening=0.0, nesterov=nesterov, maximize=maximize, first=first)  # fmt: skip
    for maximize, wd, decoupled, amsgrad, beta1 in itertools.product(flags, flags, flags, flags,
                                                                     (0.9, 0.3)):  # fmt: skip
        optim_kernels.adam(p, p, p, p, p if amsgrad else None, beta1=beta1, beta2=0.99, eps=1e-8,
                           wd=0.1 * wd, decay=0.99 if decoupled else None, maximize=maximize,
                           step_size=0.1, bias_correction2_sqrt=0.9)  # fmt: skip
    for maximize, wd, centered, momentum, alpha in itertools.product(flags, flags, flags, flags,
                                                                     (0.99, 0.3)):  # fmt: skip
        optim_kernels.rmsprop(p, p, p, p if momentum else None, p if centered else None, lr=0.1,
                              alpha=alpha, eps=1e-8, wd=0.1 * wd, momentum=0.5 * momentum,
                              maximize=maximize)  # fmt: skip
    for maximize, wd in itertools.product(flags, flags):
        optim_kernels.adagrad(p, p, p, clr=0.1, eps=1e-10, wd=0.1 * wd, maximize=maximize)
    return rec.kernels


def test_optimizer_kernels_compile(monkeypatch):
    sources = _optimizer_kernel_sources(monkeypatch)
    assert len(sources) > 40  # every option combination built its own kernel
    for in_params, out_params, body, preamble in sources:
        for ctype in ("float", "double"):
            assert compile_source(elementwise_source(in_params, out_params, body, preamble, ctype))
