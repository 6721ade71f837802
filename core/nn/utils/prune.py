"""nn.utils.prune: zero out a fraction of a module's weights and keep them zero, as
torch.nn.utils.prune does it.

Pruning `name` moves the parameter to `<name>_orig`, registers a `<name>_mask` buffer of ones
and zeros, and installs a forward pre-hook that sets `<name> = <name>_orig * <name>_mask`
before every call, so the pruned entries get no gradient and stay zero through training.
Pruning again combines the masks: the new method only chooses among the entries still
unpruned (torch's PruningContainer). `remove` makes the pruning permanent: `<name>` becomes a
plain parameter again, holding the masked values.

`amount` is a fraction of the entries (a float in [0, 1]) or a count (an int). Unstructured
methods pick single entries; structured ones pick whole slices along `dim` (output channels
for dim=0), by their L-n norm or at random.
"""

from __future__ import annotations

import numbers

import numpy as np

from ... import random as _random
from ...autograd import grad_mode
from ...backend import xp_of
from ...tensor import Tensor
from ..module import Module

__all__ = [
    "BasePruningMethod", "CustomFromMask", "Identity", "L1Unstructured", "LnStructured",
    "PruningContainer", "RandomStructured", "RandomUnstructured", "custom_from_mask",
    "global_unstructured", "identity", "is_pruned", "l1_unstructured", "ln_structured",
    "random_structured", "random_unstructured", "remove",
]  # fmt: skip


# ================================================================ how many
def _validate_amount(amount) -> None:
    if not isinstance(amount, numbers.Real) or isinstance(amount, bool):
        raise TypeError(f"Invalid type for amount: {amount}. Must be int or float.")
    if (isinstance(amount, numbers.Integral) and amount < 0) or (
        not isinstance(amount, numbers.Integral) and not 0.0 <= float(amount) <= 1.0
    ):
        raise ValueError(
            f"amount={amount} should either be a float in the range [0, 1] or a non-negative "
            "integer"
        )


def _count(amount, total: int) -> int:
    """The number of entries (or slices) to prune out of `total`."""
    if isinstance(amount, numbers.Integral):
        if amount > total:
            raise ValueError(
                f"amount={amount} should be smaller than the number of parameters to prune={total}"
            )
        return int(amount)
    return round(float(amount) * total)


# ================================================================ the methods
class BasePruningMethod:
    """A way to choose a mask. Subclasses give compute_mask(t, default_mask)."""

    PRUNING_TYPE = "unstructured"
    _tensor_name: str = ""

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        raise NotImplementedError

    def apply_mask(self, module: Module) -> Tensor:
        orig = getattr(module, self._tensor_name + "_orig")
        mask = getattr(module, self._tensor_name + "_mask")
        return orig * mask

    def __call__(self, module: Module, inputs) -> None:
        object.__setattr__(module, self._tensor_name, self.apply_mask(module))

    def prune(self, t: Tensor, default_mask: Tensor | None = None, importance_scores=None):
        scores = importance_scores if importance_scores is not None else t
        mask = default_mask if default_mask is not None else _ones_like(t)
        return t * self.compute_mask(scores, default_mask=mask)

    def remove(self, module: Module) -> None:
        """<name>_orig, now holding the masked values, becomes <name> again (the same
        Parameter, so an optimizer holding it, and its .grad, carry on)."""
        name = self._tensor_name
        with grad_mode.no_grad():
            weight = self.apply_mask(module)
        module.__dict__.pop(name, None)
        orig = module._parameters.pop(name + "_orig")
        del module._buffers[name + "_mask"]
        orig._data[...] = weight._data
        orig._bump_version()
        module.register_parameter(name, orig)

    @classmethod
    def apply(cls, module: Module, name: str, *args, importance_scores=None, **kwargs):
        """Prune module.<name> with this method, combining with any earlier pruning."""
        earlier = None
        hooks = [
            (key, hook)
            for key, hook in module._forward_pre_hooks.items()
            if isinstance(hook, BasePruningMethod) and hook._tensor_name == name
        ]
        if len(hooks) > 1:
            raise RuntimeError(f"more than one pruning hook on parameter {name}")
        method = cls(*args, **kwargs)
        method._tensor_name = name
        if hooks:
            key, earlier = hooks[0]
            del module._forward_pre_hooks[key]
            container = (
                earlier if isinstance(earlier, PruningContainer) else PruningContainer(earlier)
            )
            container.add_pruning_method(method)
            method = container
        orig = getattr(module, name + "_orig") if earlier is not None else getattr(module, name)
        scores = importance_scores if importance_scores is not None else orig
        if tuple(scores.shape) != tuple(orig.shape):
            raise ValueError(
                f"importance_scores should have the same shape as parameter {name} of {module}"
            )
        if earlier is None:  # first pruning: move the parameter aside
            del module._parameters[name]
            module.register_parameter(name + "_orig", orig)
            default_mask = _ones_like(orig)
        else:
            default_mask = getattr(module, name + "_mask").detach().clone()
        with grad_mode.no_grad():
            mask = method.compute_mask(scores.detach(), default_mask=default_mask)
        module.register_buffer(name + "_mask", mask)
        object.__setattr__(module, name, method.apply_mask(module))
        module.register_forward_pre_hook(method)
        return method


