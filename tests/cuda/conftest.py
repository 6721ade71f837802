"""The CUDA suite: shardgrad on device='cuda' against torch.

Each differential test runs on two targets:

- "cuda": shardgrad on a real GPU (cupy) against torch CUDA. Marked `cuda`, skipped with a
  reason where there is no cupy or no GPU.
- "fake": shardgrad's CUDA code paths on a CPU stand-in for cupy (fake_cupy.py) that refuses
  implicit host copies the way cupy does, against torch on the CPU. It runs everywhere, so a
  numpy call on a device array or a host round trip in an op is caught without a GPU.

A case marked `torch_cpu_oracle` compares the GPU with torch on the CPU: where torch's CUDA
kernels break ties differently from its CPU ones (sorts that are not stable: mode, median,
quantile), shardgrad gives the CPU's answer on both devices; where torch's CUDA lacks a
feature (lstsq's drivers other than gels), shardgrad's GPU has it.

Most tests reuse the CPU suite's tables and test functions (tests/core): the `target` fixture
makes both libraries allocate on the target device by default (`set_default_device`), and
swaps the CPU suite's host-copy helpers for ones that copy device tensors back and check that
shardgrad's results really live on the GPU.
"""

from __future__ import annotations

import functools
import inspect
import sys
from pathlib import Path

import numpy as np
import pytest

import shardgrad as sg

CORE_TESTS = Path(__file__).resolve().parent.parent / "core"
if str(CORE_TESTS) not in sys.path:
    sys.path.insert(0, str(CORE_TESTS))

SKIP_REASON = "CUDA not available: no cupy or no GPU"


def cuda_available() -> bool:
    return sg.cuda.is_available()


def pytest_collection_modifyitems(config, items) -> None:
    if cuda_available():
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


# ---------------------------------------------------------------- host copies
def host(x) -> np.ndarray:
    """A numpy copy of a shardgrad or torch tensor (or array) from any device; shardgrad
    results of a device test must be on the GPU (a silent CPU fallback would pass
    otherwise)."""
    if isinstance(x, sg.Tensor):
        assert x.device.type == "cuda", f"result on {x.device}, expected the GPU"
        return np.asarray(x.detach().cpu().numpy())
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    if hasattr(x, "get"):
        return x.get()
    return np.asarray(x)


def host_any(x) -> np.ndarray:
    """`host` without the device check, for values torch itself keeps on the CPU (an
    optimizer's `step` counter)."""
    if isinstance(x, sg.Tensor):
        return np.asarray(x.detach().cpu().numpy())
    return host(x)


def _close(actual, expected, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    a, e = host(actual), host(expected)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)


def _copy_state(sg_module, torch_module) -> None:
    state = {k: host(v).copy() for k, v in torch_module.state_dict().items()}
    sg_module.load_state_dict(state)


def _patch_helpers(monkeypatch) -> None:
    """Point the CPU suite's numpy conversions at `host` (they call `.numpy()`, which a
    device tensor refuses in both libraries)."""
    for mod in [sys.modules.get(name) for name in ("tests.conftest", *_REUSED)]:
        if mod is None:
            continue
        if hasattr(mod, "_np"):
            monkeypatch.setattr(mod, "_np", host)
        if hasattr(mod, "to_numpy"):
            lenient = mod.__name__ == "test_optim"
            monkeypatch.setattr(mod, "to_numpy", host_any if lenient else host)
        if hasattr(mod, "close"):
            monkeypatch.setattr(mod, "close", _close)
        if hasattr(mod, "copy_state"):
            monkeypatch.setattr(mod, "copy_state", _copy_state)


# CPU test modules whose functions the CUDA suite runs
_REUSED = (
    "_nn_helpers",
    "test_ops_math",
    "test_ops_reduce",
    "test_ops_shape",
    "test_ops_indexing",
    "test_ops_index_reductions",
    "test_linalg",
    "test_linalg_factorizations_more",
    "test_ops_tensor_api",
    "test_special_functions",
    "test_special_more",
    "test_distributions",
    "test_distributions_rsample",
    "test_distributions_kl_families",
    "test_distributions_matrix",
    "test_airy",
    "test_bessel_jy",
    "test_bessel_k",
    "test_orthogonal_polynomials",
    "test_distributions_transformed",
    "test_nn_layers",
    "test_nn_grid_sample",
    "test_nn_functional_aliases",
    "test_nn_loss",
    "test_ctc_loss",
    "test_fractional_pooling",
    "test_nn_attention",
    "test_nn_transformer",
    "test_nn_rnn",
    "test_optim",
)


# ---------------------------------------------------------------- targets
@pytest.fixture(params=["fake", pytest.param("cuda", marks=pytest.mark.cuda)])
def target(request, monkeypatch):
    """Run the test with both libraries allocating on the target device; yields the
    torch device the oracle runs on."""
    import torch

    kind = request.param
    if kind == "fake":
        import fake_cupy

        fake_cupy.install(monkeypatch)
        torch_device = "cpu"
    elif request.node.get_closest_marker("torch_cpu_oracle") is not None:
        torch_device = "cpu"  # torch's CUDA kernels answer differently (see the marker)
    else:
        torch_device = "cuda"
    _patch_helpers(monkeypatch)
    sg.set_default_device("cuda")
    if torch_device != "cpu":  # (a default-device mode costs torch's CPU path its l1 weights)
        torch.set_default_device(torch_device)
    try:
        yield torch_device
    finally:
        sg.set_default_device(None)
        torch.set_default_device(None)


def on_target(cpu_test):
    """A CUDA-suite test that runs the CPU suite's `cpu_test`, with its parametrizations,
    under the `target` fixture."""

    @functools.wraps(cpu_test)
    def test(target, **kwargs):
        return cpu_test(**kwargs)

    params = [p for p in inspect.signature(cpu_test).parameters.values()]
    first = inspect.Parameter("target", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    test.__signature__ = inspect.Signature(
        [first, *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params)]
    )
    del test.__wrapped__  # pytest must read the new signature, not the CPU test's
    test.pytestmark = list(getattr(cpu_test, "pytestmark", []))
    return test
