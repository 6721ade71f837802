"""Model specs: a module's architecture as JSON-able data, and back.

`module.spec()` describes a built-in module by its class name and the constructor arguments
it was built with, a container by the specs of its children, and any other Module subclass
by its import path (`"pkg.module:ClassName"`) plus its constructor arguments. `from_spec`
rebuilds the module from that description. Nothing is ever unpickled: the only code a spec
can reach is an importable Module subclass, and `allowed_prefixes` limits which packages
those may come from. Weights are not part of a spec; they travel as a state dict.

Encoded values: JSON scalars, lists (tuples become lists; built-in layers get them back as
tuples), dicts with string keys, and
tagged objects: `{"$module": spec}` for a module argument, `{"$dtype": "float32"}`, and
`{"$tensor": [...], "dtype": "float32"}` for a small tensor argument (loss weights).
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from collections import OrderedDict
from typing import Any

from .. import _dtype
from ..tensor import Tensor
from .module import Module

_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
# constructor arguments that are about placement or initial values, not architecture
_BUILTIN_DROPPED = ("device", "_weight")
_MAX_TENSOR_ELEMENTS = 65536


def _builtins() -> dict[str, type]:
    """The layers a spec may name. Parameter containers are not among them: they hold
    weights, not architecture, and live inside a Module class of the user's own."""
    from .. import nn  # noqa: PLC0415

    return {
        name: obj
        for name, obj in vars(nn).items()
        if isinstance(obj, type)
        and issubclass(obj, Module)
        and obj.__module__.startswith("shardgrad.nn")
        and not name.startswith("_")
        and not getattr(obj, "_not_in_specs", False)
    }


def _is_builtin(cls: type) -> bool:
    return _builtins().get(cls.__name__) is cls


# ================================================================ encoding
def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: non-finite float {value!r} cannot go into a spec")
        return value
    if isinstance(value, (list, tuple)):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: dict keys must be strings, got {k!r}")
            out[k] = _encode(v, f"{where}.{k}")
        return out
    if isinstance(value, Module):
        return {"$module": module_spec(value)}
    if isinstance(value, _dtype.dtype):
        return {"$dtype": value.name}
    if isinstance(value, Tensor):
        if value.numel() > _MAX_TENSOR_ELEMENTS:
            raise ValueError(
                f"{where}: a tensor of {value.numel()} elements is too large for a spec"
            )
        return {"$tensor": value.detach().cpu().tolist(), "dtype": value.dtype.name}
    raise ValueError(f"{where}: a value of type {type(value).__name__} cannot go into a spec")


def _decode(value: Any, where: str, allowed_prefixes, module=None) -> Any:
    """The value a spec's encoded argument stands for; `module(spec)`, when given, stands in
    for building a `{"$module": spec}` argument."""
    if isinstance(value, list):
        return [_decode(v, f"{where}[{i}]", allowed_prefixes, module) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if "$module" in value:
            _only_keys(value, {"$module"}, where)
            if module is not None:
                return module(value["$module"])
            return from_spec(value["$module"], allowed_prefixes)
        if "$dtype" in value:
            _only_keys(value, {"$dtype"}, where)
            try:
                return _dtype.as_dtype(value["$dtype"])
            except TypeError as exc:
                raise ValueError(f"{where}: {exc}") from None
        if "$tensor" in value:
            _only_keys(value, {"$tensor", "dtype"}, where)
            from ..factory import tensor  # noqa: PLC0415

            try:
                return tensor(
                    value["$tensor"], dtype=_dtype.as_dtype(value.get("dtype", "float32"))
                )
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}: bad tensor value: {exc}") from None
        return {k: _decode(v, f"{where}.{k}", allowed_prefixes, module) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"{where}: unsupported value of type {type(value).__name__}")


def _raw_arguments(spec: dict, label: str) -> tuple[list, dict]:
    """A layer spec's `args` and `kwargs` as JSON gives them, checked for shape (not decoded)."""
    _only_keys(spec, {"type", "import", "args", "kwargs"}, label)
    args = spec.get("args", [])
    kwargs = spec.get("kwargs", {})
    if not isinstance(args, list):
        raise ValueError(f"{label}: 'args' must be a list")
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise ValueError(f"{label}: 'kwargs' must be a dict with string keys")
    return args, kwargs


def _only_keys(d: dict, allowed: set, where: str) -> None:
    extra = set(d) - allowed
    if extra:
        raise ValueError(f"{where}: unexpected keys {sorted(extra)}")


