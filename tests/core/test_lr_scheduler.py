"""shardgrad.optim.lr_scheduler against torch's: lr (and momentum) sequences, state dicts,
errors and warnings.

Every scheduler drives an optimizer with two param groups through 40 epochs in both libraries;
the lrs each step sets, and the ones `get_last_lr()` reports, must agree to rtol 1e-12.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import shardgrad as sg
import shardgrad.optim as so

RTOL = 1e-12
EPOCHS = 40


def make_optimizer(lib, mod, kind: str = "SGD"):
    """Two groups with different lrs; `kind` picks SGD (momentum) or Adam (betas)."""
    a, b = lib.zeros(2, requires_grad=True), lib.zeros(3, requires_grad=True)
    groups = [{"params": [a]}, {"params": [b], "lr": 0.01}]
    if kind == "SGD":
        return mod.SGD(groups, lr=0.1, momentum=0.9)
    if kind == "Adam":
        return mod.Adam(groups, lr=0.1)
    return getattr(mod, kind)(groups, lr=0.1)


def trace(lib, mod, make_sched, kind: str = "SGD", epochs: int = EPOCHS, metrics=None):
    """Per epoch: group lrs, get_last_lr(), and momentum or beta1 of each group."""
    opt = make_optimizer(lib, mod, kind)
    sched = make_sched(mod.lr_scheduler, opt)
    rows = []

    def record():
        lrs = [g["lr"] for g in opt.param_groups]
        moms = [g["momentum"] if "momentum" in g else g["betas"][0] for g in opt.param_groups]
        rows.append((lrs, list(sched.get_last_lr()), moms))

    record()
    for epoch in range(epochs):
        opt.step()  # no gradients: a no-op that keeps the step order torch expects
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[epoch])
        record()
    return rows


def assert_traces_equal(make_sched, kind: str = "SGD", epochs: int = EPOCHS, metrics=None):
    ours = trace(sg, so, make_sched, kind, epochs, metrics)
    theirs = trace(torch, torch.optim, make_sched, kind, epochs, metrics)
    assert len(ours) == len(theirs)
    for epoch, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        for what, a, b in zip(("lr", "last_lr", "momentum"), o, t, strict=True):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=0, err_msg=f"{what} at epoch {epoch}")
    return ours


class Halve:
    """A callable object (not a function) as lr_lambda: its state is saved."""

    def __init__(self) -> None:
        self.base = 0.5

    def __call__(self, epoch: int) -> float:
        return self.base ** (epoch // 7)


SCHEDULERS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    "StepLR-default-gamma": lambda m, o: m.StepLR(o, 10),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[5, 10, 10, 27], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=1e-3),
    "CosineAnnealingLR-odd": lambda m, o: m.CosineAnnealingLR(o, T_max=7),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 0.95**e),
    "LambdaLR-per-group": lambda m, o: m.LambdaLR(o, [lambda e: 1 / (e + 1), Halve()]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lambda e: 0.9 if e % 2 else 1.01),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=4),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=8),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=12, power=2.0),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(
        o, T_0=5, T_mult=2, eta_min=1e-4
    ),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o,
        [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=20)],
        milestones=[5],
    ),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.25, total_iters=6), m.ExponentialLR(o, gamma=0.9)]
    ),
    "OneCycleLR-cos": lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=EPOCHS),
    "OneCycleLR-linear": lambda m, o: m.OneCycleLR(
        o, max_lr=[0.5, 0.05], total_steps=EPOCHS, anneal_strategy="linear", pct_start=0.25
    ),
    "OneCycleLR-three-phase": lambda m, o: m.OneCycleLR(
        o,
        max_lr=0.8,
        epochs=4,
        steps_per_epoch=10,
        three_phase=True,
        div_factor=10.0,
        final_div_factor=100.0,
        base_momentum=[0.8, 0.7],
        max_momentum=0.99,
    ),
    "OneCycleLR-no-momentum": lambda m, o: m.OneCycleLR(
        o, max_lr=0.3, total_steps=EPOCHS + 5, cycle_momentum=False, pct_start=0.5
    ),
    "CyclicLR": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4),
    "CyclicLR-triangular2": lambda m, o: m.CyclicLR(
        o,
        [0.01, 0.001],
        [0.1, 0.05],
        step_size_up=3,
        step_size_down=5,
        mode="triangular2",
        base_momentum=[0.7, 0.8],
        max_momentum=0.95,
    ),
    "CyclicLR-exp-range": lambda m, o: m.CyclicLR(
        o, 0.02, 0.2, step_size_up=6, mode="exp_range", gamma=0.97, cycle_momentum=False
    ),
    "CyclicLR-scale-fn": lambda m, o: m.CyclicLR(
        o, 0.02, 0.2, step_size_up=5, scale_fn=lambda x: 1 / (1 + x), scale_mode="iterations"
    ),
}


@pytest.mark.parametrize("make_sched", SCHEDULERS.values(), ids=SCHEDULERS.keys())
def test_lr_sequence_matches_torch_with_sgd(make_sched) -> None:
    assert_traces_equal(make_sched, "SGD")


@pytest.mark.parametrize(
    "name",
    [
        "CosineAnnealingLR", "OneCycleLR-cos", "OneCycleLR-three-phase", "SequentialLR",
        "StepLR", "CyclicLR-triangular2",
    ],
)  # fmt: skip
def test_lr_sequence_matches_torch_with_adam(name: str) -> None:
    """With Adam, OneCycleLR and CyclicLR cycle beta1 instead of momentum."""
    rows = assert_traces_equal(SCHEDULERS[name], "Adam")
    if "Cycl" in name:
        assert len({round(r[2][0], 12) for r in rows}) > 5  # beta1 really moves


def test_cosine_annealing_follows_the_recursive_formula_when_lr_is_changed() -> None:
    """The recursive form builds on the group's current lr, so a manual change persists."""

    def run(lib, mod):
        opt = make_optimizer(lib, mod)
        sched = mod.lr_scheduler.CosineAnnealingLR(opt, T_max=8, eta_min=0.01)
        out = []
        for epoch in range(30):
            if epoch == 5:
                opt.param_groups[0]["lr"] *= 3
            opt.step()
            sched.step()
            out.append([g["lr"] for g in opt.param_groups])
        return out

    np.testing.assert_allclose(run(sg, so), run(torch, torch.optim), rtol=RTOL)


