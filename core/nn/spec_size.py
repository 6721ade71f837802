"""How many parameters a model spec would have, read from the spec without building it.

A service that takes specs from the network must refuse one too large for its memory before
it tries to allocate the weights: `Linear(8, 10**9)` is a few bytes of JSON and 32 GB of
float32. `spec_size(spec)` walks the spec as `from_spec` would and derives each built-in
layer's parameter and buffer counts from its constructor arguments (bound to the signature
with its defaults, as the constructor sees them), allocating nothing.

A user's Module given by import path runs code of its own, so its size is only known once it
is built: such a spec's size is not `exact` and counts only its built-in layers (and the
module arguments it is given), which makes it a lower bound. The same holds for a built-in
layer type that has no counter here (none, as the tests check).
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..tensor import Tensor
from .spec import _CONTAINERS, _builtins, _decode, _only_keys, _raw_arguments, _tuples


@dataclass(frozen=True)
class SpecSize:
    """Element counts of a spec's parameters and buffers (running statistics, loss
    weights). `exact` is False when part of the model is a user's Module, counted as zero."""

    parameters: int = 0
    buffers: int = 0
    exact: bool = True

    @property
    def elements(self) -> int:
        """Parameters and buffers together: what building the model allocates."""
        return self.parameters + self.buffers

    def __add__(self, other: SpecSize) -> SpecSize:
        return SpecSize(
            self.parameters + other.parameters,
            self.buffers + other.buffers,
            self.exact and other.exact,
        )


