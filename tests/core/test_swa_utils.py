"""Weight averaging (shardgrad.optim.swa_utils) against torch.optim.swa_utils: SWA and EMA
averages along a real training run, buffers averaged or followed, SWALR's schedule, update_bn's
statistics, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.optim.swa_utils as tswa

import shardgrad as sg
import shardgrad.optim.swa_utils as swa
from tests.conftest import assert_close

RNG = np.random.default_rng(12)


def _pair_models():
    torch.manual_seed(1)
    t = torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 2)
    ).double()
    s = sg.nn.Sequential(
        sg.nn.Linear(4, 6), sg.nn.BatchNorm1d(6), sg.nn.ReLU(), sg.nn.Linear(6, 2)
    ).double()
    s.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    return s, t


def _train_and_average(make_avg_s, make_avg_t, steps=6, start=2):
    s, t = _pair_models()
    avg_s, avg_t = make_avg_s(s), make_avg_t(t)
    opt_s = sg.optim.SGD(s.parameters(), lr=0.1, momentum=0.9)
    opt_t = torch.optim.SGD(t.parameters(), lr=0.1, momentum=0.9)
    for step in range(steps):
        x, y = RNG.standard_normal((8, 4)), RNG.standard_normal((8, 2))
        for model, opt, lib in ((s, opt_s, sg), (t, opt_t, torch)):
            opt.zero_grad()
            ((model(lib.tensor(x)) - lib.tensor(y)) ** 2).mean().backward()
            opt.step()
        if step >= start:
            avg_s.update_parameters(s)
            avg_t.update_parameters(t)
    return avg_s, avg_t


def _same_state(avg_s, avg_t):
    state_t = avg_t.state_dict()
    state_s = avg_s.state_dict()
    assert list(state_s) == list(state_t)
    for key, value in state_t.items():
        assert_close(state_s[key], value.detach())


def test_swa_matches_torch_along_a_training_run():
    avg_s, avg_t = _train_and_average(swa.AveragedModel, tswa.AveragedModel)
    _same_state(avg_s, avg_t)
    assert int(avg_s.n_averaged) == 4
    x = RNG.standard_normal((3, 4))
    avg_s.eval(), avg_t.eval()
    assert_close(avg_s(sg.tensor(x)), avg_t(torch.tensor(x)).detach())


def test_ema_of_parameters_and_buffers_matches_torch():
    avg_s, avg_t = _train_and_average(
        lambda m: swa.AveragedModel(
            m, multi_avg_fn=swa.get_ema_multi_avg_fn(0.9), use_buffers=True
        ),
        lambda m: tswa.AveragedModel(
            m, multi_avg_fn=tswa.get_ema_multi_avg_fn(0.9), use_buffers=True
        ),
    )
    _same_state(avg_s, avg_t)


@pytest.mark.parametrize("kind", ["ema", "swa"])
def test_single_tensor_avg_fns_match_torch(kind):
    fn_s = swa.get_ema_avg_fn(0.8) if kind == "ema" else swa.get_swa_avg_fn()
    fn_t = tswa.get_ema_avg_fn(0.8) if kind == "ema" else tswa.get_swa_avg_fn()
    avg_s, avg_t = _train_and_average(
        lambda m: swa.AveragedModel(m, avg_fn=fn_s), lambda m: tswa.AveragedModel(m, avg_fn=fn_t)
    )
    _same_state(avg_s, avg_t)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("anneal_epochs", [0, 3])
def test_swalr_schedule_matches_torch(strategy, anneal_epochs):
    w_s = [sg.nn.Parameter(sg.zeros(2)), sg.nn.Parameter(sg.zeros(2))]
    w_t = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    opt_s = sg.optim.SGD([{"params": [w_s[0]]}, {"params": [w_s[1]], "lr": 0.5}], lr=0.1)
    opt_t = torch.optim.SGD([{"params": [w_t[0]]}, {"params": [w_t[1]], "lr": 0.5}], lr=0.1)
    sched_s = swa.SWALR(
        opt_s, swa_lr=[0.05, 0.01], anneal_epochs=anneal_epochs, anneal_strategy=strategy
    )
    sched_t = tswa.SWALR(
        opt_t, swa_lr=[0.05, 0.01], anneal_epochs=anneal_epochs, anneal_strategy=strategy
    )
    for _ in range(6):
        opt_s.step(), opt_t.step()
        sched_s.step(), sched_t.step()
        np.testing.assert_allclose(sched_s.get_last_lr(), sched_t.get_last_lr(), rtol=1e-12)
    restored = swa.SWALR(opt_s, swa_lr=0.2)
    restored.load_state_dict(sched_s.state_dict())
    assert restored.anneal_func == sched_s.anneal_func
    assert restored.get_last_lr() == sched_s.get_last_lr()


def test_update_bn_matches_torch():
    s, t = _pair_models()
    batches = [RNG.standard_normal((5, 4)) for _ in range(3)]
    swa.update_bn([(sg.tensor(b), 0) for b in batches], s)
    tswa.update_bn([(torch.tensor(b), 0) for b in batches], t)
    for key in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        assert_close(s.state_dict()[key], t.state_dict()[key])
    assert s[1].momentum == 0.1 and s.training


def test_errors_match_torch():
    m = sg.nn.Linear(2, 2)
    with pytest.raises(AssertionError, match="Only one of"):
        swa.AveragedModel(m, avg_fn=swa.get_swa_avg_fn(), multi_avg_fn=swa.get_swa_multi_avg_fn())
    with pytest.raises(ValueError, match="Invalid decay value"):
        swa.get_ema_multi_avg_fn(1.5)
    opt = sg.optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy"):
        swa.SWALR(opt, 0.01, anneal_strategy="step")
    with pytest.raises(ValueError, match="anneal_epochs"):
        swa.SWALR(opt, 0.01, anneal_epochs=-1)
