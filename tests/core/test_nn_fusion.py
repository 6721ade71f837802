"""nn.utils.fusion against torch: a BatchNorm folded into the convolution (plain and
transposed) or linear layer before it gives torch's fused weights and the unfused outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg
from tests.conftest import assert_close


def _pair(make_layer, make_bn):
    torch.manual_seed(0)
    t_layer, t_bn = make_layer(torch.nn).double(), make_bn(torch.nn).double()
    with torch.no_grad():
        t_bn.running_mean.uniform_(-1, 1)
        t_bn.running_var.uniform_(0.5, 2)
        t_bn.weight.uniform_(0.5, 1.5)
        t_bn.bias.uniform_(-1, 1)
    s_layer, s_bn = make_layer(sg.nn).double(), make_bn(sg.nn).double()
    s_layer.load_state_dict({k: v.numpy() for k, v in t_layer.state_dict().items()})
    s_bn.load_state_dict({k: v.numpy() for k, v in t_bn.state_dict().items()})
    for m in (t_layer, t_bn, s_layer, s_bn):
        m.eval()
    return (s_layer, s_bn), (t_layer, t_bn)


@pytest.mark.parametrize(
    "make_layer, make_bn, shape, transpose",
    [
        (lambda nn: nn.Conv2d(2, 3, 3), lambda nn: nn.BatchNorm2d(3), (2, 2, 5, 5), False),
        (lambda nn: nn.Conv1d(2, 4, 2, bias=False), lambda nn: nn.BatchNorm1d(4), (2, 2, 6), False),
        (lambda nn: nn.ConvTranspose2d(2, 3, 2), lambda nn: nn.BatchNorm2d(3), (1, 2, 3, 3), True),
    ],
)
def test_conv_bn_fusion_matches_torch(make_layer, make_bn, shape, transpose):
    (s_layer, s_bn), (t_layer, t_bn) = _pair(make_layer, make_bn)
    fused = sg.nn.utils.fusion.fuse_conv_bn_eval(s_layer, s_bn, transpose=transpose)
    t_fused = torch.nn.utils.fusion.fuse_conv_bn_eval(t_layer, t_bn, transpose=transpose)
    assert_close(fused.weight, t_fused.weight.detach())
    assert_close(fused.bias, t_fused.bias.detach())
    x = np.random.default_rng(1).standard_normal(shape)
    assert_close(fused(sg.tensor(x)), s_bn(s_layer(sg.tensor(x))).detach(), rtol=1e-12)
    assert s_layer.weight is not fused.weight  # the original layer is left as it was


def test_linear_bn_fusion_matches_torch_and_training_mode_is_refused():
    (s_layer, s_bn), (t_layer, t_bn) = _pair(
        lambda nn: nn.Linear(4, 3), lambda nn: nn.BatchNorm1d(3)
    )
    fused = sg.nn.utils.fuse_linear_bn_eval(s_layer, s_bn)
    t_fused = torch.nn.utils.fusion.fuse_linear_bn_eval(t_layer, t_bn)
    assert_close(fused.weight, t_fused.weight.detach())
    x = np.random.default_rng(2).standard_normal((5, 4))
    assert_close(fused(sg.tensor(x)), s_bn(s_layer(sg.tensor(x))).detach(), rtol=1e-12)
    s_bn.train()
    with pytest.raises(AssertionError, match="only for eval"):
        sg.nn.utils.fuse_linear_bn_eval(s_layer, s_bn)
