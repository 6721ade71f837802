"""Job configs: JSON round trip, and every kind of mistake named by its field."""

from __future__ import annotations

import dataclasses

import grpc
import numpy as np
import pytest

import shardgrad as sg
from shardgrad import nn
from shardgrad.serialization import save_safetensors_bytes
from shardgrad.service.config import (
    Component,
    JobConfig,
    ModelSource,
    ValidationError,
)
from shardgrad.service.datasets import DatasetRegistry


def mlp(d_in: int = 8, hidden: int = 16, classes: int = 3) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def good(**changes) -> JobConfig:
    cfg = JobConfig(
        model=ModelSource(spec=mlp().spec()),
        dataset="synthetic:classification:n=64,features=8,classes=3",
        loss=Component("CrossEntropyLoss", {"label_smoothing": 0.1}),
        optimizer=Component("Adam", {"lr": 1e-3, "betas": [0.9, 0.99]}),
        lr_scheduler=Component("StepLR", {"step_size": 5, "gamma": 0.5}),
        batch_size=16,
        steps=20,
        micro_shards=4,
        seed=7,
        eval_fraction=0.25,
        eval_interval=5,
        eval_metrics=["loss", "accuracy"],
    )
    return dataclasses.replace(cfg, **changes)


@pytest.fixture
def registry(tmp_path):
    return DatasetRegistry(tmp_path / "datasets")


def field_of(cfg: JobConfig, registry=None) -> str:
    with pytest.raises(ValidationError) as info:
        cfg.validate(registry)
    assert str(info.value).startswith(info.value.field + ": ")
    return info.value.field


def test_json_round_trip():
    weights = save_safetensors_bytes({"w": np.arange(3, dtype=np.float32)})
    cfg = good(initial_weights=weights, name="run 1", compression="bf16", skip_nonfinite=True)
    back = JobConfig.from_json(cfg.to_json())
    assert back == cfg
    assert back.initial_weights == weights
    imported = good(model=ModelSource(import_path="mypkg.models:Net", kwargs={"width": 4}))
    assert JobConfig.from_json(imported.to_json()) == imported


