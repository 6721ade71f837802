"""The op families. Each module holds its ops (forward beside backward), the public
functions, and a `TENSOR_METHODS` table installed onto Tensor here."""

from __future__ import annotations

from ..tensor import install_methods
from . import (
    arrangements,
    calculus,
    composite,
    convert,
    decompositions,
    elementwise,
    gamma,
    index_reductions,
    indexing,
    inplace,
    integer_float_bits,
    join,
    least_squares,
    linalg_ex,
    lu_factorization,
    matrix_exponential,
    matrix_functions,
    metadata,
    nn_ops,
    products,
    reduce,
    sampling,
    scans,
    shape,
    sorting,
    special_functions,
    statistics,
    torch_functions,
    torch_namespace,
    windows,
)
from .arrangements import *  # noqa: F403
from .calculus import *  # noqa: F403
from .composite import *  # noqa: F403
from .convert import *  # noqa: F403
from .elementwise import *  # noqa: F403
from .gamma import *  # noqa: F403
from .index_reductions import *  # noqa: F403
from .indexing import *  # noqa: F403
from .integer_float_bits import *  # noqa: F403
from .join import *  # noqa: F403
from .lu_factorization import *  # noqa: F403
from .matrix_exponential import *  # noqa: F403
from .matrix_functions import *  # noqa: F403
from .metadata import *  # noqa: F403
from .nn_ops import *  # noqa: F403
from .products import *  # noqa: F403
from .reduce import *  # noqa: F403
from .sampling import *  # noqa: F403
from .scans import *  # noqa: F403
from .shape import *  # noqa: F403
from .sorting import *  # noqa: F403
from .special_functions import *  # noqa: F403
from .statistics import *  # noqa: F403
from .torch_functions import *  # noqa: F403
from .torch_namespace import *  # noqa: F403
from .windows import *  # noqa: F403

_FAMILIES = (
    elementwise, reduce, shape, join, sorting, products, indexing, convert, inplace, nn_ops,
    composite, sampling, matrix_functions, scans, arrangements, statistics, gamma, integer_float_bits,
    index_reductions, lu_factorization, matrix_exponential, special_functions, calculus, metadata,
)  # fmt: skip
for _family in _FAMILIES:
    install_methods(_family.TENSOR_METHODS)
