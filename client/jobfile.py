"""Job files for `shardgrad submit`: a Python file that defines the job, or a YAML/JSON one.

A Python job file is imported as a module named after the file (its folder goes on
`sys.path`), so a Module subclass defined in it travels as `"<file stem>:<Class>"`, which the
workers can import when the same file is on their path. It defines the job as module-level
names, the same names `Client.submit` takes:

    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    dataset = "digits"                  # or (X, y), or "data.npz"
    loss = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batch_size, epochs, seed = 64, 3, 0

or a function `job()` returning a dict of them. A YAML or JSON job file holds the same keys;
there `model` is a spec (`{"type": "Sequential", ...}`), `{"spec": ...}` or
`{"import_path": "pkg.module:Class", "kwargs": {...}}`, and loss, optimizer and lr_scheduler
are names or `{"name": ..., "kwargs": {...}}`. A dataset path is read relative to the file.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from .sdk import CONFIG_OPTIONS

JOB_KEYS = (
    "model",
    "dataset",
    "loss",
    "optimizer",
    "lr_scheduler",
    "batch_size",
    "epochs",
    "steps",
    "workers",
    "seed",
    "name",
    *CONFIG_OPTIONS,
)


class JobFileError(ValueError):
    """A job file that cannot be read or does not define a job."""


def load_job_file(path: str | Path) -> dict[str, Any]:
    """The submit arguments a job file defines, as a dict of `Client.submit` keywords."""
    path = Path(path)
    if not path.is_file():
        raise JobFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".py":
        job = _from_python(path)
    elif suffix in (".yaml", ".yml"):
        job = _from_yaml(path)
    elif suffix == ".json":
        try:
            job = json.loads(path.read_text())
        except ValueError as exc:
            raise JobFileError(f"{path}: not valid JSON: {exc}") from None
    else:
        raise JobFileError(f"{path}: expected a .py, .yaml, .yml or .json job file")
    if not isinstance(job, dict):
        raise JobFileError(f"{path}: the job must be a mapping of names to values")
    unknown = sorted(set(job) - set(JOB_KEYS))
    if unknown and suffix != ".py":
        raise JobFileError(f"{path}: unknown key(s) {unknown}; known: {list(JOB_KEYS)}")
    job = {k: v for k, v in job.items() if k in JOB_KEYS}
    for key in ("model", "dataset"):
        if key not in job:
            raise JobFileError(f"{path}: the job file must define '{key}'")
    job["dataset"] = _resolve_dataset_path(job["dataset"], path.parent)
    return job


def _from_python(path: Path) -> dict[str, Any]:
    name = path.stem
    if not name.isidentifier():
        raise JobFileError(f"{path}: the file name must be a Python identifier to import it")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise JobFileError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise JobFileError(f"{path}: running it failed: {type(exc).__name__}: {exc}") from exc
    factory = getattr(module, "job", None)
    if callable(factory):
        job = factory()
        if not isinstance(job, dict):
            raise JobFileError(f"{path}: job() must return a dict")
        return job
    return {k: getattr(module, k) for k in JOB_KEYS if hasattr(module, k)}


def _from_yaml(path: Path) -> dict[str, Any]:
    try:
        import yaml  # noqa: PLC0415
    except ImportError:
        raise JobFileError(
            f"{path}: reading YAML needs PyYAML (pip install 'shardgrad[service]')"
        ) from None
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise JobFileError(f"{path}: not valid YAML: {exc}") from None


def _resolve_dataset_path(dataset: Any, base: Path) -> Any:
    if isinstance(dataset, dict) and set(dataset) == {"path"}:
        dataset = dataset["path"]
    if isinstance(dataset, str) and dataset.endswith(".npz"):
        candidate = Path(dataset)
        if not candidate.is_absolute():
            candidate = base / candidate
        if not candidate.is_file():
            raise JobFileError(f"dataset file {candidate} does not exist")
        return str(candidate)
    return dataset