def test_valid_config_passes_with_data(registry):
    good().validate(registry)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"micro_shards": 0}, "micro_shards"),
        ({"micro_shards": 32}, "micro_shards"),  # more micro-shards than batch rows
        ({"steps": None}, "steps"),  # neither steps nor epochs
        ({"epochs": 3}, "steps"),  # both
        ({"steps": -1}, "steps"),
        ({"min_workers": 0}, "min_workers"),
        ({"min_workers": 4, "max_workers": 2}, "max_workers"),
        ({"seed": -1}, "seed"),
        ({"checkpoint_interval": -5}, "checkpoint_interval"),
        ({"keep_checkpoints": 0}, "keep_checkpoints"),
        ({"eval_fraction": 1.0}, "eval_fraction"),
        ({"eval_metrics": ["f1"]}, "eval_metrics"),
        ({"eval_metrics": []}, "eval_metrics"),
        ({"compression": "zip"}, "compression"),
        ({"dtype": "float16"}, "dtype"),
        ({"skip_nonfinite": "yes"}, "skip_nonfinite"),
        ({"dataset": "mnist"}, "dataset"),
        ({"dataset": "synthetic:spirals"}, "dataset"),
        ({"dataset": "synthetic:classification:n=abc"}, "dataset"),
        ({"loss": Component("HingeLoss")}, "loss.name"),
        ({"loss": Component("TripletMarginLoss")}, "loss.name"),  # needs three inputs
        ({"loss": Component("CrossEntropyLoss", {"reduction": "mean"})}, "loss.kwargs.reduction"),
        ({"loss": Component("CrossEntropyLoss", {"weight": [1, 2, 3]})}, "loss.kwargs.weight"),
        ({"optimizer": Component("LBFGS")}, "optimizer.name"),
        ({"optimizer": Component("SGD", {"lr": -1.0})}, "optimizer.kwargs.lr"),
        ({"optimizer": Component("SGD", {"lr": float("nan")})}, "optimizer.kwargs.lr"),
        ({"optimizer": Component("SGD", {"lr": 0.1, "x": object()})}, "optimizer.kwargs"),
        ({"lr_scheduler": Component("ReduceLROnPlateau")}, "lr_scheduler.name"),  # needs a metric
        (
            {"lr_scheduler": Component("LambdaLR", {"lr_lambda": "lambda e: 1"})},
            "lr_scheduler.kwargs.lr_lambda",
        ),
        ({"model": ModelSource()}, "model"),
        ({"model": ModelSource(spec={"a": 1}, import_path="a:B")}, "model"),
        ({"model": ModelSource(import_path="not a path")}, "model.import_path"),
        ({"model": ModelSource(spec=mlp().spec(), kwargs={"x": 1})}, "model.kwargs"),
        ({"initial_weights": b"abc"}, "initial_weights"),
        ({"name": "x" * 201}, "name"),
    ],
)
def test_static_errors_name_the_field(changes, field):
    assert field_of(good(**changes)) == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"dataset": "ab" * 32}, "dataset"),  # a hash nobody uploaded
        ({"model": ModelSource(spec={"type": "NoSuchLayer"})}, "model.spec"),
        ({"model": ModelSource(spec=mlp(d_in=5).spec())}, "model.spec"),  # input width
        ({"model": ModelSource(spec=mlp(classes=2).spec())}, "model.spec"),  # too few classes
        ({"model": ModelSource(import_path="os.path:join")}, "model.import_path"),
        ({"loss": Component("MSELoss")}, "loss"),  # outputs [3] vs integer labels
        ({"loss": Component("CrossEntropyLoss", {"no_such_arg": 1})}, "loss.kwargs"),
        ({"optimizer": Component("SGD", {"lr": 0.1, "momentum": -1})}, "optimizer.kwargs"),
        ({"optimizer": Component("SGD", {"lr": 0.1, "nesterov": True})}, "optimizer.kwargs"),
        ({"lr_scheduler": Component("StepLR", {})}, "lr_scheduler.kwargs"),
        ({"eval_fraction": 0.001}, "eval_fraction"),  # rounds to no eval sample
        (
            {"dataset": "synthetic:regression:n=64,features=8", "loss": Component("MSELoss")},
            "eval_metrics",
        ),
    ],
)
def test_errors_found_against_the_data(registry, changes, field):
    cfg = good(**changes)
    cfg._validate_static()  # statically fine: only the data reveals the problem
    assert field_of(cfg, registry) == field


def test_initial_weights_must_fit(registry):
    other = save_safetensors_bytes(mlp(hidden=4).state_dict())
    assert field_of(good(initial_weights=other), registry) == "initial_weights"
    sg.manual_seed(0)
    fits = save_safetensors_bytes(mlp().state_dict())
    good(initial_weights=fits).validate(registry)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"dataset": "digits"}, "model"),
        ({"model": {"spec": {}}}, "dataset"),
        ({"model": {"spec": {}}, "dataset": "digits", "batchsize": 3}, "batchsize"),
        ({"model": {"spec": {}, "extra": 1}, "dataset": "digits"}, "model.extra"),
        ({"model": {"spec": {}}, "dataset": "digits", "initial_weights": "@@"}, "initial_weights"),
        ({"model": {"spec": {}}, "dataset": "digits", "loss": 3}, "loss"),
    ],
)
def test_from_dict_errors(doc, field):
    with pytest.raises(ValidationError) as info:
        JobConfig.from_dict(doc)
    assert info.value.field == field


def test_bad_json():
    with pytest.raises(ValidationError) as info:
        JobConfig.from_json("{not json")
    assert info.value.field == "config"


