"""Turn a job's named components into core objects: model, loss, optimizer, lr scheduler.

Only names from shardgrad's own nn/optim are accepted, plus user model classes given as an
import path that must resolve to an `nn.Module` subclass; nothing is unpickled.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence

import shardgrad
from shardgrad import nn, optim
from shardgrad.worker import compute

from .config import Component, ModelSource

# Building a model draws its initial weights from shardgrad's global generator, and workers
# seed that generator per micro-shard; whoever seeds and draws in this process holds this lock
# so two jobs (or a job and an in-process worker) never interleave their draws.
RNG_LOCK = threading.RLock()


def model_spec_dict(source: ModelSource) -> dict:
    """The model as a worker builds it: `{"spec": ...}` or `{"import_path": ..., "kwargs": ...}`."""
    if source.spec is not None:
        return {"spec": source.spec}
    return {"import_path": source.import_path, "kwargs": dict(source.kwargs)}


def loss_spec_dict(component: Component) -> dict:
    return {"name": component.name, "kwargs": dict(component.kwargs)}


def build_model(
    source: ModelSource | dict, seed: int | None = None, allowed_prefixes: Sequence[str] = ()
) -> nn.Module:
    """Build the model; with `seed`, its initial weights are those `manual_seed(seed)` gives.

    Import paths (and user classes inside a spec) must lie under `allowed_prefixes`, so a
    request cannot make the coordinator import arbitrary installed modules.
    """
    spec = model_spec_dict(source) if isinstance(source, ModelSource) else source
    with RNG_LOCK:
        if seed is not None:
            shardgrad.manual_seed(seed)
        return compute.build_model(spec, allowed_prefixes)


def build_loss(component: Component) -> nn.Module:
    """The loss with reduction="sum", exactly as the workers build it."""
    return compute.build_loss(loss_spec_dict(component))


def build_optimizer(component: Component, params: list) -> optim.Optimizer:
    return getattr(optim, component.name)(params, **component.kwargs)


def resolve_import_path(path: str, allowed_prefixes: Sequence[str] = ()):
    """`"pkg.module:Name"` (or `"pkg.module:Outer.Inner"`) to the object it names, if the
    module lies under one of `allowed_prefixes`."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected 'pkg.module:Name', got {path!r}")
    if not any(
        module_name == p.rstrip(".") or module_name.startswith(p.rstrip(".") + ".")
        for p in allowed_prefixes
    ):
        raise ValueError(
            f"import path {path!r} is outside the allowed prefixes {list(allowed_prefixes)}"
        )
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def build_scheduler(
    component: Component | None, optimizer: optim.Optimizer, allowed_prefixes: Sequence[str] = ()
):
    if component is None:
        return None
    kwargs = dict(component.kwargs)
    if component.name == "LambdaLR":
        fn = resolve_import_path(kwargs["lr_lambda"], allowed_prefixes)
        if not callable(fn):
            raise TypeError(f"lr_lambda {kwargs['lr_lambda']} is not callable")
        kwargs["lr_lambda"] = fn
    return getattr(optim.lr_scheduler, component.name)(optimizer, **kwargs)
