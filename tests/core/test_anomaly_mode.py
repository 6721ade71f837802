"""Anomaly detection: a NaN gradient stops backward at the node that made it, with torch's
message and the forward traceback pointing at the user's line; errors inside a backward get
the same traceback; the mode nests and restores like torch's."""

from __future__ import annotations

import warnings

import pytest
import torch

import shardgrad as sg


def _nan_backward(lib):
    x = lib.tensor([0.0, 1.0], requires_grad=True)
    y = (x.sqrt() * 0).sum()  # sqrt'(0) is inf, times the zero gradient: nan
    return y


def test_nan_gradient_is_reported_like_torch():
    messages = {}
    for lib in (sg, torch):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with lib.autograd.detect_anomaly():
                y = _nan_backward(lib)
                with pytest.raises(RuntimeError) as err:
                    y.backward()
        messages[lib.__name__] = (str(err.value), [str(w.message) for w in caught])
    s_err, s_warns = messages["shardgrad"]
    t_err, _ = messages["torch"]
    assert s_err == t_err == "Function 'SqrtBackward0' returned nan values in its 0th output."
    trace = next(w for w in s_warns if w.startswith("Error detected in SqrtBackward0"))
    assert "test_anomaly_mode.py" in trace and "x.sqrt()" in trace
    assert "elementwise.py" not in trace  # shardgrad's own frames are left out


def test_without_the_mode_nan_flows_through():
    y = _nan_backward(sg)
    y.backward()
    assert not sg.is_anomaly_enabled()


def test_check_nan_false_only_records():
    with sg.autograd.set_detect_anomaly(True, check_nan=False):
        assert sg.is_anomaly_enabled() and not sg.is_anomaly_check_nan_enabled()
        _nan_backward(sg).backward()
    assert not sg.is_anomaly_enabled() and sg.is_anomaly_check_nan_enabled()


def test_an_error_in_a_custom_backward_shows_the_forward_trace():
    class Broken(sg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            raise ValueError("broken backward")

    x = sg.ones(2, requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with sg.autograd.detect_anomaly():
            y = Broken.apply(x).sum()
            with pytest.raises(ValueError, match="broken backward"):
                y.backward()
    assert any("Error detected in BrokenBackward" in str(w.message) for w in caught)


def test_decorator_form():
    @sg.autograd.detect_anomaly()
    def inside():
        return sg.is_anomaly_enabled()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert inside() is True
    assert not sg.is_anomaly_enabled()