def test_total_steps():
    assert good(steps=None, epochs=3, batch_size=10).total_steps(45) == 15
    assert good(steps=7).total_steps(45) == 7


def test_broadcasting_targets_are_an_error(registry):
    cfg = good(
        dataset="synthetic:regression:n=64,features=8,targets=1",
        loss=Component("MSELoss"),
        eval_metrics=["loss"],
    )
    with pytest.raises(ValidationError) as info:
        cfg.validate(registry)  # outputs [3] against targets [1]
    assert info.value.field == "loss" and "target" in info.value.message


def test_import_paths_must_be_allowed(registry):
    linear = ModelSource(
        import_path="shardgrad.nn.linear:Linear", kwargs={"in_features": 8, "out_features": 3}
    )
    cfg = good(model=linear)
    with pytest.raises(ValidationError) as info:
        cfg.validate(registry)
    assert info.value.field == "model.import_path" and "allowed" in info.value.message
    cfg.validate(registry, allowed_import_prefixes=("shardgrad.nn",))
    bad_kwargs = good(model=ModelSource(import_path=linear.import_path, kwargs={"width": 3}))
    with pytest.raises(ValidationError) as info:
        bad_kwargs.validate(registry, allowed_import_prefixes=("shardgrad.nn",))
    assert info.value.field == "model.import_path"

    lam = good(lr_scheduler=Component("LambdaLR", {"lr_lambda": "math:cos"}))
    with pytest.raises(ValidationError) as info:
        lam.validate(registry)
    assert info.value.field == "lr_scheduler.kwargs"
    lam.validate(registry, allowed_import_prefixes=("math",))


# ---------------------------------------------------------------------------- parameter budget
def _refusal(cfg: JobConfig, registry, **kw) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        cfg.validate(registry, **kw)
    return info.value


def test_a_spec_over_the_budget_is_refused_before_it_is_built(registry, monkeypatch):
    from shardgrad.service import builders

    held = 8 * 16 + 16 + 16 * 3 + 3  # mlp()
    good().validate(registry, max_parameters=held)

    def never(*args, **kwargs):
        raise AssertionError("a model over the budget was built")

    monkeypatch.setattr(builders, "build_model", never)
    err = _refusal(good(), registry, max_parameters=held - 1)
    assert err.field == "model.spec"
    assert f"{held} parameters" in err.message and f"{held - 1} parameters" in err.message
    # Without a dataset too, and with the default budget for a spec asking for gigabytes.
    huge = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 3)).spec()
    huge["modules"][0]["kwargs"]["out_features"] = 10**9
    huge["modules"][1]["kwargs"]["in_features"] = 10**9
    err = _refusal(good(model=ModelSource(spec=huge)), None)
    assert err.field == "model.spec" and "6,000,000,003 parameters" in err.message
    assert "100,000,000" in err.message and "allocate" not in err.message


def test_buffers_count_toward_the_budget(registry):
    norm = {"type": "BatchNorm1d", "args": [10**9], "kwargs": {"affine": False}}
    spec = {"type": "Sequential", "modules": [mlp().spec(), norm]}
    err = _refusal(good(model=ModelSource(spec=spec)), registry)
    assert err.field == "model.spec"
    assert "195 parameters and 2,000,000,001 buffer elements" in err.message


def test_an_import_path_model_is_counted_once_built(registry):
    # Its own code decides what it holds, so it can only be counted after it ran.
    linear = ModelSource(
        import_path="shardgrad.nn.linear:Linear", kwargs={"in_features": 8, "out_features": 3}
    )
    allowed = ("shardgrad.nn",)
    good(model=linear).validate(registry, allowed_import_prefixes=allowed, max_parameters=27)
    err = _refusal(good(model=linear), registry, allowed_import_prefixes=allowed, max_parameters=26)
    assert err.field == "model.import_path" and "27 parameters" in err.message
    # A spec with a user's Module inside: its built-in layers count before building, at least.
    inner = {"import": "shardgrad.nn.linear:Linear", "args": [3, 3]}
    spec = {"type": "Sequential", "modules": [mlp().spec(), inner]}
    err = _refusal(good(model=ModelSource(spec=spec)), registry, max_parameters=100)
    assert err.field == "model.spec" and "at least 195 parameters" in err.message
    err = _refusal(
        good(model=ModelSource(spec=spec)),
        registry,
        allowed_import_prefixes=allowed,
        max_parameters=200,
    )
    assert "207 parameters" in err.message and "at least" not in err.message