class PruningContainer(BasePruningMethod):
    """The sequence of pruning methods applied to one parameter; each new one prunes among
    the entries the earlier ones left."""

    def __init__(self, *methods: BasePruningMethod) -> None:
        self._pruning_methods: tuple = ()
        for m in methods:
            if isinstance(m, PruningContainer):
                self._pruning_methods += m._pruning_methods
            else:
                self.add_pruning_method(m)

    def add_pruning_method(self, method: BasePruningMethod) -> None:
        if self._tensor_name and method._tensor_name != self._tensor_name:
            raise ValueError(
                f"Can only add pruning methods acting on the parameter named "
                f"'{self._tensor_name}' to PruningContainer. Found '{method._tensor_name}'"
            )
        self._tensor_name = method._tensor_name
        self._pruning_methods += (method,)

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        method = self._pruning_methods[-1]
        kind = method.PRUNING_TYPE
        xp = xp_of(t._data)
        mask = default_mask._data.copy()
        if kind == "unstructured":  # choose among the entries still unpruned
            alive = mask == 1
            chosen = method.compute_mask(
                Tensor._make(t._data[alive]), default_mask=Tensor._make(mask[alive])
            )._data
            mask[alive] = chosen
        elif kind == "structured":  # choose among the slices that still hold an entry
            dim = method.dim % t.ndim
            others = tuple(d for d in range(t.ndim) if d != dim)
            alive = xp.asarray(mask.sum(axis=others) != 0) if others else mask != 0
            index = [slice(None)] * t.ndim
            index[dim] = alive
            sub_t = t._data[tuple(index)]
            sub_mask = mask[tuple(index)]
            chosen = method.compute_mask(Tensor._make(sub_t), Tensor._make(sub_mask))._data
            mask[tuple(index)] = chosen
        else:  # global: a custom mask
            mask = method.compute_mask(t, default_mask=default_mask)._data
        return Tensor._make(mask)


class Identity(BasePruningMethod):
    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        return default_mask

    @classmethod
    def apply(cls, module: Module, name: str):  # type: ignore[override]
        return super().apply(module, name)


