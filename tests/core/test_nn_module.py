"""The Module system against torch: registration, traversal order and names, state dicts
(keys, strict errors, loading torch's arrays), modes, grads, dtype moves, hooks and repr."""

from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
from _nn_helpers import TwoLayer, close, copy_state

import shardgrad as sg


def _nested(nn):
    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(c)
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.act(self.bn(self.conv(x))) + x

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, stride=2)
            self.blocks = nn.ModuleList([Block(4), Block(4)])
            self.heads = nn.ModuleDict(
                {"cls": nn.Linear(4, 5), "reg": nn.Sequential(nn.Linear(4, 2), nn.Tanh())}
            )
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.drop = nn.Dropout(0.1)
            self.register_buffer("scale", torch.ones(1) if nn is torch.nn else sg.ones(1))
            self.register_buffer(
                "cache", torch.zeros(2) if nn is torch.nn else sg.zeros(2), persistent=False
            )
            self.temperature = nn.Parameter(torch.ones(()) if nn is torch.nn else sg.ones(()))

        def forward(self, x):
            x = self.stem(x)
            for b in self.blocks:
                x = b(x)
            x = self.pool(x).flatten(1)
            return (
                self.heads["cls"](self.drop(x)) * self.temperature * self.scale
                + self.heads["reg"](x).sum()
            )

    return Net()


def test_names_orders_and_state_dict_keys_match_torch():
    s, t = _nested(sg.nn), _nested(torch.nn)
    assert [n for n, _ in s.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in s.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in s.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in s.named_children()] == [n for n, _ in t.named_children()]
    assert list(s.state_dict()) == list(t.state_dict())
    shapes_s = {k: tuple(v.shape) for k, v in s.state_dict().items()}
    shapes_t = {k: tuple(v.shape) for k, v in t.state_dict().items()}
    assert shapes_s == shapes_t
    assert len(list(s.parameters())) == len(list(t.parameters()))
    assert len(list(s.modules())) == len(list(t.modules()))


def test_repr_matches_torch():
    s, t = _nested(sg.nn), _nested(torch.nn)
    assert repr(s) == repr(t)

    def seq(nn):
        return nn.Sequential(
            nn.Linear(2, 2),
            nn.Linear(2, 2),
            nn.Linear(2, 2),
            nn.ReLU(),
            nn.GELU(approximate="tanh"),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Softmax(dim=-1),
            nn.Embedding(10, 3, padding_idx=0),
            nn.LayerNorm((3, 4)),
            nn.MaxPool2d(3, 2, 1),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Unflatten(1, (2, 2)),
            nn.Identity(),
            nn.Conv2d(
                2,
                4,
                (3, 1),
                stride=2,
                padding=1,
                dilation=2,
                groups=2,
                bias=False,
                padding_mode="reflect",
            ),
            nn.BatchNorm1d(3, momentum=None, affine=False),
            nn.CrossEntropyLoss(),
            nn.Conv1d(2, 3, 3),
            nn.GroupNorm(1, 2),
            nn.Dropout2d(),
        )

    assert repr(seq(sg.nn)) == repr(seq(torch.nn))

    def ml(nn):
        return nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)])

    assert repr(ml(sg.nn)) == repr(ml(torch.nn))
    assert repr(sg.nn.ModuleList()) == repr(torch.nn.ModuleList())


def test_load_torch_state_dict_gives_equal_outputs():
    s, t = _nested(sg.nn).double().eval(), _nested(torch.nn).double().eval()
    copy_state(s, t)
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 9))
    close(s(sg.tensor(x)), t(torch.tensor(x)))
    # torch tensors themselves are accepted too (read through numpy)
    s2 = _nested(sg.nn).double().eval()
    s2.load_state_dict(t.state_dict())
    close(s2(sg.tensor(x)), t(torch.tensor(x)))


def test_state_dict_round_trip_and_detached_values():
    s = _nested(sg.nn)
    sd = s.state_dict()
    assert not sd["stem.weight"].requires_grad and sd["stem.weight"].grad_fn is None
    assert s.state_dict(keep_vars=True)["stem.weight"] is s.stem.weight
    s2 = _nested(sg.nn)
    result = s2.load_state_dict(sd)
    assert repr(result) == "<All keys matched successfully>"
    for k, v in s2.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd[k].numpy())


def _load_error(model, sd, **kw):
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(sd, **kw)
    return str(info.value)


