"""ParameterList and ParameterDict as torch's: registration under indices and keys (so
named_parameters, state_dict, optimizers and .to see them), list and dict operations, plain
tensors wrapped as Parameters, and a model using them trained to torch's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


class Mixture:
    """The same small model in either library: per-expert weights in a ParameterList,
    named scales in a ParameterDict."""

    @staticmethod
    def build(lib):
        class Model(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.experts = lib.nn.ParameterList(
                    [lib.nn.Parameter(lib.tensor(np.full((3, 2), i + 1.0))) for i in range(3)]
                )
                self.scales = lib.nn.ParameterDict(
                    {
                        "gain": lib.nn.Parameter(lib.tensor([2.0, 0.5])),
                        "shift": lib.tensor(np.zeros(2)),
                    }
                )

            def forward(self, x):
                out = sum(x @ w for w in self.experts)
                return out * self.scales["gain"] + self.scales["shift"]

        return Model()


def test_a_model_with_parameter_containers_trains_like_torch():
    x = np.random.default_rng(0).standard_normal((4, 3))
    results = []
    for lib in (sg, torch):
        model = Mixture.build(lib)
        names = [n for n, _ in model.named_parameters()]
        assert names == [
            "experts.0", "experts.1", "experts.2", "scales.gain", "scales.shift",
        ]  # fmt: skip
        opt = lib.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            (
                model(lib.tensor(x, dtype=lib.float64 if lib is torch else None)) ** 2
            ).mean().backward()
            opt.step()
        results.append({k: _np(v) for k, v in model.state_dict().items()})
    assert list(results[0]) == list(results[1])
    for key in results[1]:
        np.testing.assert_allclose(results[0][key], results[1][key], rtol=1e-6)


def test_list_operations():
    params = sg.nn.ParameterList([sg.zeros(2)])
    params.append(sg.ones(3))
    params += [sg.nn.Parameter(sg.ones(1))]
    assert len(params) == 3 and isinstance(params[1], sg.nn.Parameter)
    assert params[-1] is params[2] and len(params[1:]) == 2
    params[0] = sg.full((4,), 2.0)
    assert tuple(params[0].shape) == (4,) and params[0].requires_grad
    with pytest.raises(IndexError):
        params[3]
    assert [tuple(p.shape) for p in params] == [(4,), (3,), (1,)]
    assert "(1): Parameter containing: [shardgrad.float32 of size 3]" in repr(params)


def test_dict_operations():
    params = sg.nn.ParameterDict({"a": sg.zeros(2)})
    params["b"] = sg.ones(3)
    params.update([("c", sg.ones(1))])
    assert list(params) == ["a", "b", "c"] and "b" in params and len(params) == 3
    assert isinstance(params["a"], sg.nn.Parameter)
    assert params.pop("a").shape == (2,) and list(params.keys()) == ["b", "c"]
    assert [n for n, _ in params.named_parameters()] == ["b", "c"]
    assert params.get("missing") is None and params.setdefault("d", sg.zeros(5)).shape == (5,)
    with pytest.raises(KeyError):
        params["missing"]
    params.clear()
    assert len(params) == 0 and list(params.parameters()) == []
