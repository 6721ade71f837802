"""The Optimizer base class: parameter groups, per-parameter state and torch's state_dict format.

Subclasses write their updates straight into the parameters' arrays (numpy or cupy) with
ufuncs and `out=`, so a step records no graph and allocates nothing after the first one (see
`_arrays` for the scratch space and the blocked launcher).
"""

from __future__ import annotations

import functools
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from copy import deepcopy
from itertools import chain
from typing import Any

import numpy as np

from .. import _dtype, backend
from ..autograd import grad_mode
from ..tensor import Tensor
from ._arrays import Workspace, copy_array

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Singleton marking a default that every parameter group must give itself."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

StateDict = dict[str, Any]
ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]] | Iterable[tuple[str, Tensor]]


class _RemovableHandle:
    """What the hook registrations return: `.remove()` takes the hook out again."""

    _next_id = 0

    def __init__(self, hooks: OrderedDict) -> None:
        self._hooks = hooks
        self.id = _RemovableHandle._next_id
        _RemovableHandle._next_id += 1

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


def to_scalar(x) -> float:
    """A group's lr (or other hyperparameter) as a Python number, also when it is a Tensor."""
    return x if type(x) is float else float(x)


def scalar_tensor(value: float) -> Tensor:
    """A 0-d host tensor for `state['step']`, in torch's scalar dtype (float32, or float64 when
    that is the default dtype)."""
    dt = np.float64 if _dtype.get_default_dtype() is _dtype.float64 else np.float32
    return Tensor._make(np.array(value, dtype=dt))


def bump_step(state: dict) -> float:
    """`state['step'] += 1` on the host scalar tensor; returns the new count as a float."""
    st = state["step"]._data
    st += 1
    return float(st)


def check_lr(lr) -> None:
    """torch's check of a learning rate: a non-negative number or a one-element Tensor."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")


def check_adam_args(lr, betas, eps: float, weight_decay: float) -> None:
    """torch's argument checks shared by the Adam family (Adam, AdamW, NAdam, RAdam, Adamax)."""
    check_lr(lr)
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def reject_unsupported(**flags: bool) -> None:
    """Refuse torch options whose semantics shardgrad does not provide (graph-capture and
    differentiable steps). `foreach` and `fused` are accepted and change nothing: every update
    here is already vectorised per array, and fused into one kernel on the GPU."""
    for name, value in flags.items():
        if value:
            raise NotImplementedError(f"shardgrad optimizers do not support {name}=True")