def test_reduce_lr_on_plateau_matches_torch() -> None:
    metrics = [1.0 / (1 + e) if e < 8 else 0.2 + 0.001 * (e % 3) for e in range(EPOCHS)]
    for kwargs in (
        {"patience": 2, "factor": 0.5},
        {
            "mode": "max",
            "patience": 1,
            "cooldown": 2,
            "threshold_mode": "abs",
            "min_lr": [0.01, 0.0],
        },
    ):

        def make(m, o, kwargs=kwargs):
            return m.ReduceLROnPlateau(o, **kwargs)

        assert_traces_equal(make, metrics=metrics)


def test_closed_form_step_with_epoch_matches_torch() -> None:
    def run(lib, mod):
        opt = make_optimizer(lib, mod)
        sched = mod.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in (3, 9, 2, 17):
                opt.step()
                sched.step(epoch)
                out.append(sched.get_last_lr())
        return out

    np.testing.assert_allclose(run(sg, so), run(torch, torch.optim), rtol=RTOL)


@pytest.mark.parametrize(
    "name",
    [
        "StepLR", "CosineAnnealingLR", "OneCycleLR-three-phase", "LambdaLR-per-group",
        "SequentialLR", "CyclicLR-triangular2",
    ],
)  # fmt: skip
def test_state_dict_round_trip_resumes_the_schedule(name: str) -> None:
    make_sched = SCHEDULERS[name]
    full = trace(sg, so, make_sched)

    opt = make_optimizer(sg, so)
    sched = make_sched(so.lr_scheduler, opt)
    for _ in range(15):
        opt.step()
        sched.step()
    opt_state, sched_state = opt.state_dict(), sched.state_dict()

    opt2 = make_optimizer(sg, so)
    sched2 = make_sched(so.lr_scheduler, opt2)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    resumed = []
    for _ in range(15, EPOCHS):
        opt2.step()
        sched2.step()
        resumed.append(sched2.get_last_lr())
    np.testing.assert_allclose(resumed, [row[1] for row in full[16:]], rtol=RTOL)