def test_strict_load_errors_match_torch():
    s, t = _nested(sg.nn), _nested(torch.nn)
    sd_t = t.state_dict()
    del sd_t["blocks.0.bn.weight"]
    sd_t["blocks.9.conv.weight"] = torch.zeros(1)
    sd_t["extra"] = torch.zeros(1)
    sd_t["heads.cls.bias"] = torch.zeros(7)
    msg_t = _load_error(t, sd_t)
    sd_s = {k: v.numpy() for k, v in sd_t.items()}
    msg_s = _load_error(s, sd_s)
    assert msg_s == msg_t.replace("torch.Size", "torch.Size")
    # non-strict reports the same missing/unexpected keys (shape errors still raise)
    del sd_t["heads.cls.bias"], sd_s["heads.cls.bias"]
    rt = t.load_state_dict(sd_t, strict=False)
    rs = s.load_state_dict(sd_s, strict=False)
    assert rs.missing_keys == rt.missing_keys + [] and rs.unexpected_keys == rt.unexpected_keys


def test_load_without_num_batches_tracked_is_accepted():
    s = sg.nn.BatchNorm2d(3)
    sd = {k: v for k, v in s.state_dict().items() if k != "num_batches_tracked"}
    assert repr(s.load_state_dict(sd)) == "<All keys matched successfully>"


def test_registration_rules_match_torch():
    for nn, lib in ((sg.nn, sg), (torch.nn, torch)):
        m = nn.Module()
        m.w = nn.Parameter(lib.ones(2))
        m.sub = nn.Linear(2, 2)
        m.register_buffer("b", lib.zeros(1))
        m.plain = lib.zeros(3)  # a plain tensor attribute is not registered
        assert [n for n, _ in m.named_parameters()] == ["w", "sub.weight", "sub.bias"]
        assert [n for n, _ in m.named_buffers()] == ["b"]
        with pytest.raises(TypeError, match="cannot assign"):
            m.w = lib.ones(2)
        with pytest.raises(TypeError, match="cannot assign"):
            m.sub = lib.ones(2)
        with pytest.raises(TypeError, match="cannot assign"):
            m.b = 3
        with pytest.raises(KeyError, match="attribute 'plain' already exists"):
            m.register_parameter("plain", None)
        with pytest.raises(KeyError, match="contain"):
            m.register_buffer("a.b", None)
        m.w = None
        assert [n for n, _ in m.named_parameters()] == ["sub.weight", "sub.bias"]
        del m.sub
        assert not hasattr(m, "sub")
        with pytest.raises(AttributeError, match="'Module' object has no attribute 'missing'"):
            _ = m.missing
        m.sub = nn.ReLU()
        m.sub = nn.Parameter(lib.ones(1))  # re-assigning a name moves it between registries
        assert "sub" not in m._modules and [n for n, _ in m.named_parameters()] == ["sub"]
        m.add_module("child", nn.Identity())
        assert m.get_submodule("child") is m.child
        assert m.get_parameter("sub") is m.sub
        assert m.get_buffer("b") is m.b


def test_shared_parameters_are_listed_once():
    for nn in (sg.nn, torch.nn):
        lin = nn.Linear(2, 2)
        seq = nn.Sequential(lin, nn.ReLU(), lin)
        assert len(list(seq.parameters())) == 2
        assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
        assert len(list(seq.named_parameters(remove_duplicate=False))) == 4
        assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_train_eval_apply_requires_grad_zero_grad():
    s = _nested(sg.nn)
    assert s.training and s.blocks[0].bn.training
    s.eval()
    assert not any(m.training for m in s.modules())
    s.train()
    assert all(m.training for m in s.modules())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        s.train("yes")
    seen = []
    s.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen[0] == "Conv2d"
    out = s(sg.randn(2, 3, 9, 9)).sum()
    out.backward()
    assert all(p.grad is not None for p in s.parameters())
    s.zero_grad(set_to_none=False)
    assert all(float(p.grad.abs().sum()) == 0 for p in s.parameters())
    s.zero_grad()
    assert all(p.grad is None for p in s.parameters())
    s.requires_grad_(False)
    assert not any(p.requires_grad for p in s.parameters())


def test_to_dtype_keeps_parameter_identity_and_int_buffers():
    s = _nested(sg.nn)
    w = s.stem.weight
    s.to(sg.float64)
    assert s.stem.weight is w and w.dtype == sg.float64 and isinstance(w, sg.nn.Parameter)
    assert s.blocks[0].bn.num_batches_tracked.dtype == sg.int64
    assert s.blocks[0].bn.running_mean.dtype == sg.float64
    s.float()
    assert w.dtype == sg.float32
    s.double().cpu()
    assert w.dtype == sg.float64 and w.device.type == "cpu"
    s.to("cpu", dtype=sg.float32)
    assert w.dtype == sg.float32
    with pytest.raises(TypeError, match="only accepts floating point"):
        s.to(sg.int64)


