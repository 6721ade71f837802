"""shardgrad: a PyTorch-compatible autograd core on numpy (CPU) and cupy (CUDA).

`import shardgrad as torch` works for the supported subset: the names, signatures and
numbers follow torch's.
"""

from __future__ import annotations

from . import (
    _allocator,
    _dtype,
    autograd,
    backend,
    data,
    distributions,
    func,
    linalg,
    nn,
    optim,
    serialization,
    special,
    testing,
    utils,
)
from . import factory as _factory
from ._dtype import (
    bool_,
    double,
    dtype,
    float,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int,
    int8,
    int16,
    int32,
    int64,
    long,
    set_default_dtype,
    short,
    uint8,
)
from ._tensor_str import get_printoptions, set_printoptions
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .autograd.anomaly_mode import is_anomaly_check_nan_enabled, is_anomaly_enabled
from .backend import device
from .determinism import (
    are_deterministic_algorithms_enabled,
    is_deterministic_algorithms_warn_only_enabled,
    use_deterministic_algorithms,
)
from .factory import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    get_default_device,
    is_tensor,
    linspace,
    logspace,
    manual_seed,
    numel,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    set_default_device,
    tensor,
    zeros,
    zeros_like,
)
from .ops import *  # noqa: F403 - the op families' public functions
from .ops.lu_factorization import torch_lu as lu
from .ops.lu_factorization import torch_lu_solve as lu_solve
from .ops.matrix_functions import torch_cholesky as cholesky
from .ops.matrix_functions import torch_cross as cross
from .ops.matrix_functions import torch_qr as qr
from .ops.matrix_functions import torch_slogdet as slogdet
from .ops.matrix_functions import torch_svd as svd
from .random import Generator, get_rng_state, initial_seed, seed, set_rng_state
from .serialization import load, save
from .tensor import Size, Tensor
from .tensor import install_methods as _install_methods
from .type_info import finfo, iinfo

bool = bool_  # noqa: A001 - torch.bool
FloatTensor = DoubleTensor = LongTensor = None  # legacy constructors are not provided

__version__ = "0.1.0"

_install_methods(_factory.TENSOR_METHODS)  # x.new_zeros(...) and kin
_allocator.tune_on_import()  # steps reuse their pages instead of faulting them in again


class _Cuda:
    """`shardgrad.cuda`: availability and device count, without importing cupy eagerly."""

    @staticmethod
    def is_available() -> bool:
        return backend.cuda_is_available()

    @staticmethod
    def device_count() -> int:
        return backend.cupy().cuda.runtime.getDeviceCount() if backend.cuda_is_available() else 0

    @staticmethod
    def current_device() -> int:
        return backend.resolve(backend.device("cuda")).index

    @staticmethod
    def synchronize(device=None) -> None:  # noqa: F811 - torch's parameter name
        if backend.cuda_is_available():
            backend.synchronize(None if device is None else backend.as_device(device))

    @staticmethod
    def manual_seed(seed: int) -> None:  # noqa: F811 - torch's parameter name
        from . import random as _r  # noqa: PLC0415

        _r.cuda_manual_seed(seed)

    manual_seed_all = manual_seed


cuda = _Cuda()

del _dtype
