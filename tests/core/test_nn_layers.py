"""Every layer against torch in float64: outputs, input gradients, parameter gradients and
buffers, with torch's weights copied in through load_state_dict."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch
from _nn_helpers import close, compare_module

import shardgrad as sg

# (id, constructor taking the nn namespace, input shape)
LAYERS = [
    ("linear", lambda nn: nn.Linear(5, 3), (4, 5)),
    ("linear_nobias_3d", lambda nn: nn.Linear(5, 3, bias=False), (2, 4, 5)),
    ("conv_plain", lambda nn: nn.Conv2d(3, 4, 3), (2, 3, 7, 6)),
    ("conv_stride_pad", lambda nn: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 7, 6)),
    (
        "conv_rect_all",
        lambda nn: nn.Conv2d(
            4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2
        ),
        (2, 4, 9, 8),
    ),
    ("conv_same_even", lambda nn: nn.Conv2d(3, 5, 4, padding="same"), (2, 3, 7, 6)),
    ("conv_same_dilated", lambda nn: nn.Conv2d(3, 5, 3, padding="same", dilation=2), (2, 3, 7, 6)),
    ("conv_valid", lambda nn: nn.Conv2d(3, 5, 2, padding="valid", bias=False), (2, 3, 5, 5)),
    ("conv_transpose", lambda nn: nn.ConvTranspose2d(3, 4, 3), (2, 3, 5, 4)),
    (
        "conv_transpose_strided",
        lambda nn: nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1, output_padding=1),
        (2, 4, 5, 6),
    ),
    (
        "conv_transpose_groups_dilation",
        lambda nn: nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, dilation=2, bias=False),
        (2, 4, 4, 5),
    ),
    ("conv_depthwise", lambda nn: nn.Conv2d(4, 8, 3, padding=1, groups=4), (2, 4, 6, 6)),
    ("conv_1x1", lambda nn: nn.Conv2d(4, 3, 1), (2, 4, 5, 5)),
    ("conv_1x1_stride", lambda nn: nn.Conv2d(4, 3, 1, stride=2), (2, 4, 5, 5)),
    ("conv_big_stride", lambda nn: nn.Conv2d(2, 3, 2, stride=3), (2, 2, 8, 7)),
    (
        "conv_reflect",
        lambda nn: nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect"),
        (2, 3, 6, 6),
    ),
    (
        "conv_replicate",
        lambda nn: nn.Conv2d(3, 4, 3, padding=2, padding_mode="replicate"),
        (2, 3, 6, 6),
    ),
    (
        "conv_circular",
        lambda nn: nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular"),
        (2, 3, 6, 6),
    ),
    ("conv_unbatched", lambda nn: nn.Conv2d(3, 4, 3), (3, 6, 6)),
    ("conv1d", lambda nn: nn.Conv1d(3, 4, 3, stride=2, padding=1), (2, 3, 9)),
    ("conv1d_same_groups", lambda nn: nn.Conv1d(4, 4, 4, padding="same", groups=2), (2, 4, 9)),
    ("maxpool_2", lambda nn: nn.MaxPool2d(2), (2, 3, 8, 6)),
    ("maxpool_odd_crop", lambda nn: nn.MaxPool2d(2), (2, 3, 7, 5)),
    ("maxpool_overlap_pad", lambda nn: nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 8)),
    ("maxpool_ceil", lambda nn: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 8, 7)),
    ("maxpool_dilation", lambda nn: nn.MaxPool2d(2, stride=1, dilation=2), (2, 3, 6, 6)),
    ("maxpool_rect", lambda nn: nn.MaxPool2d((2, 3), stride=(1, 2)), (2, 3, 6, 7)),
    ("avgpool_2", lambda nn: nn.AvgPool2d(2), (2, 3, 8, 6)),
    ("avgpool_pad", lambda nn: nn.AvgPool2d(3, stride=2, padding=1), (2, 3, 7, 8)),
    (
        "avgpool_pad_exclude",
        lambda nn: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        (2, 3, 7, 8),
    ),
    ("avgpool_ceil", lambda nn: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 8, 7)),
    (
        "avgpool_ceil_exclude",
        lambda nn: nn.AvgPool2d(2, stride=2, ceil_mode=True, count_include_pad=False),
        (2, 3, 7, 7),
    ),
    (
        "avgpool_divisor",
        lambda nn: nn.AvgPool2d(3, stride=1, padding=1, divisor_override=2),
        (2, 3, 5, 5),
    ),
    ("adaptive_1", lambda nn: nn.AdaptiveAvgPool2d(1), (2, 3, 7, 5)),
    ("adaptive_uneven", lambda nn: nn.AdaptiveAvgPool2d((4, 3)), (2, 3, 7, 5)),
    ("adaptive_even", lambda nn: nn.AdaptiveAvgPool2d((2, 2)), (2, 3, 8, 6)),
    ("adaptive_none", lambda nn: nn.AdaptiveAvgPool2d((None, 2)), (2, 3, 5, 7)),
    ("relu", lambda nn: nn.ReLU(), (3, 7)),
    ("leaky_relu", lambda nn: nn.LeakyReLU(0.2), (3, 7)),
    ("gelu", lambda nn: nn.GELU(), (3, 40)),
    ("gelu_tanh", lambda nn: nn.GELU(approximate="tanh"), (3, 40)),
    ("silu", lambda nn: nn.SiLU(), (3, 7)),
    ("mish", lambda nn: nn.Mish(), (3, 7)),
    ("elu", lambda nn: nn.ELU(alpha=0.7), (3, 7)),
    ("softplus", lambda nn: nn.Softplus(beta=2.0, threshold=1.0), (3, 7)),
    ("hardtanh", lambda nn: nn.Hardtanh(-0.5, 0.7), (3, 7)),
    ("relu6", lambda nn: nn.ReLU6(), (3, 7)),
    ("tanh", lambda nn: nn.Tanh(), (3, 7)),
    ("sigmoid", lambda nn: nn.Sigmoid(), (3, 7)),
    ("logsigmoid", lambda nn: nn.LogSigmoid(), (3, 7)),
    ("selu", lambda nn: nn.SELU(), (3, 7)),
    ("celu", lambda nn: nn.CELU(alpha=0.6), (3, 7)),
    ("softsign", lambda nn: nn.Softsign(), (3, 7)),
    ("tanhshrink", lambda nn: nn.Tanhshrink(), (3, 7)),
    ("hardsigmoid", lambda nn: nn.Hardsigmoid(), (3, 7)),
    ("hardswish", lambda nn: nn.Hardswish(), (3, 7)),
    ("prelu_shared", lambda nn: nn.PReLU(), (3, 4, 5)),
    ("prelu_channels", lambda nn: nn.PReLU(4, init=0.1), (3, 4, 5)),
    ("threshold", lambda nn: nn.Threshold(0.2, -3.0), (3, 7)),
    ("glu", lambda nn: nn.GLU(dim=1), (3, 8, 2)),
    ("hardshrink", lambda nn: nn.Hardshrink(0.3), (3, 7)),
    ("softshrink", lambda nn: nn.Softshrink(0.4), (3, 7)),
    ("softmax", lambda nn: nn.Softmax(dim=1), (3, 5, 4)),
    ("softmax_neg", lambda nn: nn.Softmax(dim=-1), (3, 5, 4)),
    ("softmin", lambda nn: nn.Softmin(dim=0), (3, 5)),
    ("log_softmax", lambda nn: nn.LogSoftmax(dim=1), (3, 5, 4)),
    ("layer_norm", lambda nn: nn.LayerNorm(6), (3, 4, 6)),
    ("layer_norm_2d", lambda nn: nn.LayerNorm((4, 6), eps=1e-3), (3, 4, 6)),
    ("layer_norm_noaffine", lambda nn: nn.LayerNorm(6, elementwise_affine=False), (3, 6)),
    ("layer_norm_nobias", lambda nn: nn.LayerNorm(6, bias=False), (3, 6)),
    ("group_norm", lambda nn: nn.GroupNorm(2, 4), (3, 4, 5, 2)),
    ("instance_norm_2d", lambda nn: nn.InstanceNorm2d(3), (4, 3, 5, 4)),
    ("instance_norm_1d_unbatched", lambda nn: nn.InstanceNorm1d(3), (3, 6)),
    (
        "instance_norm_affine_tracked",
        lambda nn: nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=0.3),
        (4, 3, 2, 5),
    ),
    ("batch_norm_1d", lambda nn: nn.BatchNorm1d(4), (6, 4)),
    ("batch_norm_1d_seq", lambda nn: nn.BatchNorm1d(4, momentum=0.3), (3, 4, 5)),
    ("batch_norm_2d", lambda nn: nn.BatchNorm2d(3), (4, 3, 5, 4)),
    ("batch_norm_cumulative", lambda nn: nn.BatchNorm2d(3, momentum=None), (4, 3, 2, 2)),
    ("batch_norm_no_track", lambda nn: nn.BatchNorm2d(3, track_running_stats=False), (4, 3, 2, 2)),
    ("batch_norm_no_affine", lambda nn: nn.BatchNorm2d(3, affine=False), (4, 3, 2, 2)),
    ("batch_norm_no_bias", lambda nn: nn.BatchNorm1d(3, bias=False), (5, 3)),
    ("zero_pad", lambda nn: nn.ZeroPad2d((1, 2, 0, 1)), (2, 3, 4, 5)),
    ("constant_pad_1d", lambda nn: nn.ConstantPad1d(2, 1.5), (2, 3, 4)),
    ("reflection_pad", lambda nn: nn.ReflectionPad2d((1, 2, 2, 1)), (2, 3, 4, 5)),
    ("replication_pad_1d", lambda nn: nn.ReplicationPad1d((3, 1)), (2, 3, 4)),
    ("upsample_nearest", lambda nn: nn.Upsample(scale_factor=2), (2, 3, 4, 5)),
    ("upsample_nearest_size", lambda nn: nn.Upsample(size=(7, 3)), (2, 3, 4, 5)),
    (
        "upsample_bilinear",
        lambda nn: nn.Upsample(scale_factor=(2.5, 1.7), mode="bilinear"),
        (2, 3, 4, 5),
    ),
    (
        "upsample_bilinear_corners",
        lambda nn: nn.Upsample(size=(7, 9), mode="bilinear", align_corners=True),
        (2, 3, 4, 5),
    ),
    ("upsample_linear_down", lambda nn: nn.Upsample(scale_factor=0.5, mode="linear"), (2, 3, 7)),
    ("flatten", lambda nn: nn.Flatten(), (2, 3, 4)),
    ("flatten_range", lambda nn: nn.Flatten(0, 1), (2, 3, 4)),
    ("unflatten", lambda nn: nn.Unflatten(1, (2, 3)), (4, 6)),
    ("identity", lambda nn: nn.Identity(3, foo=1), (4, 6)),
    ("max_pool1d", lambda nn: nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 9)),
    ("max_pool1d_unbatched", lambda nn: nn.MaxPool1d(2, dilation=2), (3, 9)),
    ("avg_pool1d", lambda nn: nn.AvgPool1d(3, 2, 1, count_include_pad=False), (2, 3, 8)),
    ("adaptive_avg_pool1d", lambda nn: nn.AdaptiveAvgPool1d(4), (2, 3, 7)),
    ("adaptive_max_pool1d", lambda nn: nn.AdaptiveMaxPool1d(3), (2, 3, 8)),
    ("adaptive_max_pool2d", lambda nn: nn.AdaptiveMaxPool2d((3, 4)), (2, 3, 7, 9)),
    ("adaptive_max_pool2d_none", lambda nn: nn.AdaptiveMaxPool2d((None, 2)), (3, 5, 6)),
    ("adaptive_max_pool2d_up", lambda nn: nn.AdaptiveMaxPool2d(5), (1, 2, 3, 4)),
    ("lp_pool1d", lambda nn: nn.LPPool1d(2, 3, stride=2), (2, 3, 9)),
    ("lp_pool2d", lambda nn: nn.LPPool2d(3, (2, 3)), (2, 3, 6, 7)),
    ("pixel_shuffle", lambda nn: nn.PixelShuffle(2), (2, 8, 3, 4)),
    ("pixel_unshuffle", lambda nn: nn.PixelUnshuffle(3), (2, 2, 6, 9)),
    ("channel_shuffle", lambda nn: nn.ChannelShuffle(3), (2, 6, 4, 5)),
    (
        "unfold",
        lambda nn: nn.Unfold((2, 3), dilation=(1, 2), padding=1, stride=(2, 1)),
        (2, 3, 7, 8),
    ),
    ("unfold_unbatched", lambda nn: nn.Unfold(2), (3, 4, 5)),
    ("fold", lambda nn: nn.Fold((5, 6), (2, 3), padding=1, stride=(2, 1)), (2, 12, 18)),
    ("fold_unbatched", lambda nn: nn.Fold((3, 3), 2), (8, 4)),
    ("softmax2d", lambda nn: nn.Softmax2d(), (2, 3, 4, 5)),
    (
        "conv_transpose1d",
        lambda nn: nn.ConvTranspose1d(3, 4, 3, stride=2, output_padding=1),
        (2, 3, 6),
    ),
    (
        "conv_transpose1d_groups",
        lambda nn: nn.ConvTranspose1d(4, 6, 2, groups=2, dilation=2),
        (4, 5),
    ),
    ("rrelu_eval", lambda nn: nn.RReLU(0.1, 0.3).eval(), (2, 3, 4)),
    (
        "local_response_norm",
        lambda nn: nn.LocalResponseNorm(3, alpha=0.1, beta=0.6, k=2.0),
        (2, 5, 4, 3),
    ),
    ("local_response_norm_3d", lambda nn: nn.LocalResponseNorm(2), (2, 5, 7)),
    ("circular_pad1d", lambda nn: nn.CircularPad1d((2, 1)), (2, 3, 5)),
    ("circular_pad2d", lambda nn: nn.CircularPad2d((1, 2, 0, 1)), (2, 3, 4, 5)),
    ("upsampling_nearest2d", lambda nn: nn.UpsamplingNearest2d(scale_factor=2), (2, 3, 4, 5)),
    ("upsampling_bilinear2d", lambda nn: nn.UpsamplingBilinear2d(size=(6, 7)), (2, 3, 4, 5)),
    ("conv3d", lambda nn: nn.Conv3d(2, 4, 3, stride=(1, 2, 1), padding=1), (2, 2, 5, 6, 4)),
    (
        "conv3d_groups_dilated",
        lambda nn: nn.Conv3d(4, 6, (2, 3, 2), dilation=(2, 1, 1), groups=2, bias=False),
        (2, 4, 6, 5, 4),
    ),
    ("conv3d_same_unbatched", lambda nn: nn.Conv3d(2, 3, (3, 2, 3), padding="same"), (2, 4, 5, 4)),
    (
        "conv3d_circular",
        lambda nn: nn.Conv3d(2, 3, 3, padding=1, padding_mode="circular"),
        (1, 2, 4, 4, 4),
    ),
    ("max_pool3d", lambda nn: nn.MaxPool3d(2), (2, 3, 4, 6, 4)),
    (
        "max_pool3d_padded",
        lambda nn: nn.MaxPool3d((3, 2, 3), stride=2, padding=1, ceil_mode=True),
        (2, 2, 5, 6, 7),
    ),
    ("avg_pool3d", lambda nn: nn.AvgPool3d(3, stride=2, padding=1), (2, 2, 5, 6, 7)),
    (
        "avg_pool3d_exclude_pad",
        lambda nn: nn.AvgPool3d(2, padding=1, count_include_pad=False),
        (1, 2, 4, 5, 3),
    ),
    ("avg_pool3d_divisor", lambda nn: nn.AvgPool3d(2, divisor_override=3), (1, 2, 4, 4, 4)),
    ("adaptive_avg_pool3d", lambda nn: nn.AdaptiveAvgPool3d((2, None, 3)), (2, 2, 5, 6, 7)),
    ("adaptive_max_pool3d", lambda nn: nn.AdaptiveMaxPool3d(2), (2, 2, 5, 3, 4)),
    (
        "conv_transpose3d",
        lambda nn: nn.ConvTranspose3d(
            4, 2, (2, 3, 2), stride=(2, 1, 2), padding=1, output_padding=(1, 0, 1)
        ),
        (2, 4, 3, 4, 3),
    ),
    (
        "conv_transpose3d_groups_dilation",
        lambda nn: nn.ConvTranspose3d(4, 6, 2, groups=2, dilation=(2, 1, 1), bias=False),
        (4, 3, 3, 2),
    ),
    ("lp_pool3d", lambda nn: nn.LPPool3d(2, (2, 1, 2)), (2, 3, 4, 3, 4)),
    ("batch_norm3d", lambda nn: nn.BatchNorm3d(3), (2, 3, 4, 3, 2)),
    ("instance_norm3d", lambda nn: nn.InstanceNorm3d(3, affine=True), (2, 3, 4, 3, 2)),
    ("reflection_pad3d", lambda nn: nn.ReflectionPad3d((1, 2, 0, 1, 1, 0)), (1, 2, 3, 4, 5)),
    ("replication_pad3d", lambda nn: nn.ReplicationPad3d(1), (1, 2, 3, 4, 5)),
    ("constant_pad3d", lambda nn: nn.ConstantPad3d(1, 2.5), (2, 3, 4, 5)),
    ("circular_pad3d", lambda nn: nn.CircularPad3d(1), (1, 2, 3, 4, 5)),
    ("upsample_bicubic", lambda nn: nn.Upsample(size=(9, 4), mode="bicubic"), (2, 3, 5, 6)),
    (
        "upsample_bicubic_corners",
        lambda nn: nn.Upsample(scale_factor=1.7, mode="bicubic", align_corners=True),
        (2, 3, 5, 6),
    ),
    (
        "upsample_trilinear",
        lambda nn: nn.Upsample(size=(5, 3, 7), mode="trilinear"),
        (1, 2, 3, 4, 5),
    ),
    (
        "upsample_nearest_exact",
        lambda nn: nn.Upsample(scale_factor=1.6, mode="nearest-exact"),
        (2, 3, 7, 5),
    ),
    ("upsample_area", lambda nn: nn.Upsample(size=(3, 4), mode="area"), (2, 3, 7, 9)),
]


# BatchNorm's `bias=False` (an affine scale without a shift) is newer than some torch
# releases the suite runs against (2.11 lacks it); without it torch cannot be the oracle
_TORCH_BN_HAS_BIAS = "bias" in inspect.signature(torch.nn.BatchNorm1d.__init__).parameters
_MARKS = {
    "batch_norm_no_bias": pytest.mark.skipif(
        not _TORCH_BN_HAS_BIAS,
        reason=f"torch {torch.__version__} BatchNorm has no `bias` argument to compare with",
    )
}


def _params(ids=lambda i: True) -> list:
    return [pytest.param(m, s, id=i, marks=_MARKS.get(i, ())) for i, m, s in LAYERS if ids(i)]


def _input(shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    # keep values away from kinks (relu at 0, hardtanh bounds) so finite kinks don't differ
    return x + 0.05 * np.sign(x)


@pytest.mark.parametrize("make,shape", _params())
def test_layer_matches_torch(make, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare_module(make(sg.nn), make(torch.nn), _input(shape))


@pytest.mark.parametrize(
    "make,shape", _params(lambda i: "batch_norm" in i or i == "instance_norm_affine_tracked")
)
def test_batch_norm_running_stats_and_eval(make, shape):
    """Three training steps move the running statistics exactly as torch's; eval then
    normalises with them (outputs and gradients match). Instance norm tracks them too."""
    s, t = make(sg.nn).double(), make(torch.nn).double()
    for step in range(3):
        compare_module(s, t, _input(shape, seed=step))
    s.eval()
    t.eval()
    compare_module(s, t, _input(shape, seed=9))
    if t.num_batches_tracked is not None:
        counted = 3 if "BatchNorm" in type(s).__name__ else 0  # instance norm does not count
        assert int(s.num_batches_tracked.item()) == int(t.num_batches_tracked.item()) == counted


def test_maxpool_ties_go_to_first_maximum():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1:3, 1:3] = 1.0
    for pool in (lambda nn: nn.MaxPool2d(2), lambda nn: nn.MaxPool2d(3, stride=1, padding=1)):
        compare_module(pool(sg.nn), pool(torch.nn), x)


@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, dilation=1),
    ],
)
def test_maxpool_return_indices(kw):
    x = _input((2, 3, 7, 8))
    out_s, idx_s = sg.nn.functional.max_pool2d(sg.tensor(x), return_indices=True, **kw)
    out_t, idx_t = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    close(out_s, out_t)
    np.testing.assert_array_equal(idx_s.numpy(), idx_t.numpy())


def test_dropout_train_and_eval():
    sg.manual_seed(0)
    layer = sg.nn.Dropout(p=0.3)
    x = sg.ones(200, 500, requires_grad=True)
    y = layer(x)
    kept = y.detach().numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.7, rtol=1e-6)
    layer.eval()
    assert layer(x) is x
    assert repr(layer) == repr(torch.nn.Dropout(p=0.3))


def test_dropout_p_one_and_zero_and_errors():
    x = sg.randn(10, 10)
    assert float(sg.nn.functional.dropout(x, 1.0).abs().sum()) == 0.0
    assert sg.nn.functional.dropout(x, 0.0) is x
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1"):
        sg.nn.Dropout(1.5)


def test_dropout2d_zeroes_whole_channels():
    sg.manual_seed(1)
    y = sg.nn.Dropout2d(0.5)(sg.ones(8, 16, 3, 3)).numpy()
    per_channel = y.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))


@pytest.mark.parametrize(
    "kw",
    [{}, {"padding_idx": 1}, {"padding_idx": -1, "scale_grad_by_freq": True}, {"max_norm": 1.0}],
)
def test_embedding_matches_torch(kw):
    idx = np.array([[1, 2, 1, 0], [4, 1, 3, 3]])
    s, t = sg.nn.Embedding(5, 3, **kw), torch.nn.Embedding(5, 3, **kw)
    compare_module(s, t, idx, grad_input=False)
    close(s.weight, t.weight)  # max_norm renormalises rows in place, like torch


def test_embedding_padding_row_starts_at_zero_and_from_pretrained():
    e = sg.nn.Embedding(4, 3, padding_idx=2)
    assert np.all(e.weight.detach().numpy()[2] == 0)
    w = sg.randn(4, 3)
    frozen = sg.nn.Embedding.from_pretrained(w)
    assert not frozen.weight.requires_grad
    close(frozen(sg.tensor([3, 0])), w.numpy()[[3, 0]])
    with pytest.raises(IndexError, match="index out of range"):
        e(sg.tensor([4]))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_modes(mode):
    x = _input((2, 3, 5, 6))
    pads = (1, 2, 2, 1)
    xs, xt = sg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    kw = {"value": 0.5} if mode == "constant" else {}
    ys = sg.nn.functional.pad(xs, pads, mode=mode, **kw)
    yt = torch.nn.functional.pad(xt, pads, mode=mode, **kw)
    close(ys, yt)
    g = np.random.default_rng(1).standard_normal(tuple(yt.shape))
    ys.backward(sg.tensor(g))
    yt.backward(torch.tensor(g))
    close(xs.grad, xt.grad)


def test_constant_pad_negative_crops():
    x = _input((3, 6))
    xs, xt = sg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ys, yt = sg.nn.functional.pad(xs, (-1, 2, 1, -2)), torch.nn.functional.pad(xt, (-1, 2, 1, -2))
    close(ys, yt)
    ys.sum().backward()
    yt.sum().backward()
    close(xs.grad, xt.grad)


def test_functional_softmax_dims_and_dtype():
    x = _input((2, 3, 4))
    for dim in (0, 1, 2, -1):
        close(sg.nn.functional.softmax(sg.tensor(x), dim), torch.softmax(torch.tensor(x), dim))
        close(
            sg.nn.functional.log_softmax(sg.tensor(x), dim=dim),
            torch.log_softmax(torch.tensor(x), dim),
        )
    out = sg.nn.functional.softmax(sg.tensor(x.astype(np.float32)), 1, dtype=sg.float64)
    assert out.dtype == sg.float64
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        close(sg.nn.functional.softmax(sg.tensor(x)), torch.softmax(torch.tensor(x), 0))


@pytest.mark.parametrize("p, dim", [(2.0, 1), (1.0, 0), (3.0, -1), (float("inf"), 1)])
def test_normalize_matches_torch_zero_rows_included(p, dim):
    x = _input((3, 4))
    x[1] = 0.0  # a zero row: the clamped norm keeps it zero, its gradient finite
    g = _input((3, 4))
    results = []
    for lib in (sg, torch):
        t = lib.tensor(x, requires_grad=True)
        y = lib.nn.functional.normalize(t, p=p, dim=dim, eps=1e-6)
        (y * lib.tensor(g)).sum().backward()
        results.append((y, t.grad))
    close(results[0][0], results[1][0])
    close(results[0][1], results[1][1])


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("selu", {}),
        ("celu", {"alpha": 2.0}),
        ("hardsigmoid", {}),
        ("hardswish", {}),
        ("threshold", {"threshold": 1.5, "value": 0.5}),
        ("hardshrink", {"lambd": 2.0}),
        ("softshrink", {"lambd": 2.0}),
    ],
)
def test_activations_over_a_wide_range_match_torch(name, kwargs):
    """Inputs from -200 to 200 (away from the kinks): the flat parts, the linear parts and
    exp's overflow in the branch not taken."""
    x = np.linspace(-200.0, 200.0, 801) + 0.013
    results = []
    for lib in (sg, torch):
        t = lib.tensor(x, requires_grad=True)
        out = getattr(lib.nn.functional, name)(t, **kwargs)
        (out * lib.tensor(np.cos(x))).sum().backward()
        results.append((out, t.grad))
    close(results[0][0], results[1][0])
    close(results[0][1], results[1][1])