def test_forward_hooks_and_pre_hooks():
    lin = sg.nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = lin(sg.randn(3, 2))
    close(out, (lin.bias + 1).detach().numpy()[None].repeat(3, 0))
    assert calls == [sg.Size([3, 2])]
    h1.remove()
    h2.remove()
    x = sg.randn(3, 2)
    close(lin(x), sg.nn.functional.linear(x, lin.weight, lin.bias))


def test_parameter_behaviour():
    p = sg.nn.Parameter(sg.tensor([1.0, 2.0]))
    assert p.requires_grad and p.is_leaf and isinstance(p, sg.Tensor)
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert repr(p) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))
    assert not sg.nn.Parameter(sg.ones(1), requires_grad=False).requires_grad
    base = sg.zeros(4)
    view = sg.nn.Parameter(base)
    with sg.no_grad():
        view.add_(1)
    assert float(base.sum()) == 4.0  # a parameter shares its tensor's memory
    import copy
    import pickle

    q = copy.deepcopy(p)
    assert isinstance(q, sg.nn.Parameter) and q is not p
    r = pickle.loads(pickle.dumps(p))
    assert isinstance(r, sg.nn.Parameter) and r.requires_grad
    assert isinstance(sg.nn.Parameter().data, sg.Tensor)


def test_pickle_module_round_trip():
    import pickle

    s = sg.nn.Sequential(TwoLayer(3), sg.nn.Conv1d(1, 2, 1), sg.nn.BatchNorm1d(2)).eval()
    r = pickle.loads(pickle.dumps(s))
    x = sg.randn(4, 1, 3)
    close(r(x), s(x).detach().numpy())
    assert isinstance(r[1].weight, sg.nn.Parameter) and r.spec() == s.spec()


def test_deepcopy_module():
    import copy

    s = _nested(sg.nn)
    c = copy.deepcopy(s)
    assert c.stem.weight is not s.stem.weight
    np.testing.assert_array_equal(c.stem.weight.detach().numpy(), s.stem.weight.detach().numpy())
    assert isinstance(c.stem.weight, sg.nn.Parameter)


def test_sequential_indexing_slicing_and_mutation():
    for nn in (sg.nn, torch.nn):
        seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
        sub = seq[1:]
        assert isinstance(sub, nn.Sequential) and list(sub._modules) == ["1", "2"]
        seq.append(nn.Sigmoid())
        assert len(seq) == 4
        del seq[1]
        assert list(seq._modules) == ["0", "1", "2"]
        seq.insert(1, nn.Tanh())
        assert isinstance(seq[1], nn.Tanh)
        named = nn.Sequential(OrderedDict([("a", nn.Linear(2, 2)), ("b", nn.ReLU())]))
        assert [n for n, _ in named.named_parameters()] == ["a.weight", "a.bias"]
        with pytest.raises(IndexError):
            seq[10]
        md = nn.ModuleDict({"x": nn.ReLU()})
        md["y"] = nn.Tanh()
        assert list(md.keys()) == ["x", "y"] and "y" in md and len(md) == 2
        ml = nn.ModuleList([nn.ReLU()])
        ml.append(nn.Tanh()).extend([nn.Sigmoid()])
        assert len(ml) == 3 and isinstance(ml[-1], nn.Sigmoid) and len(ml[1:]) == 2
    x = np.random.default_rng(0).standard_normal((4, 2))
    s = sg.nn.Sequential(sg.nn.Linear(2, 3), sg.nn.ReLU(), sg.nn.Linear(3, 1)).double()
    t = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1)).double()
    copy_state(s, t)
    close(s(sg.tensor(x)), t(torch.tensor(x)))


def test_custom_module_forward_not_implemented():
    with pytest.raises(NotImplementedError, match='missing the required "forward" function'):
        sg.nn.Module()(sg.ones(1))