# ================================================================ module -> spec
def _constructor_args(m: Module) -> tuple[list, dict]:
    recorded = m.__dict__.get("_init_args")
    if recorded is None:
        return [], {}
    owner, args, kwargs = recorded
    init = owner.__dict__["__init__"]
    sig = inspect.signature(getattr(init, "__wrapped__", init))
    bound = sig.bind(m, *args, **kwargs)
    pos: list = []
    named: dict = {}
    for i, (name, value) in enumerate(bound.arguments.items()):
        if i == 0:
            continue  # self
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            pos.extend(value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        elif kind is inspect.Parameter.POSITIONAL_ONLY:
            pos.append(value)
        else:
            named[name] = value
    return pos, named


def module_spec(m: Module) -> dict:
    cls = type(m)
    name = cls.__name__
    if _is_builtin(cls) and name in _CONTAINERS:
        children = m._modules
        if name == "ModuleDict":
            return {"type": name, "modules": {k: module_spec(v) for k, v in children.items()}}
        keys = list(children)
        if name == "Sequential" and keys != [str(i) for i in range(len(keys))]:
            return {"type": name, "modules": {k: module_spec(v) for k, v in children.items()}}
        return {"type": name, "modules": [module_spec(v) for v in children.values()]}
    pos, named = _constructor_args(m)
    if _is_builtin(cls):
        named = {k: v for k, v in named.items() if k not in _BUILTIN_DROPPED}
        out: dict = {"type": name}
    else:
        qualname = cls.__qualname__
        if "<locals>" in qualname or cls.__module__ in ("__main__", "builtins"):
            raise ValueError(
                f"{qualname} cannot be described by a spec: a custom Module must be defined at "
                "the top level of an importable module (not in __main__ or inside a function)"
            )
        out = {"import": f"{cls.__module__}:{qualname}"}
    if pos:
        out["args"] = _encode(pos, f"{name} args")
    out["kwargs"] = _encode(named, f"{name} kwargs")
    return out


# ================================================================ spec -> module
def _check_prefix(module_name: str, allowed_prefixes) -> None:
    if allowed_prefixes is None:
        return
    for prefix in allowed_prefixes:
        p = prefix.rstrip(".")
        if module_name == p or module_name.startswith(p + "."):
            return
    raise ValueError(
        f"import path {module_name!r} is not allowed: it must start with one of "
        f"{sorted(allowed_prefixes)}"
    )


def _import_class(path: str, allowed_prefixes) -> type:
    if not isinstance(path, str) or not _IMPORT_PATH.match(path):
        raise ValueError(f"bad import path {path!r}: expected 'package.module:ClassName'")
    module_name, _, qualname = path.partition(":")
    _check_prefix(module_name, allowed_prefixes)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} for spec {path!r}: {exc}") from None
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"{module_name!r} has no attribute {qualname!r} (spec {path!r})")
    if not (isinstance(obj, type) and issubclass(obj, Module)):
        raise ValueError(f"{path!r} is not a Module subclass")
    return obj


def _construct(cls: type, label: str, args: list, kwargs: dict) -> Module:
    try:
        inspect.signature(cls).bind(*args, **kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments for {label}: {exc}") from None
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError, AssertionError, RuntimeError, KeyError) as exc:
        raise ValueError(f"bad arguments for {label}: {exc}") from None


def from_spec(spec: dict, allowed_prefixes: list[str] | tuple[str, ...] | None = None) -> Module:
    """Rebuild a module from `Module.spec()` output.

    `allowed_prefixes`, when given, lists the package prefixes a custom Module's import path
    may start with (e.g. `["mymodels"]`); with None, any importable Module subclass is
    accepted. Raises ValueError for unknown layers, bad arguments or disallowed imports.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"a spec must be a dict, got {type(spec).__name__}")
    if ("type" in spec) == ("import" in spec):
        raise ValueError(
            "a spec needs exactly one of 'type' (a built-in layer) or 'import' (a custom Module)"
        )
    if isinstance(allowed_prefixes, str):
        allowed_prefixes = [allowed_prefixes]
    if "type" in spec:
        name = spec["type"]
        builtins = _builtins()
        if not isinstance(name, str) or name not in builtins:
            raise ValueError(f"unknown layer type {name!r} in spec")
        cls = builtins[name]
        if name in _CONTAINERS:
            _only_keys(spec, {"type", "modules"}, name)
            return _container(cls, name, spec.get("modules", []), allowed_prefixes)
        label = name
    else:
        cls = _import_class(spec["import"], allowed_prefixes)
        label = spec["import"]
    args, kwargs = _raw_arguments(spec, label)
    args = _decode(args, f"{label} args", allowed_prefixes)
    kwargs = _decode(kwargs, f"{label} kwargs", allowed_prefixes)
    if "type" in spec:  # built-in layers take tuples where JSON has lists (sizes, strides)
        args = [_tuples(a) for a in args]
        kwargs = {k: _tuples(v) for k, v in kwargs.items()}
    return _construct(cls, label, args, kwargs)


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _container(cls: type, name: str, modules, allowed_prefixes) -> Module:
    if isinstance(modules, dict):
        children = OrderedDict((k, from_spec(v, allowed_prefixes)) for k, v in modules.items())
        try:
            if name == "ModuleList":
                return cls(list(children.values()))
            return cls(children)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bad module names for {name}: {exc}") from None
    if not isinstance(modules, list):
        raise ValueError(f"{name}: 'modules' must be a list or a dict of specs")
    children_list = [from_spec(v, allowed_prefixes) for v in modules]
    if name == "Sequential":
        return cls(*children_list)
    if name == "ModuleList":
        return cls(children_list)
    return cls(OrderedDict((str(i), m) for i, m in enumerate(children_list)))
