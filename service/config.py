"""A training job's configuration: what the client asks for, checked before anything runs.

`JobConfig.validate()` is the one gate every submitted job passes. It raises a
`ValidationError` naming the offending field (`"batch_size"`, `"optimizer.kwargs"`,
`"model.spec"`, ...) so an API can answer INVALID_ARGUMENT with a message a user can act on,
and nothing is stored for a job that fails it.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from shardgrad.worker.compute import LOSSES  # the losses a worker can sum per micro-shard

# (not LBFGS: its step re-evaluates the loss through a closure, which a coordinator applying
# its workers' gradients cannot offer)
OPTIMIZERS = (
    "SGD", "Adam", "AdamW", "NAdam", "RAdam", "Adamax", "RMSprop", "Adagrad", "Adadelta",
    "Rprop", "ASGD",
)  # fmt: skip
# schedulers described by numbers alone (LambdaLR's function is an allowed import path)
SCHEDULERS = (
    "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "ConstantLR", "PolynomialLR",
    "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "OneCycleLR", "CyclicLR", "LambdaLR",
)  # fmt: skip
METRICS = ("loss", "accuracy")
COMPRESSIONS = ("none", "fp16", "bf16")
DTYPES = ("float32", "float64")

# Loss arguments that would change what "sum over the micro-shard, then divide by |b|" means.
_LOSS_FORBIDDEN = {
    "reduction": "the service sums each micro-shard's loss and divides by the batch size",
    "weight": "class weights change the mean's denominator, which the service fixes to |b|",
    "ignore_index": "ignored targets change the mean's denominator, which the service fixes to |b|",
    "size_average": "legacy argument; the service fixes the reduction",
    "reduce": "legacy argument; the service fixes the reduction",
}

MAX_BATCH_SIZE = 1 << 20
MAX_MICRO_SHARDS = 4096
MAX_WORKERS = 4096
MAX_STEPS = 1 << 31
MAX_SPEC_BYTES = 1 << 20
MAX_WEIGHTS_BYTES = 1 << 31
# The most parameters (and buffer elements) a model may have, unless the coordinator is told
# otherwise (`shardgrad serve --max-parameters`): 400 MB of float32 per copy, and the
# coordinator keeps several (the model, the flat parameters, the optimizer's state).
MAX_PARAMETERS = 100_000_000
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ValidationError(ValueError):
    """A configuration problem in one named field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class ModelSource:
    """The model: a built-in `spec` dict, or a user class as `"pkg.module:Class"` + kwargs."""

    spec: dict | None = None
    import_path: str | None = None
    kwargs: dict = field(default_factory=dict)


@dataclass
class Component:
    """A named core class (loss, optimizer, lr scheduler) and the keyword arguments it takes."""

    name: str
    kwargs: dict = field(default_factory=dict)