def test_a_malformed_spec_is_named_before_it_is_counted(registry):
    spec = {"type": "Linear", "args": [8, "3"]}
    err = _refusal(good(model=ModelSource(spec=spec)), registry)
    assert err.field == "model.spec" and "out_features must be an integer" in err.message


def test_the_coordinator_holds_jobs_to_its_max_parameters(procs, tmp_path):
    """`shardgrad serve --max-parameters` is the budget SubmitJob applies."""
    from _servertest import mlp_config, pb

    from shardgrad.client.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["serve", "--state-dir", "s"]).max_parameters == 100_000_000
    with pytest.raises(SystemExit):
        parse(["serve", "--state-dir", "s", "--max-parameters", "0"])

    server = procs.coordinator(tmp_path / "state", "--pool", "inprocess", "--max-parameters", "194")
    try:
        with pytest.raises(grpc.RpcError) as err:
            server.submit(mlp_config())  # 195 parameters
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "model.spec" in err.value.details() and "195 parameters" in err.value.details()
        assert server.call("ListJobs", pb.ListJobsRequest()).jobs == []
    finally:
        server.close()


def _bn_spec() -> dict:
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3)).spec()


@pytest.mark.parametrize(
    "changes, where",
    [
        ({"batch_size": 5, "micro_shards": 4}, "batches of 5 rows"),  # 2, 1, 1, 1 rows
        # 48 training rows: batches of 20, 20 and 8; the last cut in 6 leaves 1-row shards
        ({"batch_size": 20, "micro_shards": 6, "steps": 3}, "the last batch of each epoch (8"),
    ],
)
def test_a_model_that_cannot_train_on_one_row_is_refused_single_row_micro_shards(
    registry, changes, where
):
    cfg = good(model=ModelSource(spec=_bn_spec()), **changes)
    with pytest.raises(ValidationError) as info:
        cfg.validate(registry)
    assert info.value.field == "micro_shards"
    assert where in str(info.value) and "single row" in str(info.value)
    assert "Expected more than 1 value per channel" in str(info.value)


def test_single_row_micro_shards_are_fine_where_the_model_takes_one_row(registry):
    good(batch_size=5, micro_shards=4).validate(registry)  # no BatchNorm
    bn = ModelSource(spec=_bn_spec())
    good(model=bn, batch_size=20, micro_shards=6, steps=2).validate(registry)  # ends in epoch 1
    good(model=bn, batch_size=24, micro_shards=4).validate(registry)  # 6 rows each
    conv_bn = nn.Sequential(
        nn.Unflatten(1, (2, 2, 2)),
        nn.Conv2d(2, 3, 1),
        nn.BatchNorm2d(3),
        nn.Flatten(),
        nn.Linear(12, 3),
    )
    good(model=ModelSource(spec=conv_bn.spec()), batch_size=5, micro_shards=4).validate(registry)


@pytest.mark.parametrize(
    "n, batch, k, steps, smallest",
    [(48, 16, 4, 20, 4), (48, 5, 4, 20, 1), (48, 20, 6, 3, 1), (48, 20, 6, 2, 3), (7, 16, 4, 1, 1)],
)
def test_smallest_micro_shard(n, batch, k, steps, smallest):
    from shardgrad.service.validation import smallest_micro_shard

    assert smallest_micro_shard(n, batch, k, steps) == smallest
