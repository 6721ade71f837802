"""Turn what a user holds (a Module, a loss, an optimizer) into the job config's JSON parts.

A model travels as its spec (architecture as JSON) plus its current weights as safetensors
bytes, so the job starts from exactly the parameters the user built. A loss, an optimizer and
an lr scheduler travel as a class name and keyword arguments; an optimizer object is read back
into the arguments it was built with. Anything that cannot be said that way (per-group
hyperparameters, a lambda schedule) is refused here, before it reaches the coordinator.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from shardgrad import nn, optim
from shardgrad.serialization import save_safetensors_bytes

# Optimizer arguments that only choose an implementation or are refused by the core anyway;
# leaving them out keeps submitted configs short and portable.
_OPTIMIZER_SKIP = {"foreach", "capturable", "differentiable", "fused"}


def model_source(model: Any) -> tuple[dict, bytes | None, str]:
    """`({"spec": ...} or {"import_path": ..., "kwargs": ...}, weights or None, dtype)`.

    `model` is an `nn.Module` (sent with its weights), a spec dict (`Module.spec()` output),
    a model source dict, or an import path `"pkg.module:Class"` (built with no arguments).
    """
    if isinstance(model, nn.Module):
        spec = model.spec()
        state = model.state_dict()
        weights = save_safetensors_bytes({k: v.detach().cpu() for k, v in state.items()})
        dtypes = {str(p.dtype).removeprefix("shardgrad.") for p in model.parameters()}
        if not dtypes:
            raise ValueError("the model has no parameters to train")
        if len(dtypes) > 1:
            raise ValueError(f"the model mixes parameter dtypes {sorted(dtypes)}; use one")
        dtype = dtypes.pop()
        if dtype not in ("float32", "float64"):
            raise ValueError(f"parameters must be float32 or float64, not {dtype}")
        return {"spec": spec}, weights, dtype
    if isinstance(model, str):
        if ":" not in model:
            raise ValueError(f"a model given as text must be 'pkg.module:Class', got {model!r}")
        return {"import_path": model, "kwargs": {}}, None, "float32"
    if isinstance(model, dict):
        if "spec" in model or "import_path" in model:
            return dict(model), None, "float32"
        if "type" in model or "import" in model:
            return {"spec": model}, None, "float32"
        raise ValueError("a model dict needs 'spec', 'import_path', 'type' or 'import'")
    raise TypeError(
        f"model must be an nn.Module, a spec dict or an import path, not {type(model).__name__}"
    )


def loss_config(loss: Any) -> dict:
    """`{"name": ..., "kwargs": {...}}` from a loss Module, its class, a name or a dict."""
    if isinstance(loss, str):
        return {"name": loss, "kwargs": {}}
    if isinstance(loss, type) and issubclass(loss, nn.Module):
        return {"name": loss.__name__, "kwargs": {}}
    if isinstance(loss, dict):
        return _component(loss, "loss")
    if isinstance(loss, nn.Module):
        spec = loss.spec()
        if "type" not in spec:
            raise ValueError("the loss must be one of shardgrad.nn's losses")
        kwargs = dict(spec.get("kwargs") or {})
        reduction = kwargs.pop("reduction", "mean")
        if reduction != "mean":
            raise ValueError(
                f"loss reduction {reduction!r}: the service trains on the batch mean; "
                "leave reduction at 'mean'"
            )
        return {"name": spec["type"], "kwargs": kwargs}
    raise TypeError(f"loss must be a loss Module, its name or a dict, not {type(loss).__name__}")


def optimizer_config(optimizer: Any) -> dict:
    """`{"name": ..., "kwargs": {...}}` from a core optimizer, its class, a name or a dict.

    An optimizer object is read back through its `defaults`; only the arguments that differ
    from the class's own defaults are kept.
    """
    if isinstance(optimizer, str):
        return {"name": optimizer, "kwargs": {}}
    if isinstance(optimizer, dict):
        return _component(optimizer, "optimizer")
    if isinstance(optimizer, type) and issubclass(optimizer, optim.Optimizer):
        return {"name": optimizer.__name__, "kwargs": {}}
    if isinstance(optimizer, optim.Optimizer):
        cls = type(optimizer)
        groups = optimizer.param_groups
        for g in groups[1:]:
            if any(_plain(g.get(k)) != _plain(groups[0].get(k)) for k in optimizer.defaults):
                raise ValueError(
                    "per-group hyperparameters cannot be submitted: the service trains one "
                    "parameter group"
                )
        params = inspect.signature(cls.__init__).parameters
        kwargs = {}
        for key, default in optimizer.defaults.items():
            if key in _OPTIMIZER_SKIP or key not in params:
                continue
            value = _plain(groups[0].get(key, default))
            sig_default = params[key].default
            is_default = sig_default is not inspect.Parameter.empty and value == _plain(sig_default)
            if is_default and key != "lr":
                continue
            kwargs[key] = value
        return {"name": cls.__name__, "kwargs": kwargs}
    raise TypeError(
        "optimizer must be a shardgrad.optim optimizer, its name or a dict, not "
        f"{type(optimizer).__name__}"
    )


def scheduler_config(scheduler: Any) -> dict | None:
    """`{"name": ..., "kwargs": {...}}` from a StepLR / CosineAnnealingLR object, or a dict."""
    if scheduler is None:
        return None
    if isinstance(scheduler, dict):
        return _component(scheduler, "lr_scheduler")
    if isinstance(scheduler, optim.lr_scheduler.StepLR):
        return {
            "name": "StepLR",
            "kwargs": {"step_size": scheduler.step_size, "gamma": _plain(scheduler.gamma)},
        }
    if isinstance(scheduler, optim.lr_scheduler.CosineAnnealingLR):
        return {
            "name": "CosineAnnealingLR",
            "kwargs": {"T_max": scheduler.T_max, "eta_min": _plain(scheduler.eta_min)},
        }
    raise ValueError(
        f"{type(scheduler).__name__} cannot be submitted as an object; give a dict such as "
        "{'name': 'OneCycleLR', 'kwargs': {'max_lr': 0.1, 'total_steps': 1000}} or "
        "{'name': 'LambdaLR', 'kwargs': {'lr_lambda': 'pkg.module:function'}}"
    )


def _component(d: dict, what: str) -> dict:
    if "name" not in d:
        raise ValueError(f"{what} dict needs a 'name'")
    return {"name": d["name"], "kwargs": dict(d.get("kwargs") or {})}


def _plain(value: Any) -> Any:
    """JSON-able value: tuples to lists, 0-d tensors to floats."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite hyperparameter {value!r}")
    return value