@dataclass
class JobConfig:
    """Everything a job needs; defaults are what a user gets by not saying.

    `dataset` is the sha256 of an uploaded dataset (optionally spelled `sha256:<hex>`), the
    built-in `"digits"` (`"digits:image"` for [N, 1, 8, 8] inputs), or `"synthetic:<kind>:<k=v,...>"`. Exactly one of `epochs` and
    `steps` is set. `micro_shards` (K) fixes how every batch is cut, which is what makes the
    result independent of the number of workers.
    """

    model: ModelSource
    dataset: str
    loss: Component = field(default_factory=lambda: Component("CrossEntropyLoss"))
    optimizer: Component = field(default_factory=lambda: Component("SGD", {"lr": 0.1}))
    lr_scheduler: Component | None = None
    batch_size: int = 32
    epochs: int | None = None
    steps: int | None = None
    micro_shards: int = 8
    min_workers: int = 1
    max_workers: int = 64
    seed: int = 0
    checkpoint_interval: int = 100
    keep_checkpoints: int = 3
    eval_fraction: float = 0.0
    eval_interval: int = 0
    eval_metrics: list[str] = field(default_factory=lambda: ["loss"])
    skip_nonfinite: bool = False
    compression: str = "none"
    dtype: str = "float32"
    initial_weights: bytes | None = None
    name: str = ""

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": {
                "spec": self.model.spec,
                "import_path": self.model.import_path,
                "kwargs": self.model.kwargs,
            },
            "initial_weights": (
                None
                if self.initial_weights is None
                else base64.b64encode(self.initial_weights).decode("ascii")
            ),
            "dataset": self.dataset,
            "loss": _component_dict(self.loss),
            "optimizer": _component_dict(self.optimizer),
            "lr_scheduler": None
            if self.lr_scheduler is None
            else _component_dict(self.lr_scheduler),
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "steps": self.steps,
            "micro_shards": self.micro_shards,
            "min_workers": self.min_workers,
            "max_workers": self.max_workers,
            "seed": self.seed,
            "checkpoint_interval": self.checkpoint_interval,
            "keep_checkpoints": self.keep_checkpoints,
            "eval_fraction": self.eval_fraction,
            "eval_interval": self.eval_interval,
            "eval_metrics": list(self.eval_metrics),
            "skip_nonfinite": self.skip_nonfinite,
            "compression": self.compression,
            "dtype": self.dtype,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobConfig:
        """Build from a JSON-shaped dict; unknown or mistyped keys raise ValidationError."""
        if not isinstance(d, dict):
            raise ValidationError("config", "expected a JSON object")
        known = set(cls.__dataclass_fields__)
        for key in d:
            if key not in known:
                raise ValidationError(key, "unknown configuration field")
        for key in ("model", "dataset"):
            if key not in d:
                raise ValidationError(key, "required")
        m = d["model"]
        if not isinstance(m, dict):
            raise ValidationError("model", "expected an object with 'spec' or 'import_path'")
        for key in m:
            if key not in ("spec", "import_path", "kwargs"):
                raise ValidationError(f"model.{key}", "unknown model field")
        weights = d.get("initial_weights")
        if weights is not None:
            if not isinstance(weights, str):
                raise ValidationError("initial_weights", "expected base64 text")
            try:
                weights = base64.b64decode(weights.encode("ascii"), validate=True)
            except (ValueError, UnicodeEncodeError) as exc:
                raise ValidationError("initial_weights", f"not valid base64: {exc}") from None
        kw = {k: v for k, v in d.items() if k not in ("model", "initial_weights")}
        for key in ("loss", "optimizer", "lr_scheduler"):
            if key in kw and kw[key] is not None:
                kw[key] = _component_from(key, kw[key])
        return cls(
            model=ModelSource(
                spec=m.get("spec"), import_path=m.get("import_path"), kwargs=m.get("kwargs") or {}
            ),
            initial_weights=weights,
            **kw,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> JobConfig:
        try:
            d = json.loads(text)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise ValidationError("config", f"not valid JSON: {exc}") from None
        return cls.from_dict(d)

    # ------------------------------------------------------------------ validation
    def validate(
        self,
        datasets=None,
        allowed_import_prefixes: tuple[str, ...] = (),
        max_parameters: int | None = MAX_PARAMETERS,
    ) -> None:
        """Check every field; with a dataset resolver, also check the model against the data.

        `datasets` is anything with `resolve(ref) -> Dataset` (see service.datasets). With it,
        the dataset must exist, the eval split must leave training samples, and one forward and
        loss on two real samples must run, which catches unknown layers, wrong input shapes and
        targets the loss cannot take. Import paths must lie under `allowed_import_prefixes`.

        A model with more than `max_parameters` parameters (buffers included; None: no
        limit) is refused. A spec's are counted from the spec, before anything is built; an
        import-path model runs its own code to say what it holds, so it is counted once
        built, which only happens with `datasets`.
        """
        from .validation import check_against_dataset, check_parameter_budget  # noqa: PLC0415

        self._validate_static()
        check_parameter_budget(self, max_parameters)
        if datasets is not None:
            check_against_dataset(self, datasets, allowed_import_prefixes, max_parameters)

    def _validate_static(self) -> None:
        _check_str("name", self.name, max_len=200, allow_empty=True)
        self._validate_model()
        _check_dataset_ref(self.dataset)
        _check_component("loss", self.loss, LOSSES)
        for key, why in _LOSS_FORBIDDEN.items():
            if key in self.loss.kwargs:
                raise ValidationError(f"loss.kwargs.{key}", f"not allowed: {why}")
        if isinstance(self.optimizer, Component) and isinstance(self.optimizer.kwargs, dict):
            lr = self.optimizer.kwargs.get("lr")
            if lr is not None and (not _is_number(lr) or not math.isfinite(lr) or lr < 0):
                raise ValidationError(
                    "optimizer.kwargs.lr", f"must be a finite number >= 0, got {lr!r}"
                )
        _check_component("optimizer", self.optimizer, OPTIMIZERS)
        if self.lr_scheduler is not None:
            _check_component("lr_scheduler", self.lr_scheduler, SCHEDULERS)
            if self.lr_scheduler.name == "LambdaLR":
                fn = self.lr_scheduler.kwargs.get("lr_lambda")
                if not isinstance(fn, str) or not _IMPORT_PATH.match(fn):
                    raise ValidationError(
                        "lr_scheduler.kwargs.lr_lambda",
                        "LambdaLR needs lr_lambda as an import path 'pkg.module:function'",
                    )
        _check_int("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        if (self.epochs is None) == (self.steps is None):
            raise ValidationError("steps", "set exactly one of 'epochs' and 'steps'")
        if self.epochs is not None:
            _check_int("epochs", self.epochs, 1, MAX_STEPS)
        if self.steps is not None:
            _check_int("steps", self.steps, 1, MAX_STEPS)
        _check_int("micro_shards", self.micro_shards, 1, MAX_MICRO_SHARDS)
        if self.micro_shards > self.batch_size:
            raise ValidationError(
                "micro_shards",
                f"{self.micro_shards} micro-shards cannot split a batch of {self.batch_size}",
            )
        _check_int("min_workers", self.min_workers, 1, MAX_WORKERS)
        _check_int("max_workers", self.max_workers, 1, MAX_WORKERS)
        if self.max_workers < self.min_workers:
            raise ValidationError(
                "max_workers", f"{self.max_workers} is below min_workers {self.min_workers}"
            )
        _check_int("seed", self.seed, 0, (1 << 63) - 1)
        _check_int("checkpoint_interval", self.checkpoint_interval, 0, MAX_STEPS)
        _check_int("keep_checkpoints", self.keep_checkpoints, 1, 1000)
        if not _is_number(self.eval_fraction) or not 0.0 <= self.eval_fraction < 1.0:
            raise ValidationError("eval_fraction", "must be a number in [0, 1)")
        _check_int("eval_interval", self.eval_interval, 0, MAX_STEPS)
        if not isinstance(self.eval_metrics, (list, tuple)) or not self.eval_metrics:
            raise ValidationError("eval_metrics", f"a non-empty list drawn from {list(METRICS)}")
        for name in self.eval_metrics:
            if name not in METRICS:
                raise ValidationError(
                    "eval_metrics", f"unknown metric {name!r}; use {list(METRICS)}"
                )
        if not isinstance(self.skip_nonfinite, bool):
            raise ValidationError("skip_nonfinite", "must be true or false")
        if self.compression not in COMPRESSIONS:
            raise ValidationError(
                "compression", f"unknown {self.compression!r}; use one of {list(COMPRESSIONS)}"
            )
        if self.dtype not in DTYPES:
            raise ValidationError("dtype", f"unknown {self.dtype!r}; use one of {list(DTYPES)}")
        if self.initial_weights is not None:
            if not isinstance(self.initial_weights, (bytes, bytearray, memoryview)):
                raise ValidationError("initial_weights", "expected safetensors bytes")
            if len(self.initial_weights) > MAX_WEIGHTS_BYTES:
                raise ValidationError("initial_weights", "larger than 2 GiB")
            if len(self.initial_weights) < 8:
                raise ValidationError("initial_weights", "too short to be a safetensors file")

    def _validate_model(self) -> None:
        m = self.model
        if not isinstance(m, ModelSource):
            raise ValidationError("model", "expected a ModelSource")
        if (m.spec is None) == (m.import_path is None):
            raise ValidationError("model", "give exactly one of 'spec' and 'import_path'")
        if m.spec is not None:
            if not isinstance(m.spec, dict):
                raise ValidationError("model.spec", "expected a JSON object")
            if len(_json_or_fail("model.spec", m.spec)) > MAX_SPEC_BYTES:
                raise ValidationError("model.spec", "larger than 1 MiB")
        else:
            if not isinstance(m.import_path, str) or not _IMPORT_PATH.match(m.import_path):
                raise ValidationError(
                    "model.import_path", f"expected 'pkg.module:ClassName', got {m.import_path!r}"
                )
        if not isinstance(m.kwargs, dict):
            raise ValidationError("model.kwargs", "expected a JSON object")
        if m.spec is not None and m.kwargs:
            raise ValidationError("model.kwargs", "only an import_path model takes kwargs")
        _json_or_fail("model.kwargs", m.kwargs)

    # ------------------------------------------------------------------ derived numbers
    def total_steps(self, n_train: int) -> int:
        """Optimizer steps the job runs over `n_train` training samples."""
        if self.steps is not None:
            return self.steps
        return self.epochs * steps_per_epoch(n_train, self.batch_size)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return -(-n_train // batch_size)


def parse_dataset_ref(ref: str) -> tuple[str, str]:
    """`("sha256", hex)`, `("digits", "" or "image")` or `("synthetic", "kind:params")`."""
    if ref in ("digits", "digits:image"):
        return "digits", ref[len("digits:") :]
    if ref.startswith("synthetic:"):
        return "synthetic", ref[len("synthetic:") :]
    hexpart = ref[len("sha256:") :] if ref.startswith("sha256:") else ref
    return "sha256", hexpart


# ---------------------------------------------------------------------- helpers
def _component_dict(c: Component) -> dict:
    return {"name": c.name, "kwargs": c.kwargs}


def _component_from(key: str, d) -> Component:
    if isinstance(d, str):
        return Component(d)
    if not isinstance(d, dict) or "name" not in d:
        raise ValidationError(key, "expected an object with 'name' and optional 'kwargs'")
    for k in d:
        if k not in ("name", "kwargs"):
            raise ValidationError(f"{key}.{k}", "unknown field")
    return Component(d["name"], d.get("kwargs") or {})


def _check_component(key: str, c, allowed: tuple[str, ...]) -> None:
    if not isinstance(c, Component):
        raise ValidationError(key, "expected a name and kwargs")
    if c.name not in allowed:
        raise ValidationError(f"{key}.name", f"unknown {c.name!r}; use one of {list(allowed)}")
    if not isinstance(c.kwargs, dict):
        raise ValidationError(f"{key}.kwargs", "expected a JSON object")
    for k in c.kwargs:
        if not isinstance(k, str) or not k.isidentifier():
            raise ValidationError(f"{key}.kwargs", f"{k!r} is not a keyword argument name")
    _json_or_fail(f"{key}.kwargs", c.kwargs)


def _check_dataset_ref(ref) -> None:
    if not isinstance(ref, str) or not ref:
        raise ValidationError(
            "dataset", "expected a sha256, 'digits' or 'synthetic:<kind>:<params>'"
        )
    kind, rest = parse_dataset_ref(ref)
    if kind == "sha256":
        if not _SHA256.match(rest):
            raise ValidationError(
                "dataset",
                f"{ref!r} is neither a lower-case sha256 hex digest, 'digits' nor 'synthetic:...'",
            )
    elif kind == "synthetic":
        from .datasets import parse_synthetic  # noqa: PLC0415

        try:
            parse_synthetic(rest)
        except ValueError as exc:
            raise ValidationError("dataset", str(exc)) from None


def _check_int(key: str, v, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValidationError(key, f"must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise ValidationError(key, f"must be in [{lo}, {hi}], got {v}")


def _check_str(key: str, v, max_len: int, allow_empty: bool = False) -> None:
    if not isinstance(v, str) or (not v and not allow_empty):
        raise ValidationError(key, "must be a non-empty string")
    if len(v) > max_len:
        raise ValidationError(key, f"longer than {max_len} characters")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _json_or_fail(key: str, value) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(key, f"not JSON-serialisable: {exc}") from None