def spec_size(spec: dict) -> SpecSize:
    """The size of the model `from_spec(spec)` builds, without building it.

    Raises ValueError for a spec `from_spec` would refuse for its shape (unknown layer, bad
    keys, arguments that do not fit the signature, sizes that are not non-negative
    integers). A spec it accepts here may still fail to build for other reasons.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"a spec must be a dict, got {type(spec).__name__}")
    if ("type" in spec) == ("import" in spec):
        raise ValueError(
            "a spec needs exactly one of 'type' (a built-in layer) or 'import' (a custom Module)"
        )
    if "import" in spec:
        label = str(spec["import"])
        args, kwargs, nested = _arguments(spec, label)
        return nested + SpecSize(exact=False)
    name = spec["type"]
    builtins = _builtins()
    if not isinstance(name, str) or name not in builtins:
        raise ValueError(f"unknown layer type {name!r} in spec")
    if name in _CONTAINERS:
        _only_keys(spec, {"type", "modules"}, name)
        modules = spec.get("modules", [])
        if isinstance(modules, dict):
            modules = list(modules.values())
        elif not isinstance(modules, list):
            raise ValueError(f"{name}: 'modules' must be a list or a dict of specs")
        return sum((spec_size(m) for m in modules), SpecSize())
    args, kwargs, nested = _arguments(spec, name)
    counter = _COUNTERS.get(name)
    if counter is None and name not in _NO_PARAMETERS:
        return nested + SpecSize(exact=False)
    try:
        bound = inspect.signature(builtins[name]).bind(
            *[_tuples(a) for a in args], **{k: _tuples(v) for k, v in kwargs.items()}
        )
    except TypeError as exc:
        raise ValueError(f"bad arguments for {name}: {exc}") from None
    if counter is None:
        return nested
    bound.apply_defaults()
    try:
        own = counter(bound.arguments)
    except (TypeError, ValueError, RuntimeError, ArithmeticError) as exc:
        raise ValueError(f"bad arguments for {name}: {exc}") from None
    consumed = _COUNTED_MODULE_ARGUMENTS.get(name)
    if consumed is None:
        return nested + own
    # the counter sized these module arguments itself (copied, or held); any other is
    # counted as `nested` counts it
    others = [
        value.size + SpecSize(exact=False)
        for key, value in bound.arguments.items()
        if isinstance(value, _ModuleArgument) and key not in consumed
    ]
    return sum(others, own)


def count_parameters(spec: dict) -> int:
    """`sum(p.numel() for p in from_spec(spec).parameters())`, read from the spec alone.

    Raises ValueError when the spec holds a user's Module (whose parameters are known only
    once it is built) or is malformed (see `spec_size`)."""
    size = spec_size(spec)
    if not size.exact:
        raise ValueError(
            "the spec holds a custom Module (an import path): its parameters are counted only "
            "once it is built"
        )
    return size.parameters


# ---------------------------------------------------------------------- arguments
class _ModuleArgument:
    """Stands in for a `{"$module": ...}` argument, which is counted, not built."""

    def __init__(self, size: SpecSize) -> None:
        self.size = size


def _arguments(spec: dict, label: str) -> tuple[list, dict, SpecSize]:
    """The decoded args and kwargs, and the size of the module arguments among them."""
    args, kwargs = _raw_arguments(spec, label)
    sizes: list[SpecSize] = []

    def module(inner: dict) -> _ModuleArgument:
        # Built by from_spec before the outer constructor runs, so it counts either way; it
        # may or may not end up inside the model, so the total is no longer exact.
        size = spec_size(inner)
        sizes.append(size + SpecSize(exact=False))
        return _ModuleArgument(size)

    args = _decode(args, f"{label} args", None, module)
    kwargs = _decode(kwargs, f"{label} kwargs", None, module)
    return args, kwargs, sum(sizes, SpecSize())


def _size(value, name: str) -> int:
    """A dimension as `factory.empty` takes it: a non-negative int (bools are ints)."""
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def _elements(value, name: str) -> int:
    """The element count of `factory.empty(value)`: a size, or a sequence of sizes (a shape)."""
    if isinstance(value, Sequence):
        return math.prod(_size(d, name) for d in value)
    return _size(value, name)


def _flag(value) -> bool:
    """A switch as the constructors read it (`if bias:`)."""
    return bool(value)


def _numel(value, name: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a tensor or None, got {type(value).__name__}")
    return int(value.numel())


# ---------------------------------------------------------------------- per layer type
def _linear(a: Mapping) -> SpecSize:
    n_in, n_out = _size(a["in_features"], "in_features"), _size(a["out_features"], "out_features")
    return SpecSize(n_in * n_out + (n_out if _flag(a["bias"]) else 0))


def _adaptive_log_softmax(a: Mapping) -> SpecSize:
    n_in = _size(a["in_features"], "in_features")
    n_classes = _size(a["n_classes"], "n_classes")
    cutoffs = [int(c) for c in a["cutoffs"]] + [n_classes]
    head = cutoffs[0] + len(cutoffs) - 1
    total = n_in * head + (head if _flag(a["head_bias"]) else 0)
    for i in range(len(cutoffs) - 1):
        hidden = int(n_in // (float(a["div_value"]) ** (i + 1)))
        total += n_in * hidden + hidden * (cutoffs[i + 1] - cutoffs[i])
    return SpecSize(total)


def _conv(dims: int) -> Callable[[Mapping], SpecSize]:
    def count(a: Mapping) -> SpecSize:
        from . import functional as F  # noqa: PLC0415, N812

        n_in = _size(a["in_channels"], "in_channels")
        n_out = _size(a["out_channels"], "out_channels")
        groups = a["groups"]
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError("groups must be a positive integer")
        kernel = F._ntuple(a["kernel_size"], dims, "kernel_size")
        taps = math.prod(_size(k, "kernel_size") for k in kernel)
        return SpecSize(n_out * (n_in // groups) * taps + (n_out if _flag(a["bias"]) else 0))

    return count


def _batch_norm(a: Mapping) -> SpecSize:
    affine, tracked = _flag(a["affine"]), _flag(a["track_running_stats"])
    n = _elements(a["num_features"], "num_features") if affine or tracked else 0
    weights = n + (n if _flag(a["bias"]) else 0) if affine else 0
    # running_mean, running_var and num_batches_tracked
    return SpecSize(weights, 2 * n + 1 if tracked else 0)


def _instance_norm(a: Mapping) -> SpecSize:
    affine, tracked = _flag(a["affine"]), _flag(a["track_running_stats"])
    n = _size(a["num_features"], "num_features") if affine or tracked else 0
    return SpecSize(2 * n if affine else 0, 2 * n + 1 if tracked else 0)


def _group_norm(a: Mapping) -> SpecSize:
    if not _flag(a["affine"]):
        return SpecSize()
    n = _size(a["num_channels"], "num_channels")
    return SpecSize(n + (n if _flag(a["bias"]) else 0))


def _layer_norm(a: Mapping) -> SpecSize:
    if not _flag(a["elementwise_affine"]):
        return SpecSize()
    shape = a["normalized_shape"]
    dims = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    n = math.prod(_size(d, "normalized_shape") for d in dims)
    return SpecSize(n + (n if _flag(a["bias"]) else 0))


def _rms_norm(a: Mapping) -> SpecSize:
    if not _flag(a["elementwise_affine"]):
        return SpecSize()
    shape = a["normalized_shape"]
    dims = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    return SpecSize(math.prod(_size(d, "normalized_shape") for d in dims))


def _multihead_attention(a: Mapping) -> SpecSize:
    e = _size(a["embed_dim"], "embed_dim")
    heads = _size(a["num_heads"], "num_heads")
    if heads == 0 or e % heads:
        raise ValueError("embed_dim must be a positive multiple of num_heads")
    kdim = e if a["kdim"] is None else _size(a["kdim"], "kdim")
    vdim = e if a["vdim"] is None else _size(a["vdim"], "vdim")
    projections = e * (e + kdim + vdim) + e * e  # q, k, v in; out_proj
    biases = 4 * e if _flag(a["bias"]) else 0  # in_proj_bias (3E) and out_proj.bias
    return SpecSize(projections + biases + (2 * e if _flag(a["add_bias_kv"]) else 0))


def _attention_size(e: int, heads: int, bias: bool) -> int:
    """Parameters of MultiheadAttention(e, heads, bias=bias) with kdim = vdim = e."""
    if heads == 0 or e % heads:
        raise ValueError("d_model must be a positive multiple of nhead")
    return 4 * e * e + (4 * e if bias else 0)


def _encoder_layer(a: Mapping, attentions: int = 1, norms: int = 2) -> SpecSize:
    d, heads = _size(a["d_model"], "d_model"), _size(a["nhead"], "nhead")
    ff, bias = _size(a["dim_feedforward"], "dim_feedforward"), _flag(a["bias"])
    feed_forward = 2 * d * ff + (ff + d if bias else 0)
    own = SpecSize(
        attentions * _attention_size(d, heads, bias) + feed_forward + norms * (2 * d if bias else d)
    )
    activation = a["activation"]  # a name, or a module the layer holds
    return own + activation.size if isinstance(activation, _ModuleArgument) else own


def _decoder_layer(a: Mapping) -> SpecSize:
    return _encoder_layer(a, attentions=2, norms=3)


def _module_size(value, name: str) -> SpecSize:
    """The size of a module argument. Anything else (None, a number) is kept as a plain
    attribute by the constructor and holds no tensors."""
    if not isinstance(value, _ModuleArgument):
        return SpecSize()
    return value.size


def _held(name: str) -> Callable[[Mapping], SpecSize]:
    """A layer whose only tensors are those of the module it is given and keeps."""

    def count(a: Mapping) -> SpecSize:
        return _module_size(a[name], name)

    return count


def _times(size: SpecSize, n: int) -> SpecSize:
    return SpecSize(size.parameters * n, size.buffers * n, size.exact)


def _stack(layer_name: str) -> Callable[[Mapping], SpecSize]:
    """TransformerEncoder/Decoder: num_layers copies of the layer, and the norm it holds."""

    def count(a: Mapping) -> SpecSize:
        if not isinstance(a[layer_name], _ModuleArgument):
            raise TypeError(f"{layer_name} must be a module")
        layers = _times(
            _module_size(a[layer_name], layer_name), _size(a["num_layers"], "num_layers")
        )
        return layers + _module_size(a["norm"], "norm")

    return count


def _transformer(a: Mapping) -> SpecSize:
    d, bias = _size(a["d_model"], "d_model"), _flag(a["bias"])
    norm = SpecSize(2 * d if bias else d)
    parts = SpecSize()
    for side, layer in (("encoder", _encoder_layer), ("decoder", _decoder_layer)):
        custom = a[f"custom_{side}"]
        if custom is not None:
            parts = parts + _module_size(custom, f"custom_{side}")
        else:
            count = _size(a[f"num_{side}_layers"], f"num_{side}_layers")
            parts = parts + _times(layer(a), count) + norm
    return parts


def _recurrent(gates: int, cell: bool = False) -> Callable[[Mapping], SpecSize]:
    """RNN (1 gate), GRU (3) and LSTM (4): per layer and direction, gates x hidden rows of
    input and hidden weights, two biases, and an LSTM's projection (proj_size x hidden)."""

    def count(a: Mapping) -> SpecSize:
        n_in, hidden = _size(a["input_size"], "input_size"), _size(a["hidden_size"], "hidden_size")
        bias = 2 * gates * hidden if _flag(a["bias"]) else 0
        if cell:
            return SpecSize(gates * hidden * (n_in + hidden) + bias)
        layers = _size(a["num_layers"], "num_layers")
        directions = 2 if _flag(a["bidirectional"]) else 1
        proj = _size(a.get("proj_size", 0), "proj_size")  # LSTM only: h is projected
        state = proj or hidden
        total = 0
        for layer in range(layers):
            layer_in = n_in if layer == 0 else state * directions
            per_direction = gates * hidden * (layer_in + state) + bias + proj * hidden
            total += directions * per_direction
        return SpecSize(total)

    return count


