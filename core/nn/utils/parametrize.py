"""nn.utils.parametrize: a module attribute computed from other tensors on every access.

`register_parametrization(module, "weight", p)` moves the tensor to
`module.parametrizations.weight.original` (or `original0`, `original1`, ... when
`p.right_inverse` returns several) and gives the module a subclass whose `weight` property
returns p(original) — torch's mechanism, so state dicts carry the same keys. Gradients flow
through p to the originals, which are what an optimizer updates.
"""

from __future__ import annotations

from contextlib import contextmanager

from ...autograd import grad_mode
from ...tensor import Tensor
from ..container import ModuleDict, ModuleList
from ..module import Module
from ..parameter import Parameter

__all__ = ["cached", "is_parametrized", "register_parametrization", "remove_parametrizations"]

_cache: dict | None = None  # (module id, name) -> value, inside `cached()`


@contextmanager
def cached():
    """Compute each parametrized tensor once inside the block, however often it is read."""
    global _cache
    outer = _cache
    _cache = {} if outer is None else outer
    try:
        yield
    finally:
        _cache = outer


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order, and its original(s)."""

    def __init__(self, modules, original: Tensor, unsafe: bool = False) -> None:
        super().__init__(modules)
        self.unsafe = unsafe
        with grad_mode.no_grad():
            new = original
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    new = module.right_inverse(new)
        requires_grad = original.requires_grad
        if isinstance(new, Tensor):
            self.is_tensor, self.ntensors = True, 1
            if new is not original:
                if tuple(new.shape) != tuple(original.shape) and not unsafe:
                    raise ValueError(
                        "The parametrization's right_inverse must return a tensor of the "
                        f"original's shape {tuple(original.shape)}, got {tuple(new.shape)}"
                    )
                if tuple(new.shape) == tuple(original.shape):
                    with grad_mode.no_grad():
                        original.copy_(new)
                else:
                    original = new.detach()
            self.original = _as_parameter(original, requires_grad)
        else:
            self.is_tensor, self.ntensors = False, len(new)
            for i, t in enumerate(new):
                setattr(self, f"original{i}", _as_parameter(t.detach(), requires_grad))

    def right_inverse(self, value: Tensor) -> None:
        """Set the originals so that the parametrized tensor is `value`."""
        with grad_mode.no_grad():
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    value = module.right_inverse(value)
            if self.is_tensor:
                self.original.copy_(value)
            else:
                for i, t in enumerate(value):
                    getattr(self, f"original{i}").copy_(t)

    def forward(self) -> Tensor:
        if self.is_tensor:
            x = self[0](self.original)
        else:
            x = self[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in list(self)[1:]:
            x = module(x)
        return x


def _as_parameter(t: Tensor, requires_grad: bool) -> Tensor:
    if isinstance(t, Parameter):
        return t
    return Parameter(t, requires_grad=requires_grad)


def _make_property(name: str) -> property:
    def get(self):
        key = (id(self), name)
        if _cache is not None and key in _cache:
            return _cache[key]
        value = self.parametrizations[name]()
        if _cache is not None:
            _cache[key] = value
        return value

    def set_(self, value):
        self.parametrizations[name].right_inverse(value)

    return property(get, set_)


def register_parametrization(
    module: Module, tensor_name: str, parametrization: Module, *, unsafe: bool = False
) -> Module:
    """Replace module.<tensor_name> by parametrization(original)."""
    if is_parametrized(module, tensor_name):
        module.parametrizations[tensor_name].append(parametrization)
        return module
    if tensor_name in module._parameters:
        original = module._parameters[tensor_name]
    elif tensor_name in module._buffers:
        original = module._buffers[tensor_name]
    else:
        raise ValueError(
            f"Module '{module}' does not have a parameter, a buffer, or a parametrized element "
            f"with name '{tensor_name}'"
        )
    if not is_parametrized(module):
        module.__class__ = type(f"Parametrized{type(module).__name__}", (type(module),), {})
        module.__class__._parametrized_base = True
        module.parametrizations = ModuleDict()
    plist = ParametrizationList([parametrization], original, unsafe=unsafe)
    module._parameters.pop(tensor_name, None)
    module._buffers.pop(tensor_name, None)
    module.parametrizations[tensor_name] = plist
    setattr(type(module), tensor_name, _make_property(tensor_name))
    return module


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    plists = module.__dict__.get("_modules", {}).get("parametrizations")
    if plists is None:
        return False
    return tensor_name is None or tensor_name in plists


def remove_parametrizations(
    module: Module, tensor_name: str, leave_parametrized: bool = True
) -> Module:
    """Undo register_parametrization: the tensor becomes a plain parameter again, holding
    the parametrized value (or the original, with leave_parametrized=False)."""
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    with grad_mode.no_grad():
        if leave_parametrized:
            value = plist()
            requires_grad = (plist.original if plist.is_tensor else plist.original0).requires_grad
            param = Parameter(value.detach(), requires_grad=requires_grad)
        else:
            if not plist.is_tensor:
                raise ValueError(
                    "Cannot leave unparametrized (`leave_parametrized=False`) a tensor that "
                    "is parametrized in terms of a sequence of tensors."
                )
            param = plist.original
    delattr(type(module), tensor_name)
    del module.parametrizations[tensor_name]
    module.register_parameter(tensor_name, param)
    if not module.parametrizations:
        del module.parametrizations
        module.__class__ = type(module).__bases__[0]
    return module