def _typename(obj) -> str:
    t = type(obj)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _tracked_step(step: Callable) -> Callable:
    """Wrap a subclass's `step` so that hooks run and schedulers can tell it was called."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        self._opt_called = True
        pre, post = self._optimizer_step_pre_hooks, self._optimizer_step_post_hooks
        if not pre and not post:
            return step(self, *args, **kwargs)
        for hook in list(pre.values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        f"{hook} must return None or a tuple of (new_args, new_kwargs), "
                        f"but got {result}."
                    )
                args, kwargs = result
        out = step(self, *args, **kwargs)
        for hook in list(post.values()):
            hook(self, args, kwargs)
        return out

    wrapper._tracked = True
    return wrapper


class Optimizer:
    """Base class of every optimizer: holds `param_groups`, `state` and `defaults`.

    `state` maps each parameter to a dict of tensors that live on the parameter's device,
    except `state['step']`, a 0-d host tensor as in torch.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_tracked", False):
            cls.step = _tracked_step(step)

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        self._ws = Workspace()
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                "dicts, but got " + _typename(params)
            )
        self.state: defaultdict[Tensor, Any] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []

        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    # ------------------------------------------------------------------ pickling, repr
    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_optimizer_step_pre_hooks", OrderedDict())
        self.__dict__.setdefault("_optimizer_step_post_hooks", OrderedDict())
        self.__dict__.setdefault("_ws", Workspace())
        self.defaults.setdefault("differentiable", False)

    def __repr__(self) -> str:
        out = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            out += f"\nParameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    out += f"    {key}: {group[key]}\n"
        return out + ")"

    # ------------------------------------------------------------------ hooks
    def register_step_pre_hook(self, hook: Callable) -> _RemovableHandle:
        """`hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs)` before each step."""
        handle = _RemovableHandle(self._optimizer_step_pre_hooks)
        self._optimizer_step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable) -> _RemovableHandle:
        """`hook(optimizer, args, kwargs) -> None` after each step."""
        handle = _RemovableHandle(self._optimizer_step_post_hooks)
        self._optimizer_step_post_hooks[handle.id] = hook
        return handle

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (with its own hyperparameters) to `param_groups`."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")

        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs. Please use a list "
                "instead."
            )
        else:
            param_group["params"] = list(params)

        tensors, names = [], []
        for param in param_group["params"]:
            if isinstance(param, tuple):
                names.append(param[0])
                tensors.append(param[1])
            else:
                tensors.append(param)
        param_group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError(
                    "all optimizer params should be with/without names. Some param names are "
                    "missing"
                )
            param_group["param_names"] = names

        for param in tensors:
            if not isinstance(param, Tensor):
                raise TypeError(
                    "optimizer can only optimize Tensors, but one of the params is "
                    + _typename(param)
                )
            if not self.defaults.get("differentiable", None) and not (
                param.is_leaf or param.retains_grad
            ):
                raise ValueError("can't optimize a non-leaf Tensor")

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    "parameter group didn't specify a value of required optimization "
                    f"parameter {name}"
                )
            param_group.setdefault(name, default)

        ids = [id(p) for p in tensors]
        if len(ids) != len(set(ids)):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; "
                "in future, this will cause an error; "
                "see github.com/pytorch/pytorch/issues/40967 for more information",
                stacklevel=3,
            )

        seen: set[int] = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {which} to the optimizer"
                )
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")

        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ grads
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (default) or zero them in place."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g.requires_grad_(False)
                    g._data.fill(0)
                    g._bump_version()

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Update the parameters once; `closure` re-evaluates the loss (under grad mode)."""
        raise NotImplementedError

    def _run_closure(self, closure):
        if closure is None:
            return None
        with grad_mode.enable_grad():
            return closure()

    # ------------------------------------------------------------------ state dict
    def state_dict(self) -> StateDict:
        """The state in torch's format: `state` keyed by parameter index, `param_groups` with
        `params` as index lists. Tensors are returned by reference, as torch does."""
        mapping: dict[int, int] = {}
        start = 0

        def pack_group(group: dict[str, Any]) -> dict[str, Any]:
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        groups = [pack_group(g) for g in self.param_groups]
        state = {(mapping[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: StateDict) -> None:
        """Load a state saved by `state_dict` (shardgrad's or torch's layout).

        State tensors are copied onto each parameter's device and, for floating parameters,
        cast to its dtype; `step` keeps its own dtype and stays on the host. Unlike torch, the
        loaded state never aliases the tensors of `state_dict`, so the source can keep
        stepping independently. Arrays (numpy/cupy, anything with `__array__`, or another
        library's GPU tensor through `__cuda_array_interface__`) are accepted where tensors are
        expected, which lets checkpoints store plain arrays or torch's tensors.
        """
        state_dict = state_dict.copy()
        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])

        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of "
                "optimizer's group"
            )

        id_map = dict(
            zip(
                chain.from_iterable(g["params"] for g in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
                strict=True,
            )
        )

        state: defaultdict[Tensor, dict[Any, Any]] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = _cast(param, v)
            else:
                state[k] = v

        def update_group(group: dict[str, Any], new_group: dict[str, Any]) -> dict[str, Any]:
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            return new_group

        param_groups = [update_group(g, ng) for g, ng in zip(groups, saved_groups, strict=True)]
        self.__setstate__({"state": state, "param_groups": param_groups})
        self._fill_group_defaults()

    def _fill_group_defaults(self) -> None:
        """Give groups loaded from an older layout the hyperparameters they lack, and turn a
        plain-number `step` into the host scalar tensor the updates expect."""
        for group in self.param_groups:
            for name, default in self.defaults.items():
                if default is not required:
                    group.setdefault(name, default)
            for p in group["params"]:
                st = self.state.get(p)
                if st and "step" in st and not isinstance(st["step"], Tensor):
                    st["step"] = scalar_tensor(float(st["step"]))


def _as_array(value):
    if isinstance(value, Tensor):
        return value._data
    if backend.is_array(value):
        return value
    if hasattr(value, "__cuda_array_interface__"):
        # another library's GPU tensor (a checkpoint written by torch on the GPU): numpy
        # cannot read it, cupy views it in place and `_cast` then copies it
        return backend.cupy().asarray(value)
    return np.asarray(value)


def _is_tensor_like(value) -> bool:
    if isinstance(value, Tensor) or backend.is_array(value):
        return True
    return hasattr(value, "__array__") and hasattr(value, "shape") and not np.isscalar(value)


def _cast(param: Tensor, value, key=None):
    """Deep-copy a loaded state value, moving tensors to `param`'s device and dtype."""
    if _is_tensor_like(value):
        arr = _as_array(value)
        if key == "step":
            return Tensor._make(np.array(backend.to_device(arr, backend.CPU), copy=True))
        if param._data.dtype.kind == "f":
            arr = arr.astype(param._data.dtype, copy=False)
        arr = backend.to_device(arr, param.device)
        return Tensor._make(copy_array(arr))
    if isinstance(value, dict):
        return {k: _cast(param, v, key=k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(param, v) for v in value)
    return value