def _bilinear(a: Mapping) -> SpecSize:
    out = _size(a["out_features"], "out_features")
    weight = (
        out * _size(a["in1_features"], "in1_features") * _size(a["in2_features"], "in2_features")
    )
    return SpecSize(weight + (out if _flag(a["bias"]) else 0))


def _prelu(a: Mapping) -> SpecSize:
    return SpecSize(_size(a["num_parameters"], "num_parameters"))


def _embedding(a: Mapping) -> SpecSize:
    if a["_weight"] is not None:  # the weight is given (its shape must match)
        return SpecSize(_numel(a["_weight"], "_weight"))
    return SpecSize(
        _size(a["num_embeddings"], "num_embeddings") * _size(a["embedding_dim"], "embedding_dim")
    )


def _weighted_loss(*names: str) -> Callable[[Mapping], SpecSize]:
    def count(a: Mapping) -> SpecSize:
        return SpecSize(buffers=sum(_numel(a[n], n) for n in names))

    return count


_COUNTERS: dict[str, Callable[[Mapping], SpecSize]] = {
    "Linear": _linear,
    "Bilinear": _bilinear,
    "AdaptiveLogSoftmaxWithLoss": _adaptive_log_softmax,
    "Conv1d": _conv(1),
    "Conv2d": _conv(2),
    "Conv3d": _conv(3),
    "BatchNorm3d": _batch_norm,
    "InstanceNorm3d": _instance_norm,
    "ConvTranspose2d": _conv(2),
    "ConvTranspose3d": _conv(3),
    "ConvTranspose1d": _conv(1),
    "EmbeddingBag": _embedding,
    "BatchNorm1d": _batch_norm,
    "BatchNorm2d": _batch_norm,
    "GroupNorm": _group_norm,
    "LayerNorm": _layer_norm,
    "RMSNorm": _rms_norm,
    "InstanceNorm1d": _instance_norm,
    "InstanceNorm2d": _instance_norm,
    "PReLU": _prelu,
    "RNN": _recurrent(1),
    "GRU": _recurrent(3),
    "LSTM": _recurrent(4),
    "RNNCell": _recurrent(1, cell=True),
    "GRUCell": _recurrent(3, cell=True),
    "LSTMCell": _recurrent(4, cell=True),
    "MultiheadAttention": _multihead_attention,
    "TransformerEncoderLayer": _encoder_layer,
    "TransformerDecoderLayer": _decoder_layer,
    "TransformerEncoder": _stack("encoder_layer"),
    "TransformerDecoder": _stack("decoder_layer"),
    "Transformer": _transformer,
    "Embedding": _embedding,
    "BCELoss": _weighted_loss("weight"),
    "BCEWithLogitsLoss": _weighted_loss("weight", "pos_weight"),
    "CrossEntropyLoss": _weighted_loss("weight"),
    "NLLLoss": _weighted_loss("weight"),
    "NLLLoss2d": _weighted_loss("weight"),
    "MultiLabelSoftMarginLoss": _weighted_loss("weight"),
    "MultiMarginLoss": _weighted_loss("weight"),
    "TripletMarginWithDistanceLoss": _held("distance_function"),
}
# Layers whose counters size these module arguments themselves.
_COUNTED_MODULE_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "TransformerEncoderLayer": ("activation",),
    "TransformerDecoderLayer": ("activation",),
    "TransformerEncoder": ("encoder_layer", "norm"),
    "TransformerDecoder": ("decoder_layer", "norm"),
    "Transformer": ("activation", "custom_encoder", "custom_decoder"),
    "TripletMarginWithDistanceLoss": ("distance_function",),
}
# Layers that hold no tensors at all, whatever their arguments.
_NO_PARAMETERS = frozenset(
    {
        "AdaptiveAvgPool2d",
        "AdaptiveAvgPool1d",
        "AdaptiveMaxPool1d",
        "AdaptiveMaxPool2d",
        "AvgPool1d",
        "LPPool1d",
        "LPPool2d",
        "LPPool3d",
        "FractionalMaxPool2d",
        "FractionalMaxPool3d",
        "MaxPool1d",
        "ChannelShuffle",
        "PixelShuffle",
        "PixelUnshuffle",
        "Fold",
        "Unfold",
        "Softmax2d",
        "CircularPad3d",
        "ConstantPad3d",
        "ReflectionPad3d",
        "ReplicationPad3d",
        "ZeroPad3d",
        "AdaptiveAvgPool3d",
        "AdaptiveMaxPool3d",
        "AvgPool3d",
        "MaxPool3d",
        "RReLU",
        "AlphaDropout",
        "Dropout3d",
        "FeatureAlphaDropout",
        "LocalResponseNorm",
        "CircularPad1d",
        "CircularPad2d",
        "MaxUnpool1d",
        "MaxUnpool2d",
        "MaxUnpool3d",
        "UpsamplingBilinear2d",
        "UpsamplingNearest2d",
        "AvgPool2d",
        "MaxPool2d",
        "Dropout",
        "Dropout1d",
        "Dropout2d",
        "CELU",
        "ConstantPad1d",
        "ConstantPad2d",
        "ZeroPad1d",
        "ZeroPad2d",
        "ReflectionPad1d",
        "ReflectionPad2d",
        "ReplicationPad1d",
        "ReplicationPad2d",
        "Upsample",
        "CosineSimilarity",
        "PairwiseDistance",
        "ELU",
        "GELU",
        "GLU",
        "Hardshrink",
        "Hardsigmoid",
        "Hardswish",
        "SELU",
        "Softshrink",
        "Softsign",
        "Tanhshrink",
        "Threshold",
        "Hardtanh",
        "LeakyReLU",
        "LogSigmoid",
        "LogSoftmax",
        "Mish",
        "ReLU",
        "ReLU6",
        "SiLU",
        "Sigmoid",
        "Softmax",
        "Softmin",
        "Softplus",
        "Tanh",
        "Flatten",
        "Unflatten",
        "Identity",
        "Module",
        "HuberLoss",
        "KLDivLoss",
        "L1Loss",
        "MSELoss",
        "SmoothL1Loss",
        "CosineEmbeddingLoss",
        "GaussianNLLLoss",
        "HingeEmbeddingLoss",
        "MarginRankingLoss",
        "MultiLabelMarginLoss",
        "PoissonNLLLoss",
        "CTCLoss",
        "SoftMarginLoss",
        "TripletMarginLoss",
    }
)