def test_activation_errors_match_torch():
    F = sg.nn.functional
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        F.glu(sg.randn(3, 5), dim=1)
    with pytest.raises(RuntimeError, match="Mismatch of parameter numbers"):
        F.prelu(sg.randn(2, 3), sg.ones(4))
    with pytest.raises(RuntimeError, match="lambda must be greater or equal to 0"):
        F.softshrink(sg.randn(3), -1.0)


def test_conv_transpose_output_size_and_errors():
    x = _input((2, 4, 5, 6))
    theirs = torch.nn.ConvTranspose2d(4, 2, 4, stride=3, padding=2).double()
    mine = sg.nn.ConvTranspose2d(4, 2, 4, stride=3, padding=2, dtype=sg.float64)
    mine.load_state_dict({k: sg.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    out = mine(sg.tensor(x), output_size=(14, 17))
    close(out, theirs(torch.tensor(x), output_size=(14, 17)))
    assert tuple(out.shape) == (2, 2, 14, 17)
    with pytest.raises(ValueError, match="valid sizes range from 12 to 14"):
        sg.nn.ConvTranspose2d(4, 2, 4, stride=3, padding=2)(sg.tensor(x), output_size=(16, 17))
    with pytest.raises(RuntimeError, match="output padding must be smaller"):
        sg.nn.functional.conv_transpose2d(sg.tensor(x), sg.randn(4, 2, 3, 3), output_padding=1)
    with pytest.raises(ValueError, match='Only "zeros" padding mode'):
        sg.nn.ConvTranspose2d(4, 2, 3, padding_mode="reflect")


def test_interpolate_errors_match_torch():
    x = sg.randn(2, 3, 4, 5)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        sg.nn.functional.interpolate(x, size=(2, 2), scale_factor=2)
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        sg.nn.functional.interpolate(x, scale_factor=2, align_corners=True)
    for lib in (sg, torch):  # bicubic needs a 4-D input
        with pytest.raises(NotImplementedError, match="got 3D\\) for the modes: nearest"):
            lib.nn.functional.interpolate(lib.randn(2, 3, 4), scale_factor=2, mode="bicubic")


def test_conv_errors_match_torch():
    F = sg.nn.functional
    w = sg.randn(4, 3, 3, 3)
    with pytest.raises(
        RuntimeError, match="expected input\\[2, 5, 6, 6\\] to have 3 channels, but got 5"
    ):
        F.conv2d(sg.randn(2, 5, 6, 6), w)
    with pytest.raises(
        RuntimeError, match="Expected 3D \\(unbatched\\) or 4D \\(batched\\) input to conv2d"
    ):
        F.conv2d(sg.randn(6, 6), w)
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        F.conv2d(sg.randn(1, 3, 2, 2), w)
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        sg.nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(
        ValueError, match="padding='same' is not supported for strided convolutions"
    ):
        sg.nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(
        RuntimeError, match="pad should be smaller than or equal to half of kernel size"
    ):
        F.max_pool2d(sg.randn(1, 1, 4, 4), 2, padding=2)


def test_float32_conv_net_close_to_torch():
    """The default dtype path (float32 GEMMs) agrees with torch to float32 precision."""

    def net(nn):
        return nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * 4 * 4, 3),
        )

    s, t = net(sg.nn), net(torch.nn)
    s.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    ys, yt = s(sg.tensor(x)), t(torch.tensor(x))
    assert ys.dtype == sg.float32
    np.testing.assert_allclose(ys.detach().numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    ys.sum().backward()
    yt.sum().backward()
    for ps, pt in zip(s.parameters(), t.parameters()):
        assert ps.grad.dtype == sg.float32
        np.testing.assert_allclose(ps.grad.numpy(), pt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_torch_level_spellings():
    x = _input((3, 4, 5, 5))
    w = np.random.default_rng(2).standard_normal((2, 4, 3, 3))
    close(sg.tensor(x).softmax(1), torch.tensor(x).softmax(1))
    close(sg.tensor(x).log_softmax(-1), torch.tensor(x).log_softmax(-1))
    close(sg.softmax(sg.tensor(x), 2), torch.softmax(torch.tensor(x), 2))
    close(
        sg.conv2d(sg.tensor(x), sg.tensor(w), padding=1),
        torch.conv2d(torch.tensor(x), torch.tensor(w), padding=1),
    )
    close(sg.max_pool2d(sg.tensor(x), 2), torch.max_pool2d(torch.tensor(x), 2))
    close(sg.layer_norm(sg.tensor(x), (5,)), torch.layer_norm(torch.tensor(x), (5,)))
    assert sg.dropout(sg.tensor(x), 0.5, False).shape == (3, 4, 5, 5)


def test_one_hot_is_reexported():
    t = sg.tensor([0, 2, 1])
    np.testing.assert_array_equal(
        sg.nn.functional.one_hot(t, 3).numpy(),
        torch.nn.functional.one_hot(torch.tensor([0, 2, 1]), 3).numpy(),
    )


def test_bilinear_matches_torch():
    x1, x2 = _input((4, 3)), _input((4, 5), seed=1)
    results = []
    ours = sg.nn.Bilinear(3, 5, 2).double()
    theirs = torch.nn.Bilinear(3, 5, 2).double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    for lib, layer in ((sg, ours), (torch, theirs)):
        a, b = lib.tensor(x1, requires_grad=True), lib.tensor(x2, requires_grad=True)
        out = layer(a, b)
        (out * lib.tensor(np.arange(8.0).reshape(4, 2))).sum().backward()
        results.append([out, a.grad, b.grad, layer.weight.grad, layer.bias.grad])
    for mine, torchs in zip(*results):
        close(mine, torchs)
    assert float(ours.weight.abs().max()) <= 1 / np.sqrt(3)  # torch's init bound


@pytest.mark.parametrize("size", [(3, 4), (2, 5), 4])
def test_adaptive_max_pool_indices_match_torch(size):
    x = _input((2, 3, 7, 9))
    x[0, 0, :3, :3] = 1.0  # a tie: the first maximum wins
    out_s, idx_s = sg.nn.functional.adaptive_max_pool2d(sg.tensor(x), size, return_indices=True)
    out_t, idx_t = torch.nn.functional.adaptive_max_pool2d(
        torch.tensor(x), size, return_indices=True
    )
    close(out_s, out_t)
    np.testing.assert_array_equal(idx_s.numpy(), idx_t.numpy())
    o1, i1 = sg.nn.functional.max_pool1d(sg.tensor(x[0]), 3, return_indices=True)
    o2, i2 = torch.nn.functional.max_pool1d(torch.tensor(x[0]), 3, return_indices=True)
    close(o1, o2)
    np.testing.assert_array_equal(i1.numpy(), i2.numpy())


@pytest.mark.parametrize(
    "call",
    [
        lambda lib: lib.nn.functional.pixel_shuffle(lib.ones(1, 5, 2, 2), 2),
        lambda lib: lib.nn.functional.pixel_shuffle(lib.ones(5, 2), 2),
        lambda lib: lib.nn.functional.pixel_unshuffle(lib.ones(1, 1, 3, 4), 2),
        lambda lib: lib.nn.functional.channel_shuffle(lib.ones(1, 5, 2, 2), 2),
        lambda lib: lib.nn.functional.fold(lib.ones(1, 7, 4), (3, 3), 2),
        lambda lib: lib.nn.functional.fold(lib.ones(1, 8, 5), (3, 3), 2),
        lambda lib: lib.nn.functional.max_pool1d(lib.ones(1, 2, 3, 4), 2),
        lambda lib: lib.nn.functional.avg_pool1d(lib.ones(2, 3, 4, 5), 2),
        lambda lib: lib.nn.functional.adaptive_max_pool2d(lib.ones(2, 3), 2),
        lambda lib: lib.nn.functional.bilinear(lib.ones(2, 3), lib.ones(2, 4), lib.ones(5, 3, 3)),
        lambda lib: lib.nn.Softmax2d()(lib.ones(2, 3)),
    ],
    ids=[
        "pixel_shuffle channels", "pixel_shuffle dims", "pixel_unshuffle height",
        "channel_shuffle groups", "fold channels", "fold blocks", "max_pool1d dims",
        "avg_pool1d dims", "adaptive_max_pool2d dims", "bilinear sizes", "softmax2d dims",
    ],
)  # fmt: skip
def test_spatial_errors_match_torch(call):
    messages = []
    for lib in (sg, torch):
        with pytest.raises((RuntimeError, ValueError)) as info:
            call(lib)
        messages.append((type(info.value), str(info.value)))
    assert messages[0] == messages[1]


@pytest.mark.parametrize(
    "make, ids, offsets, weights",
    [
        (lambda nn: nn.EmbeddingBag(10, 3), [[1, 2, 4], [4, 3, 9]], None, None),
        (
            lambda nn: nn.EmbeddingBag(10, 3, mode="sum"),
            [1, 2, 4, 5, 4, 3, 2, 9],
            [0, 4],
            [0.5] * 8,
        ),
        (
            lambda nn: nn.EmbeddingBag(10, 3, mode="max"),
            [1, 2, 4, 5, 4, 3, 2, 9],
            [0, 1, 1, 6],
            None,
        ),
        (lambda nn: nn.EmbeddingBag(10, 3, padding_idx=2), [2, 2, 4, 5, 2], [0, 2, 3], None),
        (
            lambda nn: nn.EmbeddingBag(10, 3, mode="sum", include_last_offset=True),
            [1, 2, 4, 5, 4],
            [0, 2, 5],
            None,
        ),
    ],
    ids=["mean 2-D", "sum weighted", "max with an empty bag", "padding_idx", "last offset"],
)
def test_embedding_bag_matches_torch(make, ids, offsets, weights):
    ours, theirs = make(sg.nn).double(), make(torch.nn).double()
    ours.load_state_dict({k: sg.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    assert repr(ours) == repr(theirs)
    results = []
    for lib, layer in ((sg, ours), (torch, theirs)):
        args = [lib.tensor(ids)]
        if offsets is not None:
            args.append(lib.tensor(offsets))
        w = None
        if weights is not None:
            w = lib.tensor(weights, dtype=lib.float64, requires_grad=True)
        out = layer(*args, per_sample_weights=w)
        (
            out * lib.tensor(np.arange(out.numel(), dtype=np.float64).reshape(out.shape))
        ).sum().backward()
        results.append([out, layer.weight.grad] + ([w.grad] if w is not None else []))
    for mine, torchs in zip(*results, strict=True):
        close(mine, torchs)


def test_max_unpool_inverts_max_pool_like_torch():
    x = _input((2, 3, 6, 7))
    for lib in (sg, torch):
        t = lib.tensor(x, requires_grad=True)
        out, idx = lib.nn.functional.max_pool2d(t, 2, return_indices=True)
        restored = lib.nn.MaxUnpool2d(2)(out, idx, output_size=(6, 7))
        (
            restored * lib.tensor(np.arange(x.size, dtype=np.float64).reshape(x.shape))
        ).sum().backward()
        if lib is sg:
            ours = (_np_of(restored), _np_of(t.grad))
        else:
            theirs = (restored.detach().numpy(), t.grad.numpy())
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b)
    seq = _input((2, 3, 9))
    o1, i1 = sg.nn.functional.max_pool1d(sg.tensor(seq), 3, return_indices=True)
    o2, i2 = torch.nn.functional.max_pool1d(torch.tensor(seq), 3, return_indices=True)
    np.testing.assert_allclose(
        _np_of(sg.nn.MaxUnpool1d(3)(o1, i1)), torch.nn.MaxUnpool1d(3)(o2, i2).numpy()
    )


def _np_of(t):
    return np.asarray(t.detach().numpy())


@pytest.mark.parametrize(
    "make, train_mean_kept",
    [
        (lambda nn: nn.AlphaDropout(0.3), True),
        (lambda nn: nn.FeatureAlphaDropout(0.3), True),
        (lambda nn: nn.Dropout3d(0.4), False),
        (lambda nn: nn.RReLU(0.1, 0.3), False),
    ],
    ids=["alpha", "feature alpha", "dropout3d", "rrelu"],
)
def test_random_layers_are_identity_in_eval_and_keep_their_statistics(make, train_mean_kept):
    """Random in training (so compared by statistics, not values); in eval mode each is the
    identity (RReLU: leaky ReLU at the mean slope)."""
    sg.manual_seed(0)
    x = sg.randn(64, 8, 6, 5, 4, dtype=sg.float64)
    layer = make(sg.nn)
    out = layer(x)
    assert tuple(out.shape) == tuple(x.shape)
    if train_mean_kept:  # alpha dropout keeps a standard normal input's mean and variance
        values = _np_of(out)
        assert abs(values.mean()) < 0.05 and abs(values.std() - 1) < 0.05
    layer.eval()
    theirs = make(torch.nn).eval()(torch.tensor(_np_of(x)))
    np.testing.assert_allclose(_np_of(layer(x)), theirs.numpy(), rtol=1e-12)
    if isinstance(layer, sg.nn.Dropout3d):
        layer.train()
        dropped = _np_of(layer(x)).reshape(64, 8, -1)
        whole = (dropped == 0).all(axis=2) | (dropped != 0).all(axis=2)
        assert whole.all()  # a channel is dropped entirely or kept entirely


@pytest.mark.parametrize(
    "pool",
    [
        lambda nn: nn.MaxPool3d(2, return_indices=True),
        lambda nn: nn.MaxPool3d(
            (3, 2, 3), stride=2, padding=1, ceil_mode=True, return_indices=True
        ),
        lambda nn: nn.MaxPool3d(2, stride=1, dilation=(2, 1, 1), return_indices=True),
        lambda nn: nn.AdaptiveMaxPool3d((2, 3, 2), return_indices=True),
    ],
)
def test_max_pool3d_indices_and_unpooling_match_torch(pool):
    """The indices point into each input volume (d * H * W + h * W + w), ties to the first
    maximum; MaxUnpool3d puts the values back there (and its gradient takes them out)."""
    data = np.round(np.random.default_rng(3).standard_normal((2, 3, 5, 6, 5)), 1)  # ties
    s_in, t_in = sg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    (s_out, s_idx), (t_out, t_idx) = pool(sg.nn)(s_in), pool(torch.nn)(t_in)
    close(s_out, t_out.detach())
    assert s_idx.tolist() == t_idx.tolist()
    up = np.random.default_rng(4).standard_normal(tuple(t_out.shape))
    (s_out * sg.tensor(up)).sum().backward()
    (t_out * torch.tensor(up)).sum().backward()
    close(s_in.grad, t_in.grad)


def test_max_unpool3d_matches_torch():
    data = np.random.default_rng(6).standard_normal((2, 3, 4, 6, 4))
    s_out, s_idx = sg.nn.functional.max_pool3d(sg.tensor(data), 2, return_indices=True)
    t_out, t_idx = torch.nn.functional.max_pool3d(torch.tensor(data), 2, return_indices=True)
    s_val = sg.tensor(s_out.numpy(), requires_grad=True)
    t_val = torch.tensor(t_out.numpy(), requires_grad=True)
    s_un = sg.nn.MaxUnpool3d(2)(s_val, s_idx, output_size=data.shape[2:])
    t_un = torch.nn.MaxUnpool3d(2)(t_val, t_idx, output_size=data.shape[2:])
    close(s_un, t_un.detach())
    up = np.random.default_rng(7).standard_normal(data.shape)
    (s_un * sg.tensor(up)).sum().backward()
    (t_un * torch.tensor(up)).sum().backward()
    close(s_val.grad, t_val.grad)
    with pytest.raises(RuntimeError, match="invalid max index"):
        sg.nn.functional.max_unpool3d(s_val, s_idx + 1000, 2)


def test_conv_transpose3d_output_size_matches_torch():
    torch.manual_seed(0)
    t = torch.nn.ConvTranspose3d(2, 3, 3, stride=2).double()
    s = sg.nn.ConvTranspose3d(2, 3, 3, stride=2).double()
    s.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((1, 2, 3, 3, 3))
    for size in ((7, 8, 7), (8, 8, 8)):
        close(s(sg.tensor(x), output_size=size), t(torch.tensor(x), output_size=size).detach())
    with pytest.raises(ValueError, match="valid sizes"):
        s(sg.tensor(x), output_size=(10, 7, 7))


def test_max_pool3d_ties_go_to_the_first_maximum_like_torch():
    x = np.zeros((1, 1, 4, 4, 4))
    x[0, 0, 1:3, 1:3, 1:3] = 1.0  # a 2x2x2 block of equal maxima inside each window
    for pool in (lambda nn: nn.MaxPool3d(2), lambda nn: nn.MaxPool3d(3, stride=1, padding=1)):
        compare_module(pool(sg.nn), pool(torch.nn), x)