REPR_CASES = [
    'Conv2d(3, 4, 3, padding="same")',
    'Conv2d(3, 4, (3, 1), padding="valid", bias=False)',
    'Conv1d(2, 2, 3, padding_mode="circular", padding=1)',
    "MaxPool2d((2, 3))",
    "MaxPool2d(2, return_indices=True)",
    "AvgPool2d(3, 2, 1, ceil_mode=True)",
    "AdaptiveAvgPool2d((None, 3))",
    "Embedding(5, 3, norm_type=3.0, scale_grad_by_freq=True)",
    "BatchNorm2d(3, momentum=None)",
    "BatchNorm1d(3, affine=False, track_running_stats=False)",
    "LayerNorm(4, elementwise_affine=False)",
    "GroupNorm(2, 4, affine=False)",
    "Softmax()",
    "LogSoftmax(dim=0)",
    "Hardtanh()",
    "ReLU6(inplace=True)",
    "ELU(inplace=True)",
    "Softplus()",
    "SiLU(inplace=True)",
    "Dropout1d()",
    "Unflatten(-1, [2, 2])",
    "BCEWithLogitsLoss()",
    "KLDivLoss()",
]


@pytest.mark.parametrize("expr", REPR_CASES)
def test_layer_repr_matches_torch(expr):
    assert repr(eval("sg.nn." + expr)) == repr(eval("torch.nn." + expr))


# ---------------------------------------------------------------- backward and state hooks
def _hooked_run(lib, weights):
    lin = lib.nn.Linear(3, 2).double()
    lin.load_state_dict({k: lib.tensor(v) for k, v in weights.items()})
    log = []
    lin.register_full_backward_pre_hook(lambda m, go: log.append(("pre", [g.tolist() for g in go])))

    def full(m, gi, go):
        log.append(
            ("full", [None if g is None else g.tolist() for g in gi], [g.tolist() for g in go])
        )
        return (gi[0] * 2,) if gi[0] is not None else None

    handle = lin.register_full_backward_hook(full)
    x = lib.tensor([[1.0, 2.0, 3.0]], dtype=lib.float64, requires_grad=True)
    (lin(x) * lib.tensor([[1.0, -1.0]], dtype=lib.float64)).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns when no input requires grad
        lin(lib.tensor([[1.0, 2.0, 3.0]], dtype=lib.float64)).sum().backward()
    handle.remove()
    lin(x).sum().backward()  # the full hook is gone; the pre hook still runs
    return log, x.grad.tolist()


def test_backward_hooks_see_and_replace_gradients_like_torch():
    torch.manual_seed(0)
    weights = {
        k: v.detach().numpy().copy() for k, v in torch.nn.Linear(3, 2).double().state_dict().items()
    }
    assert _hooked_run(sg, weights) == _hooked_run(torch, weights)


def test_backward_hooks_in_a_network():
    for lib in (sg, torch):
        lib.manual_seed(0)
        net = lib.nn.Sequential(lib.nn.Linear(4, 3), lib.nn.ReLU(), lib.nn.Linear(3, 1))
        order = []
        for i, m in enumerate(net):
            m.register_full_backward_hook(lambda mod, gi, go, i=i, order=order: order.append(i))
        net(lib.randn(5, 4, requires_grad=True)).sum().backward()
        assert order == [2, 1, 0]


def test_state_dict_hooks_and_extra_state_like_torch():
    class Counter:
        """A module mixin with non-tensor state, saved as extra state."""

        def __init__(self):
            super().__init__()
            self.count = 3

        def get_extra_state(self):
            return {"count": self.count}

        def set_extra_state(self, state):
            self.count = state["count"]

    for lib in (sg, torch):
        cls = type("Counted", (Counter, lib.nn.Module), {})
        a, b = cls(), cls()
        a.count = 9
        seen = []
        a.register_state_dict_pre_hook(
            lambda m, prefix, keep_vars, seen=seen: seen.append(("pre", prefix))
        )
        a.register_state_dict_post_hook(lambda m, sd, prefix, meta: sd.__setitem__("extra_key", 1))
        sd = a.state_dict()
        assert sd["_extra_state"] == {"count": 9} and seen == [("pre", "")]

        def rename(module, state_dict, prefix, *rest):
            state_dict.pop(prefix + "extra_key", None)

        b.register_load_state_dict_pre_hook(rename)
        b.register_load_state_dict_post_hook(
            lambda m, keys, seen=seen: seen.append(("post", list(keys.unexpected_keys)))
        )
        result = b.load_state_dict(sd)
        assert b.count == 9 and seen[-1] == ("post", []) and not result.missing_keys
        with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "_extra_state"'):
            cls().load_state_dict({})


def test_set_submodule_like_torch():
    for lib in (sg, torch):
        net = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Sequential(lib.nn.ReLU()))
        net.set_submodule("1.0", lib.nn.Tanh())
        assert isinstance(net[1][0], lib.nn.Tanh)
        with pytest.raises(AttributeError):
            net.set_submodule("1.missing", lib.nn.Tanh(), strict=True)
