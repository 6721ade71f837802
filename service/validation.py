"""The checks of a job config that need the core and the data: is the model within the
parameter budget, does it build, does it take the dataset's inputs, does the loss take its
outputs and the dataset's targets."""

from __future__ import annotations

import warnings

import numpy as np

import shardgrad
from shardgrad.nn.spec_size import SpecSize, spec_size
from shardgrad.serialization import load_safetensors_bytes

from . import builders
from .config import JobConfig, ValidationError
from .datasets import DatasetError
from .sampler import train_eval_split

_PROBE_ROWS = 2


def model_inputs(x: np.ndarray, dtype: str) -> shardgrad.Tensor:
    """Dataset rows as the model's input: floating data in the job's dtype, integers as int64."""
    if x.dtype.kind == "f":
        return shardgrad.tensor(np.asarray(x, dtype=dtype))
    return shardgrad.tensor(np.asarray(x, dtype=np.int64))


def loss_targets(y: np.ndarray, dtype: str) -> shardgrad.Tensor:
    if y.dtype.kind == "f":
        return shardgrad.tensor(np.asarray(y, dtype=dtype))
    return shardgrad.tensor(np.asarray(y, dtype=np.int64))


def check_parameter_budget(config: JobConfig, max_parameters: int | None) -> None:
    """Refuse a spec that holds more than `max_parameters` elements, counted from the spec
    before anything is built: a spec of a few bytes can ask for more memory than the machine
    has. A spec with user Modules in it counts as at least its built-in layers here, and in
    full once built (see `check_against_dataset`)."""
    if config.model.spec is None or max_parameters is None:
        return
    try:
        size = spec_size(config.model.spec)
    except (ValueError, RecursionError) as exc:
        raise ValidationError("model.spec", f"cannot build the model: {exc}") from None
    _within_budget("model.spec", size, max_parameters)


def _within_budget(field: str, size: SpecSize, max_parameters: int) -> None:
    if size.elements <= max_parameters:
        return
    what = f"{size.parameters:,} parameters"
    if size.buffers:
        what += f" and {size.buffers:,} buffer elements"
    if not size.exact:
        what = f"at least {what}"
    raise ValidationError(
        field,
        f"the model has {what}, more than the {max_parameters:,} parameters this coordinator "
        "takes (shardgrad serve --max-parameters)",
    )