@pytest.mark.parametrize(
    "name",
    [
        "StepLR",
        "CosineAnnealingLR",
        "OneCycleLR-cos",
        "LambdaLR-per-group",
        "ChainedScheduler",
        "ReduceLROnPlateau",
        "CyclicLR-exp-range",
    ],
)
def test_state_dict_keys_match_torch(name: str) -> None:
    def make(m, o):
        if name == "ReduceLROnPlateau":
            return m.ReduceLROnPlateau(o)
        return SCHEDULERS[name](m, o)

    ours = make(so.lr_scheduler, make_optimizer(sg, so)).state_dict()
    theirs = make(torch.optim.lr_scheduler, make_optimizer(torch, torch.optim)).state_dict()
    assert set(ours) == set(theirs)
    for key in ("last_epoch", "_step_count", "base_lrs", "_last_lr"):
        if key in theirs:
            assert ours[key] == pytest.approx(theirs[key], rel=RTOL)
    if name == "LambdaLR-per-group":
        assert ours["lr_lambdas"] == [None, {"base": 0.5}]


def test_resuming_with_last_epoch_needs_initial_lr() -> None:
    for lib, mod in ((sg, so), (torch, torch.optim)):
        opt = make_optimizer(lib, mod)
        with pytest.raises(
            KeyError, match="param 'initial_lr' is not specified in param_groups\\[0\\]"
        ):
            mod.lr_scheduler.StepLR(opt, 3, last_epoch=4)


def test_resuming_with_last_epoch_matches_torch() -> None:
    def run(lib, mod):
        opt = make_optimizer(lib, mod)
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
        sched = mod.lr_scheduler.CosineAnnealingLR(opt, T_max=12, last_epoch=5)
        out = [sched.get_last_lr()]
        for _ in range(10):
            opt.step()
            sched.step()
            out.append(sched.get_last_lr())
        return out

    np.testing.assert_allclose(run(sg, so), run(torch, torch.optim), rtol=RTOL)


def _same_error(make) -> None:
    errors = []
    for lib, mod in ((sg, so), (torch, torch.optim)):
        opt = make_optimizer(lib, mod)
        with pytest.raises(Exception) as info:  # noqa: PT011 - compared below
            make(mod, opt)
        errors.append(info.value)
    assert type(errors[0]) is type(errors[1])
    assert str(errors[0]) == str(errors[1])