class _Unstructured(BasePruningMethod):
    """Prune the `amount` entries with the lowest scores (see `_scores`)."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount) -> None:
        _validate_amount(amount)
        self.amount = amount

    def _scores(self, t: Tensor):
        raise NotImplementedError

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        k = _count(self.amount, t.numel())
        mask = default_mask._data.copy()
        if k:
            mask.reshape(-1)[_smallest(self._scores(t).reshape(-1), k)] = 0
        return Tensor._make(mask)


class RandomUnstructured(_Unstructured):
    def _scores(self, t: Tensor):
        return _random.generator(t.device).random(tuple(t.shape))

    @classmethod
    def apply(cls, module: Module, name: str, amount):  # type: ignore[override]
        return super().apply(module, name, amount=amount)


class L1Unstructured(_Unstructured):
    def _scores(self, t: Tensor):
        return xp_of(t._data).abs(t._data)

    @classmethod
    def apply(cls, module: Module, name: str, amount, importance_scores=None):  # type: ignore[override]
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomStructured(BasePruningMethod):
    PRUNING_TYPE = "structured"

    def __init__(self, amount, dim: int = -1) -> None:
        _validate_amount(amount)
        self.amount, self.dim = amount, dim

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        dim = self.dim % t.ndim
        k = _count(self.amount, t.shape[dim])
        scores = _random.generator(t.device).random(t.shape[dim])
        return _structured_mask(default_mask, dim, _smallest(scores, k))

    @classmethod
    def apply(cls, module: Module, name: str, amount, dim: int = -1):  # type: ignore[override]
        return super().apply(module, name, amount=amount, dim=dim)


class LnStructured(BasePruningMethod):
    PRUNING_TYPE = "structured"

    def __init__(self, amount, n, dim: int = -1) -> None:
        _validate_amount(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        dim = self.dim % t.ndim
        k = _count(self.amount, t.shape[dim])
        others = tuple(d for d in range(t.ndim) if d != dim)
        norms = t.norm(self.n, dim=others)._data if others else xp_of(t._data).abs(t._data)
        return _structured_mask(default_mask, dim, _smallest(norms, k))

    @classmethod
    def apply(cls, module: Module, name: str, amount, n, dim, importance_scores=None):  # type: ignore[override]
        return super().apply(
            module, name, amount=amount, n=n, dim=dim, importance_scores=importance_scores
        )


class CustomFromMask(BasePruningMethod):
    PRUNING_TYPE = "global"

    def __init__(self, mask: Tensor) -> None:
        self.mask = mask

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        if tuple(default_mask.shape) != tuple(self.mask.shape):
            raise ValueError("the mask's shape must match the parameter's")
        return Tensor._make((default_mask._data * self.mask._data).astype(default_mask._data.dtype))

    @classmethod
    def apply(cls, module: Module, name: str, mask):  # type: ignore[override]
        return super().apply(module, name, mask=mask)


def _ones_like(t: Tensor) -> Tensor:
    return Tensor._make(xp_of(t._data).ones(tuple(t.shape), dtype=t._data.dtype))


def _smallest(values, k: int):
    """The indices of the k smallest values (the first ones among ties, a stable order)."""
    xp = xp_of(values)
    return xp.argsort(values, kind="stable")[:k]


def _structured_mask(default_mask: Tensor, dim: int, pruned) -> Tensor:
    mask = default_mask._data.copy()
    index = [slice(None)] * mask.ndim
    index[dim] = pruned
    mask[tuple(index)] = 0
    return Tensor._make(mask)


# ================================================================ the functions
def identity(module: Module, name: str) -> Module:
    Identity.apply(module, name)
    return module


def random_unstructured(module: Module, name: str, amount) -> Module:
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module: Module, name: str, amount, importance_scores=None) -> Module:
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module: Module, name: str, amount, dim: int) -> Module:
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module: Module, name: str, amount, n, dim: int, importance_scores=None) -> Module:
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def custom_from_mask(module: Module, name: str, mask: Tensor) -> Module:
    CustomFromMask.apply(module, name, mask)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs) -> None:
    """Prune across several parameters at once: the amount is taken from all their entries
    together (e.g. the smallest 20% of every weight in the network by magnitude)."""
    parameters = list(parameters)
    importance_scores = importance_scores or {}
    scores = []
    masks = []
    for module, name in parameters:
        score = importance_scores.get((module, name), getattr(module, name))
        scores.append(np.asarray(_host(score.detach()._data)).reshape(-1))
        existing = getattr(module, name + "_mask", None)
        masks.append(
            np.asarray(_host(existing._data)).reshape(-1)
            if existing is not None
            else np.ones(score.numel(), dtype=np.float64)
        )
    flat_scores = Tensor._make(np.concatenate(scores))
    flat_mask = Tensor._make(np.concatenate(masks).astype(flat_scores._data.dtype))
    method = pruning_method(**kwargs)
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(
            'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
            f"{pruning_method} of type {method.PRUNING_TYPE}"
        )
    container = PruningContainer(method)
    final = container.compute_mask(flat_scores, default_mask=flat_mask)._data
    start = 0
    for (module, name), score in zip(parameters, scores):
        part = final[start : start + score.size]
        start += score.size
        param = getattr(module, name)
        mask = Tensor._make(
            xp_of(param._data).asarray(part.reshape(tuple(param.shape))).astype(param._data.dtype)
        )
        custom_from_mask(module, name, mask)


def _host(a):
    return a.get() if hasattr(a, "get") else a


def remove(module: Module, name: str) -> Module:
    """Make the pruning of module.<name> permanent."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ValueError(
        f"Parameter '{name}' of module {module} has to be pruned before pruning can be removed"
    )


def is_pruned(module: Module) -> bool:
    """Whether any submodule of `module` carries a pruning hook."""
    return any(
        isinstance(hook, BasePruningMethod)
        for m in module.modules()
        for hook in m._forward_pre_hooks.values()
    )
