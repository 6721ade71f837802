"""Model specs: every built-in module and container round-trips through JSON; custom
modules travel as import paths; bad specs fail with a clear ValueError."""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
from _nn_helpers import TwoLayer

import shardgrad as sg
from shardgrad.nn import from_spec
from shardgrad.nn.spec import _builtins

nn = sg.nn

EXAMPLES = {
    "Module": lambda: nn.Module(),
    "Identity": lambda: nn.Identity(),
    "Linear": lambda: nn.Linear(4, 3, bias=False, dtype=sg.float64),
    "Conv1d": lambda: nn.Conv1d(2, 4, 3, stride=2, padding="valid"),
    "Conv2d": lambda: nn.Conv2d(
        2, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=2, groups=2, padding_mode="reflect"
    ),
    "MaxPool2d": lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
    "AvgPool2d": lambda: nn.AvgPool2d(2, count_include_pad=False, divisor_override=3),
    "AdaptiveAvgPool2d": lambda: nn.AdaptiveAvgPool2d((None, 3)),
    "ReLU": lambda: nn.ReLU(inplace=True),
    "ReLU6": lambda: nn.ReLU6(),
    "LeakyReLU": lambda: nn.LeakyReLU(0.2),
    "GELU": lambda: nn.GELU(approximate="tanh"),
    "SiLU": lambda: nn.SiLU(),
    "Mish": lambda: nn.Mish(),
    "ELU": lambda: nn.ELU(alpha=0.5),
    "Softplus": lambda: nn.Softplus(beta=2.0),
    "Hardtanh": lambda: nn.Hardtanh(-2.0, 2.0),
    "Tanh": lambda: nn.Tanh(),
    "Sigmoid": lambda: nn.Sigmoid(),
    "LogSigmoid": lambda: nn.LogSigmoid(),
    "Softmax": lambda: nn.Softmax(dim=-1),
    "Softmin": lambda: nn.Softmin(dim=1),
    "LogSoftmax": lambda: nn.LogSoftmax(1),
    "Dropout": lambda: nn.Dropout(0.25),
    "Dropout1d": lambda: nn.Dropout1d(0.1),
    "Dropout2d": lambda: nn.Dropout2d(p=0.3, inplace=True),
    "LayerNorm": lambda: nn.LayerNorm((3, 4), eps=1e-3, bias=False),
    "RMSNorm": lambda: nn.RMSNorm([2, 4], eps=1e-4),
    "SELU": lambda: nn.SELU(inplace=True),
    "InstanceNorm1d": lambda: nn.InstanceNorm1d(3, affine=True),
    "InstanceNorm2d": lambda: nn.InstanceNorm2d(4, track_running_stats=True, momentum=None),
    "ZeroPad1d": lambda: nn.ZeroPad1d(2),
    "ZeroPad2d": lambda: nn.ZeroPad2d((1, 2, 0, 1)),
    "ConstantPad1d": lambda: nn.ConstantPad1d((1, 0), 2.5),
    "ConstantPad2d": lambda: nn.ConstantPad2d(1, -1.0),
    "ReflectionPad1d": lambda: nn.ReflectionPad1d(1),
    "ReflectionPad2d": lambda: nn.ReflectionPad2d((1, 1, 2, 0)),
    "ReplicationPad1d": lambda: nn.ReplicationPad1d(3),
    "ReplicationPad2d": lambda: nn.ReplicationPad2d(2),
    "Upsample": lambda: nn.Upsample(scale_factor=(2, 1.5), mode="bilinear", align_corners=True),
    "RNN": lambda: nn.RNN(3, 4, 2, nonlinearity="relu", batch_first=True),
    "LSTM": lambda: nn.LSTM(3, 4, bidirectional=True, dropout=0.2, num_layers=2),
    "GRU": lambda: nn.GRU(3, 4, bias=False),
    "RNNCell": lambda: nn.RNNCell(3, 4),
    "LSTMCell": lambda: nn.LSTMCell(3, 4, bias=False),
    "GRUCell": lambda: nn.GRUCell(3, 4),
    "ConvTranspose2d": lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, output_padding=1, groups=2),
    "CosineSimilarity": lambda: nn.CosineSimilarity(dim=0, eps=1e-6),
    "PairwiseDistance": lambda: nn.PairwiseDistance(p=1.0, keepdim=True),
    "CELU": lambda: nn.CELU(alpha=0.5),
    "Softsign": lambda: nn.Softsign(),
    "Tanhshrink": lambda: nn.Tanhshrink(),
    "Hardsigmoid": lambda: nn.Hardsigmoid(),
    "Hardswish": lambda: nn.Hardswish(inplace=True),
    "PReLU": lambda: nn.PReLU(3, init=0.1),
    "Threshold": lambda: nn.Threshold(0.1, 20.0),
    "GLU": lambda: nn.GLU(dim=1),
    "Hardshrink": lambda: nn.Hardshrink(0.3),
    "Softshrink": lambda: nn.Softshrink(),
    "MultiheadAttention": lambda: nn.MultiheadAttention(8, 2, kdim=3, batch_first=True),
    "TransformerEncoderLayer": lambda: nn.TransformerEncoderLayer(8, 2, 16, activation="gelu"),
    "TransformerDecoderLayer": lambda: nn.TransformerDecoderLayer(8, 2, 16, norm_first=True),
    "TransformerEncoder": lambda: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(8, 2, 16), 2, norm=nn.LayerNorm(8)
    ),
    "TransformerDecoder": lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16), 2),
    "Transformer": lambda: nn.Transformer(8, 2, 1, 2, 16, batch_first=True),
    "GroupNorm": lambda: nn.GroupNorm(2, 4, affine=False),
    "BatchNorm1d": lambda: nn.BatchNorm1d(5, momentum=None),
    "BatchNorm2d": lambda: nn.BatchNorm2d(3, track_running_stats=False, bias=False),
    "Embedding": lambda: nn.Embedding(10, 4, padding_idx=0, max_norm=2.0),
    "Flatten": lambda: nn.Flatten(0, 2),
    "Unflatten": lambda: nn.Unflatten(1, (2, 3)),
    "Sequential": lambda: nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1))),
    "ModuleList": lambda: nn.ModuleList([nn.Linear(2, 2), nn.Tanh()]),
    "ModuleDict": lambda: nn.ModuleDict({"enc": nn.Linear(2, 2), "act": nn.GELU()}),
    "MSELoss": lambda: nn.MSELoss(reduction="sum"),
    "L1Loss": lambda: nn.L1Loss(),
    "SmoothL1Loss": lambda: nn.SmoothL1Loss(beta=0.5),
    "HuberLoss": lambda: nn.HuberLoss(delta=2.0),
    "KLDivLoss": lambda: nn.KLDivLoss(reduction="batchmean", log_target=True),
    "CrossEntropyLoss": lambda: nn.CrossEntropyLoss(
        weight=sg.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1, ignore_index=2
    ),
    "NLLLoss": lambda: nn.NLLLoss(reduction="none"),
    "NLLLoss2d": lambda: nn.NLLLoss2d(ignore_index=1),
    "BCELoss": lambda: nn.BCELoss(),
    "BCEWithLogitsLoss": lambda: nn.BCEWithLogitsLoss(pos_weight=sg.tensor([2.0, 3.0])),
    "MaxPool1d": lambda: nn.MaxPool1d(3, stride=2, return_indices=True),
    "AvgPool1d": lambda: nn.AvgPool1d(3, count_include_pad=False),
    "AdaptiveAvgPool1d": lambda: nn.AdaptiveAvgPool1d(4),
    "AdaptiveMaxPool1d": lambda: nn.AdaptiveMaxPool1d(3, return_indices=True),
    "AdaptiveMaxPool2d": lambda: nn.AdaptiveMaxPool2d((3, None)),
    "LPPool1d": lambda: nn.LPPool1d(2, 3, stride=2),
    "LPPool2d": lambda: nn.LPPool2d(1.5, (2, 3)),
    "LPPool3d": lambda: nn.LPPool3d(2.0, (2, 1, 2)),
    "AdaptiveLogSoftmaxWithLoss": lambda: nn.AdaptiveLogSoftmaxWithLoss(
        8, 20, [4, 10], head_bias=True
    ),
    "FractionalMaxPool2d": lambda: nn.FractionalMaxPool2d(2, output_ratio=0.5),
    "FractionalMaxPool3d": lambda: nn.FractionalMaxPool3d(2, output_size=(2, 2, 2)),
    "PixelShuffle": lambda: nn.PixelShuffle(2),
    "PixelUnshuffle": lambda: nn.PixelUnshuffle(3),
    "ChannelShuffle": lambda: nn.ChannelShuffle(2),
    "Unfold": lambda: nn.Unfold((2, 3), padding=1),
    "Fold": lambda: nn.Fold((4, 5), 2, stride=2),
    "Softmax2d": lambda: nn.Softmax2d(),
    "Bilinear": lambda: nn.Bilinear(3, 4, 5),
    "ConvTranspose1d": lambda: nn.ConvTranspose1d(2, 4, 3, stride=2, output_padding=1, groups=2),
    "RReLU": lambda: nn.RReLU(0.1, 0.2),
    "AlphaDropout": lambda: nn.AlphaDropout(0.2),
    "Dropout3d": lambda: nn.Dropout3d(0.3),
    "FeatureAlphaDropout": lambda: nn.FeatureAlphaDropout(),
    "LocalResponseNorm": lambda: nn.LocalResponseNorm(3, k=2.0),
    "CircularPad1d": lambda: nn.CircularPad1d((1, 2)),
    "CircularPad2d": lambda: nn.CircularPad2d(1),
    "MaxUnpool1d": lambda: nn.MaxUnpool1d(3, stride=2),
    "MaxUnpool2d": lambda: nn.MaxUnpool2d(2),
    "MaxUnpool3d": lambda: nn.MaxUnpool3d(2),
    "EmbeddingBag": lambda: nn.EmbeddingBag(10, 4, mode="max", padding_idx=1),
    "UpsamplingNearest2d": lambda: nn.UpsamplingNearest2d(scale_factor=2),
    "UpsamplingBilinear2d": lambda: nn.UpsamplingBilinear2d(size=(4, 5)),
    "Conv3d": lambda: nn.Conv3d(2, 4, (3, 2, 2), stride=2, padding=1, groups=2),
    "ConvTranspose3d": lambda: nn.ConvTranspose3d(4, 2, (2, 3, 2), stride=2, output_padding=1),
    "BatchNorm3d": lambda: nn.BatchNorm3d(3, affine=False),
    "InstanceNorm3d": lambda: nn.InstanceNorm3d(3, affine=True, track_running_stats=True),
    "MaxPool3d": lambda: nn.MaxPool3d(2, ceil_mode=True),
    "AvgPool3d": lambda: nn.AvgPool3d(3, stride=2, count_include_pad=False),
    "AdaptiveAvgPool3d": lambda: nn.AdaptiveAvgPool3d((2, None, 3)),
    "AdaptiveMaxPool3d": lambda: nn.AdaptiveMaxPool3d(2),
    "ConstantPad3d": lambda: nn.ConstantPad3d(1, 0.5),
    "ZeroPad3d": lambda: nn.ZeroPad3d((1, 0, 1, 0, 2, 2)),
    "ReflectionPad3d": lambda: nn.ReflectionPad3d(1),
    "ReplicationPad3d": lambda: nn.ReplicationPad3d(2),
    "CircularPad3d": lambda: nn.CircularPad3d(1),
    "CosineEmbeddingLoss": lambda: nn.CosineEmbeddingLoss(margin=0.2),
    "MarginRankingLoss": lambda: nn.MarginRankingLoss(margin=0.5, reduction="sum"),
    "HingeEmbeddingLoss": lambda: nn.HingeEmbeddingLoss(margin=2.0),
    "SoftMarginLoss": lambda: nn.SoftMarginLoss(),
    "MultiLabelSoftMarginLoss": lambda: nn.MultiLabelSoftMarginLoss(weight=sg.tensor([1.0, 2.0])),
    "MultiMarginLoss": lambda: nn.MultiMarginLoss(p=2, weight=sg.tensor([1.0, 2.0, 0.5])),
    "MultiLabelMarginLoss": lambda: nn.MultiLabelMarginLoss(reduction="none"),
    "TripletMarginLoss": lambda: nn.TripletMarginLoss(margin=0.5, p=1.0, swap=True),
    "TripletMarginWithDistanceLoss": lambda: nn.TripletMarginWithDistanceLoss(
        distance_function=nn.PairwiseDistance(p=1.0), margin=0.5
    ),
    "GaussianNLLLoss": lambda: nn.GaussianNLLLoss(full=True, eps=1e-3),
    "PoissonNLLLoss": lambda: nn.PoissonNLLLoss(log_input=False, full=True),
    "CTCLoss": lambda: nn.CTCLoss(blank=2, reduction="sum", zero_infinity=True),
}


