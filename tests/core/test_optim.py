"""shardgrad.optim against torch.optim: trajectories, state, state_dict format and errors.

Each differential test runs the same float64 parameters, in several groups, through torch and
shardgrad with the same hand-set gradients (a deterministic function of the step and of the
parameter itself, so any drift would grow) and demands agreement to rtol 1e-10.
"""

from __future__ import annotations

import copy
import itertools
import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from torch.optim.optimizer import required as torch_required

import shardgrad as sg
import shardgrad.optim as so
from tests.conftest import to_numpy

RTOL, ATOL = 1e-10, 1e-14
SHAPES = [(3, 4), (5,), (2, 3, 2), ()]


# ---------------------------------------------------------------------------- helpers
def make_params(seed: int = 0):
    """The same float64 leaves for both libraries, one list each."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in SHAPES]
    sg_ps = [sg.tensor(a.copy(), requires_grad=True) for a in arrays]
    th_ps = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return sg_ps, th_ps


def grad_for(value: np.ndarray, step: int, idx: int) -> np.ndarray:
    """A gradient that depends on the step and on the parameter (a quadratic pull plus a
    drifting sinusoid); both libraries compute it from their own parameter values."""
    phase = np.arange(value.size, dtype=np.float64).reshape(value.shape)
    return 0.3 * value + np.sin(0.7 * step + 1.3 * idx + phase) * (1.0 + 0.5 * idx)


def groups(params, extra: dict):
    """Two groups: the first takes the constructor defaults, the second overrides some."""
    return [{"params": params[:2]}, {"params": params[2:], **extra}]


def skip_grad(step: int, idx: int) -> bool:
    """Leave one parameter without a gradient on some steps (the optimizer must skip it)."""
    return idx == 2 and step % 4 == 3


def set_grads(params, step: int) -> None:
    for i, p in enumerate(params):
        if skip_grad(step, i):
            p.grad = None
            continue
        g = grad_for(to_numpy(p), step, i)
        g = np.asarray(g, dtype=np.float64)
        p.grad = sg.tensor(g) if isinstance(p, sg.Tensor) else torch.tensor(g)


def run(opt, params, steps: range) -> None:
    for step in steps:
        set_grads(params, step)
        opt.step()


def assert_params_close(sg_ps, th_ps, msg: str = "") -> None:
    for i, (a, b) in enumerate(zip(sg_ps, th_ps, strict=True)):
        np.testing.assert_allclose(
            to_numpy(a), to_numpy(b), rtol=RTOL, atol=ATOL, err_msg=f"{msg} param {i}"
        )


def assert_state_close(sg_opt, th_opt, rtol: float = RTOL, atol: float = ATOL) -> None:
    s_sd, t_sd = sg_opt.state_dict()["state"], th_opt.state_dict()["state"]
    assert s_sd.keys() == t_sd.keys()
    for k in t_sd:
        assert list(s_sd[k].keys()) == list(t_sd[k].keys()), k
        for name, tv in t_sd[k].items():
            np.testing.assert_allclose(
                to_numpy(s_sd[k][name]), to_numpy(tv), rtol=rtol, atol=atol, err_msg=f"{k}.{name}"
            )


def _options(grid: dict, valid=lambda o: True) -> list[dict]:
    keys = list(grid)
    combos = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*grid.values())]
    return [c for c in combos if valid(c)]


def _ids(options: list[dict]) -> list[str]:
    return ["-".join(f"{k}={v}" for k, v in o.items()) for o in options]


SGD_OPTS = _options(
    {
        "momentum": [0.0, 0.9],
        "dampening": [0.0, 0.3],
        "nesterov": [False, True],
        "weight_decay": [0.0, 0.1],
        "maximize": [False, True],
    },
    valid=lambda o: not o["nesterov"] or (o["momentum"] > 0 and o["dampening"] == 0),
)
ADAM_OPTS = _options(
    {
        "betas": [(0.9, 0.999), (0.3, 0.8)],  # beta1 <= 0.5 takes lerp's other formula
        "weight_decay": [0.0, 0.1],
        "amsgrad": [False, True],
        "maximize": [False, True],
        "decoupled_weight_decay": [False, True],
    },
    valid=lambda o: o["weight_decay"] > 0 or not o["decoupled_weight_decay"],
)
ADAMW_OPTS = _options(
    {"weight_decay": [0.0, 0.05], "amsgrad": [False, True], "maximize": [False, True]}
)
RMSPROP_OPTS = _options(
    {
        "alpha": [0.99, 0.3],
        "momentum": [0.0, 0.8],
        "centered": [False, True],
        "weight_decay": [0.0, 0.1],
        "maximize": [False, True],
    }
)
ADAGRAD_OPTS = _options(
    {
        "lr_decay": [0.0, 0.1],
        "weight_decay": [0.0, 0.1],
        "initial_accumulator_value": [0.0, 0.5],
        "maximize": [False, True],
    }
)

NADAM_OPTS = _options(
    {
        "betas": [(0.9, 0.999), (0.3, 0.8)],
        "weight_decay": [0.0, 0.1],
        "momentum_decay": [4e-3, 0.1],
        "decoupled_weight_decay": [False, True],
        "maximize": [False, True],
    },
    valid=lambda o: o["weight_decay"] > 0 or not o["decoupled_weight_decay"],
)
RADAM_OPTS = _options(
    {
        "betas": [(0.9, 0.999), (0.3, 0.8)],  # the second is rectified from its first steps
        "weight_decay": [0.0, 0.1],
        "decoupled_weight_decay": [False, True],
        "maximize": [False, True],
    },
    valid=lambda o: o["weight_decay"] > 0 or not o["decoupled_weight_decay"],
)
ADAMAX_OPTS = _options(
    {"betas": [(0.9, 0.999), (0.3, 0.8)], "weight_decay": [0.0, 0.1], "maximize": [False, True]}
)
ADADELTA_OPTS = _options({"rho": [0.9, 0.5], "weight_decay": [0.0, 0.1], "maximize": [False, True]})
RPROP_OPTS = _options(
    {"etas": [(0.5, 1.2), (0.3, 1.5)], "step_sizes": [(1e-6, 50), (1e-3, 0.02)],
     "maximize": [False, True]}
)  # fmt: skip
ASGD_OPTS = _options(
    {"lambd": [1e-4, 0.05], "t0": [1e6, 4], "weight_decay": [0.0, 0.1], "maximize": [False, True]}
)

# name -> (lr of the first group, options, overrides of the second group)
CASES = {
    "SGD": (0.05, SGD_OPTS, {"lr": 0.02}),
    "Adam": (0.01, ADAM_OPTS, {"lr": 0.03, "eps": 1e-6}),
    "AdamW": (0.01, ADAMW_OPTS, {"lr": 0.03, "weight_decay": 0.2}),
    "RMSprop": (0.01, RMSPROP_OPTS, {"lr": 0.005, "eps": 1e-4}),
    "Adagrad": (0.1, ADAGRAD_OPTS, {"lr": 0.05, "eps": 1e-6}),
    "NAdam": (0.01, NADAM_OPTS, {"lr": 0.03, "eps": 1e-6}),
    "RAdam": (0.01, RADAM_OPTS, {"lr": 0.03, "eps": 1e-6}),
    "Adamax": (0.01, ADAMAX_OPTS, {"lr": 0.03, "eps": 1e-6}),
    "Adadelta": (0.5, ADADELTA_OPTS, {"lr": 1.0, "eps": 1e-5}),
    "Rprop": (0.01, RPROP_OPTS, {"lr": 0.05}),
    "ASGD": (0.05, ASGD_OPTS, {"lr": 0.02, "alpha": 0.5}),
}


def build(name: str, opts: dict, seed: int = 0):
    lr, _, extra = CASES[name]
    sg_ps, th_ps = make_params(seed)
    # torch on the CPU takes its single-tensor path; foreach=False says so explicitly
    sg_opt = getattr(so, name)(groups(sg_ps, extra), lr=lr, foreach=False, **opts)
    th_opt = getattr(torch.optim, name)(groups(th_ps, extra), lr=lr, foreach=False, **opts)
    return sg_opt, sg_ps, th_opt, th_ps


def _cases():
    for name, (_, options, _) in CASES.items():
        for opts, ident in zip(options, _ids(options), strict=True):
            yield pytest.param(name, opts, id=f"{name}-{ident}")


# ---------------------------------------------------------------------------- trajectories
@pytest.mark.parametrize(("name", "opts"), list(_cases()))
def test_trajectory_matches_torch(name: str, opts: dict) -> None:
    sg_opt, sg_ps, th_opt, th_ps = build(name, opts)
    for step in range(12):
        set_grads(sg_ps, step)
        set_grads(th_ps, step)
        sg_opt.step()
        th_opt.step()
        assert_params_close(sg_ps, th_ps, f"step {step}")
    assert_state_close(sg_opt, th_opt)


def test_sgd_per_group_momentum_and_nesterov_match_torch() -> None:
    """Groups may differ in every hyperparameter, not only lr."""
    sg_ps, th_ps = make_params(3)

    def grouped(ps):
        return [
            {"params": ps[:1], "momentum": 0.9, "nesterov": True},
            {"params": ps[1:3], "momentum": 0.5, "dampening": 0.2, "weight_decay": 0.01},
            {"params": ps[3:], "lr": 0.2},
        ]

    sg_opt = so.SGD(grouped(sg_ps), lr=0.05)
    th_opt = torch.optim.SGD(grouped(th_ps), lr=0.05, foreach=False)
    for step in range(10):
        set_grads(sg_ps, step)
        set_grads(th_ps, step)
        sg_opt.step()
        th_opt.step()
    assert_params_close(sg_ps, th_ps)
    assert_state_close(sg_opt, th_opt)


# ---------------------------------------------------------------------------- state dicts
STRUCT_CASES = [
    ("SGD", {"momentum": 0.9}),
    ("SGD", {}),
    ("Adam", {"amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("RMSprop", {}),
    ("Adagrad", {"initial_accumulator_value": 0.1}),
    ("Rprop", {}),
    ("ASGD", {"t0": 2}),
]


@pytest.mark.parametrize(("name", "opts"), STRUCT_CASES, ids=[f"{n}{o}" for n, o in STRUCT_CASES])
def test_state_dict_structure_equals_torch(name: str, opts: dict) -> None:
    sg_opt, sg_ps, th_opt, th_ps = build(name, opts)
    run(sg_opt, sg_ps, range(3))
    run(th_opt, th_ps, range(3))
    s_sd, t_sd = sg_opt.state_dict(), th_opt.state_dict()
    assert s_sd.keys() == t_sd.keys() == {"state", "param_groups"}
    assert len(s_sd["param_groups"]) == len(t_sd["param_groups"])
    for sg_group, th_group in zip(s_sd["param_groups"], t_sd["param_groups"], strict=True):
        assert list(sg_group) == list(th_group)
        assert sg_group == th_group  # same hyperparameters and the same index lists
    assert_state_close(sg_opt, th_opt)
    for k, st in t_sd["state"].items():
        if "step" in st:
            sg_step = s_sd["state"][k]["step"]
            assert isinstance(sg_step, sg.Tensor) and sg_step.shape == ()
            assert sg_step.dtype.name == str(st["step"].dtype).removeprefix("torch.")
            assert sg_step.item() == st["step"].item()


@pytest.mark.parametrize(("name", "opts"), STRUCT_CASES, ids=[f"{n}{o}" for n, o in STRUCT_CASES])
def test_state_dict_round_trip_continues_the_trajectory(name: str, opts: dict) -> None:
    sg_opt, sg_ps, th_opt, th_ps = build(name, opts)
    run(sg_opt, sg_ps, range(5))
    run(th_opt, th_ps, range(5))
    saved = copy.deepcopy(sg_opt.state_dict())

    fresh_ps = [sg.tensor(to_numpy(p).copy(), requires_grad=True) for p in sg_ps]
    lr, _, extra = CASES[name]
    fresh = getattr(so, name)(groups(fresh_ps, extra), lr=1.0)  # hyperparameters come from the load
    fresh.load_state_dict(saved)

    run(fresh, fresh_ps, range(5, 11))
    run(sg_opt, sg_ps, range(5, 11))
    run(th_opt, th_ps, range(5, 11))
    assert_params_close(fresh_ps, th_ps, "reloaded")
    assert_params_close(sg_ps, th_ps, "original")  # the two no longer share state
    assert_state_close(fresh, th_opt)
    assert fresh.param_groups[1]["lr"] == extra["lr"]


@pytest.mark.parametrize(("name", "opts"), STRUCT_CASES, ids=[f"{n}{o}" for n, o in STRUCT_CASES])
def test_loads_a_torch_state_dict(name: str, opts: dict) -> None:
    """A checkpoint written by torch (arrays inside) resumes in shardgrad on the same path."""
    _, _, th_opt, th_ps = build(name, opts)
    run(th_opt, th_ps, range(4))
    sg_ps = [sg.tensor(to_numpy(p).copy(), requires_grad=True) for p in th_ps]
    _, _, extra = CASES[name]
    sg_opt = getattr(so, name)(groups(sg_ps, extra), **opts)
    sg_opt.load_state_dict(th_opt.state_dict())
    for st in sg_opt.state.values():
        for v in st.values():
            assert isinstance(v, sg.Tensor)
    run(sg_opt, sg_ps, range(4, 12))
    run(th_opt, th_ps, range(4, 12))
    assert_params_close(sg_ps, th_ps)


def test_load_state_dict_casts_state_to_param_dtype_and_keeps_step() -> None:
    p = sg.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    opt = so.Adam([p])
    state = {
        "state": {0: {"step": 7, "exp_avg": np.zeros(3), "exp_avg_sq": np.full(3, 0.5)}},
        "param_groups": [dict(opt.state_dict()["param_groups"][0])],
    }
    opt.load_state_dict(state)
    st = opt.state[p]
    assert st["exp_avg"].dtype == sg.float32 and st["exp_avg_sq"].dtype == sg.float32
    assert isinstance(st["step"], sg.Tensor) and st["step"].item() == 7.0
    np.testing.assert_array_equal(state["state"][0]["exp_avg_sq"], np.full(3, 0.5))


def test_load_state_dict_rejects_mismatched_groups() -> None:
    for lib, mod in ((sg, so), (torch, torch.optim)):
        a, b = lib.zeros(2, requires_grad=True), lib.zeros(2, requires_grad=True)
        sd = mod.SGD([a, b], lr=0.1).state_dict()
        with pytest.raises(ValueError, match="different number of parameter groups"):
            mod.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)
        with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
            mod.SGD([a], lr=0.1).load_state_dict(sd)


def test_adagrad_state_exists_before_the_first_step() -> None:
    sg_ps, th_ps = make_params()
    s = so.Adagrad(sg_ps, initial_accumulator_value=0.25).state_dict()
    t = torch.optim.Adagrad(th_ps, initial_accumulator_value=0.25).state_dict()
    assert s["state"].keys() == t["state"].keys() == {0, 1, 2, 3}
    np.testing.assert_array_equal(to_numpy(s["state"][2]["sum"]), to_numpy(t["state"][2]["sum"]))


# ---------------------------------------------------------------------------- mechanics
def test_updates_run_in_place_on_the_parameter_arrays() -> None:
    """A parameter that views a flat buffer (as the coordinator's does) updates the buffer."""
    flat = np.linspace(-1.0, 1.0, 12)
    p = sg.from_numpy(flat[2:10]).requires_grad_()
    array_before, version_before = p._data, p._version
    opt = so.Adam([p], lr=0.1)
    p.grad = sg.tensor(np.ones(8))
    opt.step()
    assert p._data is array_before
    assert p._version > version_before
    # Adam's first step moves each coordinate by lr (up to eps) against the gradient's sign
    np.testing.assert_allclose(flat[2:10], np.linspace(-1.0, 1.0, 12)[2:10] - 0.1, rtol=1e-6)
    assert flat[0] == -1.0 and flat[-1] == 1.0


LARGE_CASES = [
    ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"momentum": 0.9, "dampening": 0.2, "maximize": True}),
    ("Adam", {"amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {"maximize": True}),
    ("RMSprop", {"momentum": 0.5, "centered": True, "weight_decay": 0.1}),
    ("Adagrad", {"lr_decay": 0.05, "initial_accumulator_value": 0.1}),
    ("Rprop", {"maximize": True}),
    ("ASGD", {"t0": 2, "weight_decay": 0.1}),
]


@pytest.mark.parametrize(("name", "opts"), LARGE_CASES, ids=[f"{n}{o}" for n, o in LARGE_CASES])
@pytest.mark.parametrize("layout", ["flat", "strided"])
def test_large_and_strided_parameters_match_torch(name: str, opts: dict, layout: str) -> None:
    """A flat buffer larger than one host block (updated block by block) and a strided view
    (updated whole) both follow torch's trajectory."""
    n = 3 * (1 << 17) + 777
    rng = np.random.default_rng(7)
    base = rng.standard_normal(2 * n if layout == "strided" else n)
    view = (lambda a: a[::2]) if layout == "strided" else (lambda a: a)
    sg_base, th_base = base.copy(), base.copy()
    sg_p = sg.from_numpy(view(sg_base)).requires_grad_()
    th_p = torch.from_numpy(view(th_base)).requires_grad_()
    lr = CASES[name][0]
    sg_opt = getattr(so, name)([sg_p], lr=lr, **opts)
    th_opt = getattr(torch.optim, name)([th_p], lr=lr, foreach=False, **opts)
    for step in range(6):
        g = grad_for(to_numpy(sg_p), step, 1)
        sg_p.grad = sg.tensor(g)
        th_p.grad = torch.tensor(grad_for(to_numpy(th_p), step, 1))
        sg_opt.step()
        th_opt.step()
    np.testing.assert_allclose(sg_base, th_base, rtol=RTOL, atol=ATOL)
    assert_state_close(sg_opt, th_opt)
    scratch = max(b.size for b in sg_opt._ws._bufs.values())
    assert scratch < n if layout == "flat" else scratch == n  # blocks need only block-sized scratch


@pytest.mark.parametrize(
    ("name", "opts"),
    [
        ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
        ("SGD", {"momentum": 0.9, "dampening": 0.1, "maximize": True}),
        ("Adam", {"amsgrad": True, "weight_decay": 0.1, "maximize": True}),
        ("AdamW", {}),
        ("RMSprop", {"momentum": 0.9, "centered": True, "weight_decay": 0.1}),
        ("Adagrad", {"weight_decay": 0.1, "lr_decay": 0.01}),
    ],
)
def test_step_allocates_no_parameter_sized_temporaries(name: str, opts: dict) -> None:
    n = 200_000  # 1.6 MB per float64 array
    p = sg.tensor(np.random.default_rng(0).standard_normal(n), requires_grad=True)
    p.grad = sg.tensor(np.random.default_rng(1).standard_normal(n))
    opt = getattr(so, name)([p], lr=1e-3, **opts)
    opt.step()
    opt.step()  # state and scratch exist from here on
    tracemalloc.start()
    try:
        for _ in range(3):
            opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * 8 // 4, f"{name} step allocated {peak} bytes"


def test_state_lives_with_the_parameter() -> None:
    p = sg.tensor(np.ones((2, 3)), requires_grad=True)
    opt = so.RMSprop([p], momentum=0.9, centered=True)
    p.grad = sg.ones(2, 3, dtype=sg.float64)
    opt.step()
    st = opt.state[p]
    for name in ("square_avg", "momentum_buffer", "grad_avg"):
        assert isinstance(st[name], sg.Tensor)
        assert (
            st[name].device == p.device and st[name].dtype == p.dtype and st[name].shape == p.shape
        )
        assert not np.shares_memory(st[name]._data, p._data)
    assert st["step"].device == sg.device("cpu") and st["step"].dtype == sg.float32


def test_scalar_state_dtype_follows_the_default_dtype() -> None:
    prev = sg.get_default_dtype()
    sg.set_default_dtype(sg.float64)
    try:
        p = sg.zeros(2, requires_grad=True)
        opt = so.Adam([p])
        p.grad = sg.ones(2)
        opt.step()
        assert opt.state[p]["step"].dtype == sg.float64
    finally:
        sg.set_default_dtype(prev)


def test_zero_grad() -> None:
    a, b = sg.ones(3, requires_grad=True), sg.ones(2, requires_grad=True)
    opt = so.SGD([a, b], lr=0.1)
    a.grad = sg.ones(3)
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    a.grad = g = sg.ones(3)
    version = g._version
    opt.zero_grad(set_to_none=False)
    assert a.grad is g and g._version > version
    np.testing.assert_array_equal(to_numpy(g), np.zeros(3))
    assert b.grad is None


def test_step_with_closure_evaluates_under_grad_mode() -> None:
    p = sg.tensor([1.0, -2.0], requires_grad=True)
    opt = so.SGD([p], lr=0.1)
    seen = []

    def closure():
        opt.zero_grad()
        seen.append(sg.is_grad_enabled())
        loss = (p * p).sum()
        loss.backward()
        return loss

    with sg.no_grad():
        loss = opt.step(closure)
    assert seen == [True]
    assert loss.item() == 5.0
    np.testing.assert_allclose(to_numpy(p), [0.8, -1.6])


def test_params_without_grad_are_left_alone() -> None:
    a, b = sg.ones(2, requires_grad=True), sg.ones(2, requires_grad=True)
    opt = so.Adam([a, b], lr=0.1)
    a.grad = sg.ones(2)
    opt.step()
    assert b not in opt.state
    np.testing.assert_array_equal(to_numpy(b), np.ones(2))


def test_add_param_group_fills_defaults_like_torch() -> None:
    sg_ps, th_ps = make_params()
    s = so.SGD(sg_ps[:1], lr=0.1, momentum=0.9)
    t = torch.optim.SGD(th_ps[:1], lr=0.1, momentum=0.9)
    s.add_param_group({"params": sg_ps[1], "lr": 0.5})
    t.add_param_group({"params": th_ps[1], "lr": 0.5})
    s_g, t_g = s.param_groups[1], t.param_groups[1]
    assert {k: v for k, v in s_g.items() if k != "params"} == {
        k: v for k, v in t_g.items() if k != "params"
    }
    assert s_g["params"] == [sg_ps[1]] or s_g["params"][0] is sg_ps[1]


def test_named_parameters_keep_their_names() -> None:
    a, b = sg.ones(2, requires_grad=True), sg.ones(3, requires_grad=True)
    opt = so.Adam([("w", a), ("b", b)])
    assert opt.param_groups[0]["param_names"] == ["w", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]


def test_step_hooks_run_around_the_update() -> None:
    p = sg.ones(2, requires_grad=True)
    opt = so.SGD([p], lr=0.5)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", to_numpy(p)[0])))
    opt.register_step_post_hook(lambda o, a, k: calls.append(("post", to_numpy(p)[0])))
    p.grad = sg.ones(2)
    opt.step()
    assert calls == [("pre", 1.0), ("post", 0.5)]
    pre.remove()
    opt.step()
    assert calls[-1] == ("post", 0.0) and len(calls) == 3


def test_a_copied_optimizer_steps_on_its_own() -> None:
    """deepcopy and pickle keep groups and state (the pickle round trip used by checkpoints
    of whole objects), and the copy no longer shares state with the original."""
    import pickle

    sg_ps, th_ps = make_params()
    opt = so.Adam(groups(sg_ps, {"lr": 0.03}), lr=0.01, amsgrad=True)
    th_opt = torch.optim.Adam(groups(th_ps, {"lr": 0.03}), lr=0.01, amsgrad=True, foreach=False)
    run(opt, sg_ps, range(3))
    run(th_opt, th_ps, range(3))
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        ps = [p for g in clone.param_groups for p in g["params"]]
        run(clone, ps, range(3, 8))
        assert_state_close(opt, th_opt)  # the original is untouched
    run(th_opt, th_ps, range(3, 8))
    assert_params_close(ps, th_ps)


def test_repr_lists_groups_like_torch() -> None:
    sg_ps, th_ps = make_params()
    assert repr(so.Adam(sg_ps, lr=0.1)) == repr(torch.optim.Adam(th_ps, lr=0.1))


def test_lr_may_be_changed_between_steps() -> None:
    sg_ps, th_ps = make_params()
    s, t = (
        so.SGD(sg_ps, lr=0.1, momentum=0.9),
        torch.optim.SGD(th_ps, lr=0.1, momentum=0.9, foreach=False),
    )
    for step in range(6):
        for opt in (s, t):
            opt.param_groups[0]["lr"] = 0.1 / (step + 1)
        set_grads(sg_ps, step)
        set_grads(th_ps, step)
        s.step()
        t.step()
    assert_params_close(sg_ps, th_ps)


# ---------------------------------------------------------------------------- errors
def _same_error(make) -> None:
    """`make(lib, optim_module, params)` raises the same error type and message in both."""
    errors = []
    for lib, mod in ((sg, so), (torch, torch.optim)):
        params = [lib.zeros(2, requires_grad=True)]
        with pytest.raises(Exception) as info:  # noqa: PT011 - compared below
            make(lib, mod, params)
        errors.append(info.value)
    assert type(errors[0]) is type(errors[1])
    assert str(errors[0]) == str(errors[1])


ERROR_CASES = {
    "negative lr": lambda lib, m, p: m.SGD(p, lr=-1),
    "negative momentum": lambda lib, m, p: m.SGD(p, momentum=-0.5),
    "negative weight decay": lambda lib, m, p: m.SGD(p, weight_decay=-1e-3),
    "nesterov without momentum": lambda lib, m, p: m.SGD(p, nesterov=True),
    "nesterov with dampening": lambda lib, m, p: m.SGD(
        p, momentum=0.9, dampening=0.1, nesterov=True
    ),
    "empty params": lambda lib, m, p: m.SGD([], lr=0.1),
    "empty generator": lambda lib, m, p: m.Adam(iter([])),
    "adam lr": lambda lib, m, p: m.Adam(p, lr=-0.5),
    "adam eps": lambda lib, m, p: m.Adam(p, eps=-1.0),
    "adam beta0": lambda lib, m, p: m.Adam(p, betas=(1.0, 0.9)),
    "adam beta1": lambda lib, m, p: m.Adam(p, betas=(0.9, -0.1)),
    "adam int betas": lambda lib, m, p: m.Adam(p, betas=(0, 0.9)),
    "adam weight decay": lambda lib, m, p: m.Adam(p, weight_decay=-1.0),
    "adamw beta": lambda lib, m, p: m.AdamW(p, betas=(0.9, 1.5)),
    "rmsprop alpha": lambda lib, m, p: m.RMSprop(p, alpha=-0.1),
    "rmsprop momentum": lambda lib, m, p: m.RMSprop(p, momentum=-0.1),
    "rmsprop eps": lambda lib, m, p: m.RMSprop(p, eps=-0.1),
    "adagrad lr_decay": lambda lib, m, p: m.Adagrad(p, lr_decay=-0.1),
    "adagrad accumulator": lambda lib, m, p: m.Adagrad(p, initial_accumulator_value=-1.0),
    "adagrad eps": lambda lib, m, p: m.Adagrad(p, eps=-1.0),
    "param in two groups": lambda lib, m, p: m.SGD([{"params": p}, {"params": p}], lr=0.1),
    "non-leaf": lambda lib, m, p: m.SGD([p[0] * 2], lr=0.1),
    "set of params": lambda lib, m, p: m.SGD([{"params": set(p)}], lr=0.1),
    "group not a dict": lambda lib, m, p: m.SGD(p, lr=0.1).add_param_group(p),
    "names partly missing": lambda lib, m, p: m.SGD([("a", p[0]), lib.ones(1, requires_grad=True)]),
    "required hyperparameter": lambda lib, m, p: m.Optimizer(
        p, {"lr": so.required if m is so else torch_required}
    ),
    "fused and foreach": lambda lib, m, p: m.Adam(p, fused=True, foreach=True),
}


@pytest.mark.parametrize("make", ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_errors_match_torch(make) -> None:
    _same_error(make)


def test_non_tensor_params_raise_type_errors() -> None:
    p = sg.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match="should be an iterable of Tensors or dicts, but got"):
        so.SGD(p, lr=0.1)
    with pytest.raises(
        TypeError, match="optimizer can only optimize Tensors, but one of the params is"
    ):
        so.SGD([p, 3.0], lr=0.1)


def test_duplicate_params_warn_like_torch() -> None:
    for lib, mod in ((sg, so), (torch, torch.optim)):
        p = lib.zeros(2, requires_grad=True)
        with pytest.warns(
            UserWarning, match="optimizer contains a parameter group with duplicate parameters"
        ):
            mod.SGD([p, p], lr=0.1)


def test_unsupported_modes_are_refused() -> None:
    p = sg.zeros(2, requires_grad=True)
    with pytest.raises(NotImplementedError, match="capturable"):
        so.Adam([p], capturable=True)
    with pytest.raises(NotImplementedError, match="differentiable"):
        so.SGD([p], differentiable=True)


def test_no_warnings_in_a_plain_loop() -> None:
    p = sg.ones(3, requires_grad=True)
    opt = so.AdamW([p])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            p.grad = sg.ones(3)
            opt.step()
            opt.zero_grad()


# ---------------------------------------------------------------------------- CUDA
GPU_CASES = (
    STRUCT_CASES
    + LARGE_CASES
    + [
        ("Adam", {"betas": (0.3, 0.8), "maximize": True}),
        ("RMSprop", {"alpha": 0.3, "centered": True}),
        ("SGD", {"momentum": 0.9, "weight_decay": 0.1, "nesterov": True, "maximize": True}),
    ]
)


# `step`, and ASGD's `eta` and `mu` (torch keeps those two on the parameter's device and
# reads them back with .item() every step; shardgrad keeps them on the host)
HOST_SCALARS = ("step", "eta", "mu")


@pytest.mark.cuda
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "ufuncs"])
@pytest.mark.parametrize(("name", "opts"), GPU_CASES, ids=[f"{n}{o}" for n, o in GPU_CASES])
def test_cuda_matches_cpu(name: str, opts: dict, fused: bool, monkeypatch) -> None:
    """GPU parameters (the fused kernels, or the same ufunc kernels as the host) follow the
    host trajectory, which the tests above tie to torch's."""
    if not sg.cuda.is_available():
        pytest.skip("needs a CUDA GPU and cupy")
    from shardgrad.optim import _arrays

    monkeypatch.setattr(_arrays, "FUSED", fused)
    cpu_ps, _ = make_params()
    gpu_ps = [sg.tensor(to_numpy(p), requires_grad=True, device="cuda") for p in cpu_ps]
    lr, _, extra = CASES[name]
    cpu_opt = getattr(so, name)(groups(cpu_ps, extra), lr=lr, **opts)
    gpu_opt = getattr(so, name)(groups(gpu_ps, extra), lr=lr, **opts)
    for step in range(10):
        set_grads(cpu_ps, step)
        for i, p in enumerate(gpu_ps):
            g = grad_for(to_numpy(p), step, i)
            p.grad = None if skip_grad(step, i) else sg.tensor(np.asarray(g), device="cuda")
        cpu_opt.step()
        gpu_opt.step()
    for a, b in zip(gpu_ps, cpu_ps, strict=True):
        assert a.device.type == "cuda"
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-9, atol=1e-12)
    assert_state_close(gpu_opt, cpu_opt, rtol=1e-9, atol=1e-12)
    for st in gpu_opt.state.values():
        for k, v in st.items():  # 0-d counters the update reads on the host stay there
            assert v.device.type == ("cpu" if k in HOST_SCALARS else "cuda"), k