def check_against_dataset(
    config: JobConfig,
    datasets,
    allowed_import_prefixes: tuple[str, ...] = (),
    max_parameters: int | None = None,
) -> None:
    try:
        ds = datasets.resolve(config.dataset)
    except DatasetError as exc:
        raise ValidationError("dataset", str(exc)) from None
    train_rows, eval_rows = train_eval_split(config.seed, len(ds), config.eval_fraction)
    if len(train_rows) == 0:
        raise ValidationError("eval_fraction", f"leaves no training samples out of {len(ds)}")
    if config.eval_fraction > 0 and len(eval_rows) == 0:
        raise ValidationError(
            "eval_fraction", f"{config.eval_fraction} of {len(ds)} samples is less than one sample"
        )
    if "accuracy" in config.eval_metrics and not ds.is_classification:
        raise ValidationError(
            "eval_metrics", "accuracy needs integer class labels as targets (y of shape [N])"
        )
    field = "model.spec" if config.model.spec is not None else "model.import_path"
    try:
        model = builders.build_model(
            config.model, seed=config.seed, allowed_prefixes=allowed_import_prefixes
        )
    except ValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to build is the spec's fault
        raise ValidationError(field, f"cannot build the model: {exc}") from None
    params = list(model.parameters())
    if not params:
        raise ValidationError(field, "the model has no parameters to train")
    if max_parameters is not None:
        # An import-path model (or a spec with one inside) says what it holds only once its
        # own code has run, so it is counted here, after it was built.
        held = SpecSize(
            sum(p.numel() for p in params), sum(b.numel() for b in model.buffers()), True
        )
        _within_budget(field, held, max_parameters)
    if config.dtype == "float64":
        model.double()
    if config.initial_weights is not None:
        try:
            state = load_safetensors_bytes(bytes(config.initial_weights))
            state = {
                k: v.to(dtype=params[0].dtype) if v.is_floating_point() else v
                for k, v in state.items()
            }
            model.load_state_dict(state, strict=True)
        except Exception as exc:  # noqa: BLE001
            raise ValidationError("initial_weights", f"do not fit the model: {exc}") from None
    try:
        loss_fn = builders.build_loss(config.loss)
    except Exception as exc:  # noqa: BLE001
        raise ValidationError("loss.kwargs", f"{config.loss.name}: {exc}") from None
    try:
        opt = builders.build_optimizer(config.optimizer, params)
    except Exception as exc:  # noqa: BLE001
        raise ValidationError("optimizer.kwargs", f"{config.optimizer.name}: {exc}") from None
    try:
        builders.build_scheduler(config.lr_scheduler, opt, allowed_import_prefixes)
    except Exception as exc:  # noqa: BLE001
        raise ValidationError("lr_scheduler.kwargs", f"{config.lr_scheduler.name}: {exc}") from None

    rows = train_rows[:_PROBE_ROWS]
    x = model_inputs(ds.x[rows], config.dtype)
    y = loss_targets(ds.y[rows], config.dtype)
    model.eval()
    with shardgrad.no_grad():
        try:
            out = model(x)
        except Exception as exc:  # noqa: BLE001
            raise ValidationError(
                field,
                f"the model cannot take the dataset's inputs (samples of shape "
                f"{list(ds.x.shape[1:])}, dtype {ds.x.dtype}): {exc}",
            ) from None
        try:
            with warnings.catch_warnings():
                # torch only warns when a loss broadcasts targets of another shape; a job
                # would then train on wrong numbers, so here it is an error
                warnings.filterwarnings("error", message=".*target size.*")
                value = loss_fn(out, y)
        except Exception as exc:  # noqa: BLE001
            raise ValidationError(
                "loss",
                f"{config.loss.name} cannot compare the model's output of shape "
                f"{list(out.shape[1:])} with the dataset's targets of shape "
                f"{list(ds.y.shape[1:])} ({ds.y.dtype}): {exc}",
            ) from None
    if value.numel() != 1:
        raise ValidationError("loss", f"{config.loss.name} did not give one number")
    _check_single_row_micro_shards(config, model, ds, train_rows)
    if config.loss.name in ("CrossEntropyLoss", "NLLLoss") and ds.is_classification:
        lo, hi = int(ds.y.min()), int(ds.y.max())
        if lo < 0:
            raise ValidationError("dataset", f"class labels must be >= 0, found {lo}")
        if out.ndim >= 2 and hi >= out.shape[1]:
            raise ValidationError(
                field,
                f"the model outputs {out.shape[1]} classes but the dataset has labels up to {hi}",
            )


def smallest_micro_shard(n_train: int, batch_size: int, micro_shards: int, steps: int) -> int:
    """The fewest rows any non-empty micro-shard of the job's first `steps` steps holds.

    Batches are `batch_size` rows but the last of each epoch, which holds what is left; each
    is cut into `micro_shards` runs whose sizes differ by at most one (sampler)."""
    per_epoch = -(-n_train // batch_size)
    sizes = set()
    if steps > 0:
        sizes.add(min(batch_size, n_train))
    if steps >= per_epoch and n_train % batch_size:
        sizes.add(n_train % batch_size)
    return min((b // micro_shards if b >= micro_shards else 1 for b in sizes), default=0)


def _check_single_row_micro_shards(config: JobConfig, model, ds, train_rows) -> None:
    """Refuse a job whose model cannot train on one row when some micro-shard holds just one.

    Each micro-shard runs its own forward, so a model that needs several rows in training
    (BatchNorm: "Expected more than 1 value per channel") would otherwise fail only at the
    first such micro-shard, which may be the short last batch of the first epoch."""
    steps = config.total_steps(len(train_rows))
    if smallest_micro_shard(len(train_rows), config.batch_size, config.micro_shards, steps) != 1:
        return
    x = model_inputs(ds.x[train_rows[:1]], config.dtype)
    model.train()
    try:
        with shardgrad.no_grad():
            model(x)
    except Exception as exc:  # noqa: BLE001 - whatever the model raises is the reason
        full = min(config.batch_size, len(train_rows))
        where = (
            f"batches of {full} rows"
            if full < 2 * config.micro_shards
            else f"the last batch of each epoch ({len(train_rows) % config.batch_size} rows)"
        )
        raise ValidationError(
            "micro_shards",
            f"{config.micro_shards} micro-shards of {where} leave some with a single row, "
            f"and the model cannot train on one row: {exc}. Use fewer micro-shards or a "
            "batch size that leaves at least two rows in each",
        ) from None
    finally:
        model.eval()