def _round_trip(m, **kw):
    spec = m.spec()
    text = json.dumps(spec)  # must be plain JSON
    rebuilt = from_spec(json.loads(text), **kw)
    assert type(rebuilt) is type(m)
    assert repr(rebuilt) == repr(m)
    assert rebuilt.spec() == spec
    a = {k: (tuple(v.shape), v.dtype) for k, v in m.state_dict().items()}
    b = {k: (tuple(v.shape), v.dtype) for k, v in rebuilt.state_dict().items()}
    assert a == b
    return rebuilt


def test_every_builtin_has_an_example():
    assert set(_builtins()) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_builtin_round_trip(name):
    _round_trip(EXAMPLES[name]())


def test_spec_records_only_given_arguments():
    assert nn.Linear(4, 3).spec() == {
        "type": "Linear",
        "kwargs": {"in_features": 4, "out_features": 3},
    }
    assert nn.Linear(4, 3, dtype=sg.float64).spec()["kwargs"]["dtype"] == {"$dtype": "float64"}
    assert "device" not in nn.Linear(4, 3, device="cpu").spec()["kwargs"]


def test_container_specs_follow_current_children():
    seq = nn.Sequential(nn.Linear(2, 2))
    seq.append(nn.ReLU())
    assert [c["type"] for c in seq.spec()["modules"]] == ["Linear", "ReLU"]
    named = nn.Sequential(OrderedDict([("enc", nn.Linear(2, 3)), ("act", nn.Tanh())]))
    assert list(named.spec()["modules"]) == ["enc", "act"]
    rebuilt = _round_trip(named)
    assert [n for n, _ in rebuilt.named_parameters()] == ["enc.weight", "enc.bias"]