ERROR_CASES = {
    "not an optimizer": lambda m, o: m.lr_scheduler.StepLR(object(), 3),
    "onecycle no total": lambda m, o: m.lr_scheduler.OneCycleLR(o, max_lr=0.1),
    "onecycle total": lambda m, o: m.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=0),
    "onecycle epochs": lambda m, o: m.lr_scheduler.OneCycleLR(o, 0.1, epochs=-1, steps_per_epoch=3),
    "onecycle pct": lambda m, o: m.lr_scheduler.OneCycleLR(o, 0.1, total_steps=10, pct_start=1.5),
    "onecycle anneal": lambda m, o: m.lr_scheduler.OneCycleLR(
        o, 0.1, total_steps=10, anneal_strategy="exp"
    ),
    "onecycle max_lr list": lambda m, o: m.lr_scheduler.OneCycleLR(o, [0.1], total_steps=10),
    "onecycle without momentum": lambda m, o: m.lr_scheduler.OneCycleLR(
        m.Adagrad([p for g in o.param_groups for p in g["params"]]), 0.1, total_steps=10
    ),
    "lambda count": lambda m, o: m.lr_scheduler.LambdaLR(o, [lambda e: 1.0]),
    "multiplicative not callable": lambda m, o: m.lr_scheduler.MultiplicativeLR(o, [1.0, 2.0]),
    "constant factor": lambda m, o: m.lr_scheduler.ConstantLR(o, factor=1.5),
    "linear start": lambda m, o: m.lr_scheduler.LinearLR(o, start_factor=0),
    "linear end": lambda m, o: m.lr_scheduler.LinearLR(o, end_factor=2),
    "warm restarts T_0": lambda m, o: m.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=0),
    "warm restarts T_mult": lambda m, o: m.lr_scheduler.CosineAnnealingWarmRestarts(o, 2, T_mult=0),
    "plateau factor": lambda m, o: m.lr_scheduler.ReduceLROnPlateau(o, factor=1.0),
    "plateau mode": lambda m, o: m.lr_scheduler.ReduceLROnPlateau(o, mode="median"),
    "plateau min_lrs": lambda m, o: m.lr_scheduler.ReduceLROnPlateau(o, min_lr=[0.1]),
    "sequential milestones": lambda m, o: m.lr_scheduler.SequentialLR(
        o, [m.lr_scheduler.StepLR(o, 2)], milestones=[3]
    ),
    "sequential empty": lambda m, o: m.lr_scheduler.SequentialLR(o, [], milestones=[]),
    "chained empty": lambda m, o: m.lr_scheduler.ChainedScheduler([]),
}


@pytest.mark.parametrize("make", ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_errors_match_torch(make) -> None:
    _same_error(make)


def test_onecycle_refuses_to_step_past_total_steps() -> None:
    opt = make_optimizer(sg, so)
    sched = so.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        opt.step()
        sched.step()
    opt.step()
    with pytest.raises(
        ValueError, match="Tried to step 4 times. The specified number of total steps is 3"
    ):
        sched.step()


def test_warns_when_scheduler_steps_before_optimizer() -> None:
    opt = make_optimizer(sg, so)
    sched = so.lr_scheduler.StepLR(opt, 2)
    with pytest.warns(
        UserWarning,
        match="Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`",
    ):
        sched.step()


def test_warns_when_get_lr_is_called_directly() -> None:
    opt = make_optimizer(sg, so)
    sched = so.lr_scheduler.ExponentialLR(opt, 0.5)
    with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
        sched.get_lr()


def test_no_warnings_in_the_usual_loop() -> None:
    opt = make_optimizer(sg, so)
    sched = so.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(6):
            opt.step()
            sched.step()


def test_scheduler_drives_the_update_size() -> None:
    """The lr a scheduler sets is the one the next step uses."""
    p = sg.zeros(1, requires_grad=True)
    opt = so.SGD([p], lr=1.0)
    sched = so.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    for _ in range(4):
        p.grad = sg.ones(1)
        opt.step()
        sched.step()
    assert p.item() == pytest.approx(-(1 + 0.5 + 0.25 + 0.125))
    assert sched.get_last_lr() == [0.0625]
    assert math.isclose(opt.param_groups[0]["initial_lr"], 1.0)


def test_onecycle_writes_the_group_keys_torch_writes() -> None:
    """initial_lr, max_lr, min_lr, max/base_momentum and the cycled beta1 land in each group."""
    groups = []
    for lib, mod in ((sg, so), (torch, torch.optim)):
        opt = make_optimizer(lib, mod, "Adam")
        mod.lr_scheduler.OneCycleLR(opt, max_lr=[0.4, 0.2], total_steps=10)
        groups.append([{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups])
    assert groups[0] == groups[1]
    assert groups[0][0]["betas"] == (0.95, 0.999) and groups[0][1]["max_lr"] == 0.2
