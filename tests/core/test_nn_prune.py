"""nn.utils.prune against torch.nn.utils.prune: the masks each method chooses (magnitude
methods exactly; random ones by count), iterative pruning among the survivors, global
pruning across layers, the reparametrised module (outputs, gradients that skip pruned
entries, state_dict keys), remove, and the argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune

import shardgrad as sg
import shardgrad.nn.utils.prune as sprune
from tests.conftest import assert_close


def _linears(seed=0):
    torch.manual_seed(seed)
    t = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).double()
    s = sg.nn.Sequential(sg.nn.Linear(6, 5), sg.nn.ReLU(), sg.nn.Linear(5, 3)).double()
    s.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    return s, t


def _same_module(s, t):
    for key, value in t.state_dict().items():
        assert_close(s.state_dict()[key], value)
    assert list(s.state_dict()) == list(t.state_dict())
    x = np.random.default_rng(1).standard_normal((4, 6))
    sx, tx = sg.tensor(x), torch.tensor(x)
    s_out, t_out = s(sx), t(tx)
    assert_close(s_out, t_out.detach())
    s_out.sum().backward()
    t_out.sum().backward()
    for (s_name, sp), (t_name, tp) in zip(s.named_parameters(), t.named_parameters()):
        assert s_name == t_name
        assert_close(sp.grad, tp.grad)


@pytest.mark.parametrize(
    "prune_both",
    [
        lambda p, m: p.l1_unstructured(m[0], "weight", amount=0.3),
        lambda p, m: p.l1_unstructured(m[0], "weight", amount=7),
        lambda p, m: p.ln_structured(m[0], "weight", amount=0.4, n=2, dim=0),
        lambda p, m: p.ln_structured(m[2], "weight", amount=2, n=1, dim=1),
        lambda p, m: p.l1_unstructured(m[2], "bias", amount=1),
        lambda p, m: p.identity(m[0], "weight"),
    ],
)
def test_magnitude_pruning_matches_torch(prune_both):
    s, t = _linears()
    prune_both(sprune, s)
    prune_both(tprune, t)
    _same_module(s, t)
    assert sprune.is_pruned(s) and tprune.is_pruned(t)


def test_pruning_twice_chooses_among_the_survivors():
    s, t = _linears(2)
    for p, m in ((sprune, s), (tprune, t)):
        p.l1_unstructured(m[0], "weight", amount=0.3)
        p.ln_structured(m[0], "weight", amount=1, n=2, dim=0)
        p.l1_unstructured(m[0], "weight", amount=0.2)
    _same_module(s, t)


def test_global_pruning_across_layers_matches_torch():
    s, t = _linears(3)
    sprune.global_unstructured(
        [(s[0], "weight"), (s[2], "weight")], pruning_method=sprune.L1Unstructured, amount=0.5
    )
    tprune.global_unstructured(
        [(t[0], "weight"), (t[2], "weight")], pruning_method=tprune.L1Unstructured, amount=0.5
    )
    _same_module(s, t)
    pruned = int((s[0].weight_mask == 0).sum()) + int((s[2].weight_mask == 0).sum())
    assert pruned == round(0.5 * (30 + 15))


def test_custom_mask_and_remove():
    s, t = _linears(4)
    mask = (np.arange(30).reshape(5, 6) % 3 != 0).astype(np.float64)
    sprune.custom_from_mask(s[0], "weight", sg.tensor(mask))
    tprune.custom_from_mask(t[0], "weight", torch.tensor(mask))
    _same_module(s, t)
    sprune.remove(s[0], "weight")
    tprune.remove(t[0], "weight")
    _same_module(s, t)
    assert "weight" in dict(s[0].named_parameters()) and not sprune.is_pruned(s)
    assert (s[0].weight.detach().numpy()[mask == 0] == 0).all()


def test_random_methods_prune_the_right_counts_and_train():
    s, _ = _linears(5)
    sprune.random_unstructured(s[0], "weight", amount=0.4)
    sprune.random_structured(s[2], "weight", amount=2, dim=0)
    assert int((s[0].weight_mask == 0).sum()) == 12
    assert (s[2].weight_mask.numpy().sum(1) == 0).sum() == 2
    opt = sg.optim.SGD(s.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        s(sg.randn(4, 6, dtype=sg.float64)).pow(2).sum().backward()
        opt.step()
    s(sg.randn(1, 6, dtype=sg.float64))  # the hook recomputes the masked weight
    assert (s[0].weight.detach().numpy()[s[0].weight_mask.numpy() == 0] == 0).all()


def test_argument_checks_match_torch():
    for p, lib in ((sprune, sg), (tprune, torch)):
        m = lib.nn.Linear(3, 2)
        with pytest.raises(ValueError, match="amount"):
            p.l1_unstructured(m, "weight", amount=1.5)
        with pytest.raises(TypeError, match="Invalid type for amount"):
            p.l1_unstructured(m, "weight", amount="half")
        with pytest.raises(ValueError, match="should be smaller than the number of parameters"):
            p.l1_unstructured(m, "weight", amount=10)
        with pytest.raises(ValueError, match="has to be pruned before"):
            p.remove(m, "bias")