def test_custom_module_travels_as_import_path():
    m = TwoLayer(5, hidden=6, act="tanh", head=nn.Sequential(nn.Linear(6, 3), nn.Softmax(-1)))
    spec = m.spec()
    assert spec["import"] == "_nn_helpers:TwoLayer"
    assert spec["kwargs"]["head"]["$module"]["type"] == "Sequential"
    rebuilt = _round_trip(m, allowed_prefixes=["_nn_helpers"])
    x = sg.randn(2, 5)
    rebuilt.load_state_dict(m.state_dict())
    assert float((rebuilt(x) - m(x)).abs().max()) == 0.0


def test_custom_module_nested_in_builtin_container():
    seq = nn.Sequential(TwoLayer(3), nn.Sigmoid())
    _round_trip(seq, allowed_prefixes=["_nn_helpers"])


def test_disallowed_import_paths():
    spec = TwoLayer(3).spec()
    with pytest.raises(ValueError, match="not allowed"):
        from_spec(spec, allowed_prefixes=["mymodels"])
    with pytest.raises(ValueError, match="not allowed"):
        from_spec({"import": "os.path:join"}, allowed_prefixes=["os.pathx"])
    with pytest.raises(ValueError, match="not a Module subclass"):
        from_spec({"import": "collections:OrderedDict", "kwargs": {}})
    with pytest.raises(ValueError, match="bad import path"):
        from_spec({"import": "os; rm -rf /:x"})
    with pytest.raises(ValueError, match="cannot import"):
        from_spec({"import": "no_such_package_xyz:Model"})
    # the check also covers modules nested in a built-in container
    nested = nn.Sequential(TwoLayer(3)).spec()
    with pytest.raises(ValueError, match="not allowed"):
        from_spec(nested, allowed_prefixes=["shardgrad"])