@pytest.mark.cuda
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_cuda_float32_flat_buffer_matches_cpu(name: str) -> None:
    """The coordinator's case: one float32 parameter viewing a large flat buffer."""
    if not sg.cuda.is_available():
        pytest.skip("needs a CUDA GPU and cupy")
    n = 1_000_003
    rng = np.random.default_rng(5)
    init = rng.standard_normal(n).astype(np.float32)
    cpu_p = sg.tensor(init.copy(), requires_grad=True)
    gpu_p = sg.tensor(init.copy(), requires_grad=True, device="cuda")
    opts = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    cpu_opt = getattr(so, name)([cpu_p], lr=1e-3, **opts)
    gpu_opt = getattr(so, name)([gpu_p], lr=1e-3, **opts)
    for _ in range(5):
        g = rng.standard_normal(n).astype(np.float32)
        cpu_p.grad = sg.tensor(g)
        gpu_p.grad = sg.tensor(g, device="cuda")
        cpu_opt.step()
        gpu_opt.step()
    np.testing.assert_allclose(to_numpy(gpu_p), to_numpy(cpu_p), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- L-BFGS
def _lbfgs_run(lib, problem: str, **opts) -> tuple:
    """Three L-BFGS steps on a small problem: the losses, the parameters and the counters."""
    rng = np.random.default_rng(0)
    if problem == "logistic":
        w = lib.tensor(rng.standard_normal((5, 3)) * 0.1, requires_grad=True)
        b = lib.tensor(np.zeros(3), requires_grad=True)
        x, y = lib.tensor(rng.standard_normal((40, 5))), lib.tensor(rng.integers(0, 3, 40))
        params = [w, b]

        def loss_fn():
            return lib.nn.functional.cross_entropy(x @ w + b, y) + 0.01 * (w**2).sum()
    else:  # the Rosenbrock valley
        z = lib.tensor(np.array([-1.5, 2.0]), requires_grad=True)
        params = [z]

        def loss_fn():
            return (1 - z[0]) ** 2 + 100 * (z[1] - z[0] ** 2) ** 2

    opt = lib.optim.LBFGS(params, **opts)

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(3)]
    state = opt.state[params[0]]
    return losses, [to_numpy(p) for p in params], state["func_evals"], state["n_iter"]


@pytest.mark.parametrize(
    "problem, opts",
    [
        ("logistic", {"lr": 0.8}),
        ("logistic", {"lr": 0.8, "history_size": 3, "max_iter": 7}),
        ("logistic", {"line_search_fn": "strong_wolfe"}),
        ("logistic", {"line_search_fn": "strong_wolfe", "history_size": 2, "max_eval": 9}),
        ("rosenbrock", {"line_search_fn": "strong_wolfe", "max_iter": 12}),
    ],
    ids=["fixed step", "short history", "strong wolfe", "wolfe short history", "rosenbrock"],
)
def test_lbfgs_follows_torch(problem: str, opts: dict) -> None:
    ours, theirs = _lbfgs_run(sg, problem, **opts), _lbfgs_run(torch, problem, **opts)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-9)
    for a, b in zip(ours[1], theirs[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    assert ours[2:] == theirs[2:]  # the same number of evaluations and iterations


def test_lbfgs_refuses_groups_and_a_missing_closure() -> None:
    a, b = sg.zeros(2, requires_grad=True), sg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        so.LBFGS([{"params": [a]}, {"params": [b]}])
    with pytest.raises(RuntimeError, match="closure"):
        so.LBFGS([a]).step(None)
