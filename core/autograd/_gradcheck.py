"""Finite-difference checks of analytical gradients, with torch's defaults.

`gradcheck` compares the Jacobian from backward with central differences, column by column;
`gradgradcheck` does the same for the gradient function itself (a vector-Jacobian product
with random `grad_outputs`), which exercises every backward formula under `create_graph`.
"""

from __future__ import annotations

import numpy as np

from . import grad_mode


class GradcheckError(RuntimeError):
    pass


def _as_tuple(x):
    from ..tensor import Tensor  # noqa: PLC0415

    return (x,) if isinstance(x, Tensor) else tuple(x)


def _numerical_jacobian(fn, inputs, outputs, eps):
    from ..tensor import Tensor  # noqa: PLC0415

    jac = []  # jac[i][j]: d out_j / d in_i, shape (in_i.numel, out_j.numel)
    for inp in inputs:
        if not (isinstance(inp, Tensor) and inp.requires_grad):
            jac.append(None)
            continue
        data = inp._data
        flat = data.reshape(-1)
        cols = [np.zeros((data.size, o.numel())) for o in outputs]
        for k in range(data.size):
            orig = flat[k].item()
            flat[k] = orig + eps
            plus = [_host(o) for o in _as_tuple(fn(*inputs))]
            flat[k] = orig - eps
            minus = [_host(o) for o in _as_tuple(fn(*inputs))]
            flat[k] = orig
            for j in range(len(outputs)):
                cols[j][k] = ((plus[j] - minus[j]) / (2 * eps)).reshape(-1)
        jac.append(cols)
    return jac


def _host(t):
    """A float64 host copy: an output may be a view of the input being perturbed."""
    d = t.detach()._data
    return np.array(d.get() if hasattr(d, "get") else d, dtype=np.float64, copy=True)


def _analytical_jacobian(inputs, outputs):
    from ..tensor import Tensor  # noqa: PLC0415
    from . import grad  # noqa: PLC0415

    diff_inputs = [i for i in inputs if isinstance(i, Tensor) and i.requires_grad]
    jac = [
        [np.zeros((i.numel(), o.numel())) for o in outputs]
        if (isinstance(i, Tensor) and i.requires_grad)
        else None
        for i in inputs
    ]
    for j, out in enumerate(outputs):
        if not out.requires_grad:
            continue
        for k in range(out.numel()):
            g = np.zeros(out.numel())
            g[k] = 1.0
            from ..factory import tensor  # noqa: PLC0415

            gt = tensor(g.reshape(out.shape), dtype=out.dtype, device=out.device)
            grads = grad([out], diff_inputs, [gt], retain_graph=True, allow_unused=True)
            it = iter(grads)
            for i in range(len(inputs)):
                if jac[i] is None:
                    continue
                gi = next(it)
                if gi is not None:
                    jac[i][j][:, k] = _host(gi).reshape(-1)
    return jac


def gradcheck(
    func,
    inputs,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    fast_mode: bool = False,
    masked: bool | None = None,
) -> bool:
    from ..tensor import Tensor  # noqa: PLC0415

    inputs = _as_tuple(inputs)
    for i in inputs:
        if isinstance(i, Tensor) and i.requires_grad and i.dtype.name != "float64":
            import warnings  # noqa: PLC0415

            warnings.warn(
                "Input #0 requires gradient and is not a double precision floating point. This "
                "check will likely fail if all the inputs are not of double precision floating point. ",
                stacklevel=2,
            )
    with grad_mode.enable_grad():
        outputs = _as_tuple(func(*inputs))
    outputs = tuple(o for o in outputs if isinstance(o, Tensor))
    with grad_mode.no_grad():
        numerical = _numerical_jacobian(func, inputs, outputs, eps)
    analytical = _analytical_jacobian(inputs, outputs)
    for i, (num, ana) in enumerate(zip(numerical, analytical)):
        if num is None:
            continue
        for j, (n, a) in enumerate(zip(num, ana)):
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                if raise_exception:
                    raise GradcheckError(
                        f"Jacobian mismatch for output {j} with respect to input {i},\n"
                        f"numerical:{n}\nanalytical:{a}\n"
                    )
                return False
    return True


def gradgradcheck(
    func,
    inputs,
    grad_outputs=None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    gen_non_contig_grad_outputs: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    check_undefined_grad: bool = True,
    check_grad_dtypes: bool = False,
    check_batched_grad: bool = False,
    check_fwd_over_rev: bool = False,
    check_rev_over_rev: bool = True,
    fast_mode: bool = False,
    masked: bool = False,
) -> bool:
    from ..factory import tensor  # noqa: PLC0415
    from ..tensor import Tensor  # noqa: PLC0415
    from . import grad  # noqa: PLC0415

    inputs = _as_tuple(inputs)
    with grad_mode.enable_grad():
        outputs = tuple(o for o in _as_tuple(func(*inputs)) if isinstance(o, Tensor))
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = tuple(
            tensor(rng.standard_normal(o.shape), dtype=o.dtype, device=o.device, requires_grad=True)
            for o in outputs
        )
    else:
        grad_outputs = _as_tuple(grad_outputs)
    n_in = len(inputs)

    def first_grads(*args):
        ins, gos = args[:n_in], args[n_in:]
        with grad_mode.enable_grad():  # the numerical pass runs the whole function under no_grad
            outs = tuple(o for o in _as_tuple(func(*ins)) if isinstance(o, Tensor))
            diff = [i for i in ins if isinstance(i, Tensor) and i.requires_grad]
            gs = grad(outs, diff, gos, create_graph=True, allow_unused=True)
            return tuple(g if g is not None else d * 0 for g, d in zip(gs, diff))

    return gradcheck(
        first_grads,
        inputs + tuple(grad_outputs),
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
    )