def test_bad_specs_raise_value_error():
    with pytest.raises(ValueError, match="unknown layer type 'Conv5d'"):
        from_spec({"type": "Conv5d", "kwargs": {}})
    with pytest.raises(ValueError, match="bad arguments for Linear"):
        from_spec({"type": "Linear", "kwargs": {"in_features": 2, "out_featurez": 3}})
    with pytest.raises(ValueError, match="bad arguments for Linear"):
        from_spec({"type": "Linear", "kwargs": {"in_features": 2}})
    with pytest.raises(ValueError, match="bad arguments for Conv2d"):
        from_spec(
            {
                "type": "Conv2d",
                "kwargs": {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "groups": 2},
            }
        )
    with pytest.raises(ValueError, match="exactly one of"):
        from_spec({"kwargs": {}})
    with pytest.raises(ValueError, match="unexpected keys"):
        from_spec({"type": "ReLU", "kwargs": {}, "weights": "..."})
    with pytest.raises(ValueError, match="must be a dict"):
        from_spec(["Linear"])
    with pytest.raises(ValueError):
        from_spec({"type": "Sequential", "modules": [{"type": "Nope"}]})


def test_unserialisable_modules_fail_clearly():
    class Local(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="top level of an importable module"):
        Local().spec()
    with pytest.raises(ValueError, match="cannot go into a spec"):
        TwoLayer(3, act=object()).spec()
