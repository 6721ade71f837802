"""Losses against torch in float64: every reduction, the class-index and probability forms
of cross entropy, weights, ignore_index, label smoothing, pos_weight; values and gradients
with respect to the input (and the target where torch differentiates it)."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
import torch
from _nn_helpers import close

import shardgrad as sg

REDUCTIONS = ["none", "mean", "sum"]
rng = np.random.default_rng(7)


def _run(sg_fn, torch_fn, inputs, grad_idx=(0,)):
    """Call both losses on the same float64/int arrays; compare values and gradients."""
    s_args, t_args = [], []
    for i, a in enumerate(inputs):
        a = np.asarray(a)
        need = i in grad_idx and a.dtype.kind == "f"
        s_args.append(sg.tensor(a, requires_grad=need))
        t_args.append(torch.tensor(a, requires_grad=need))
    ys, yt = sg_fn(*s_args), torch_fn(*t_args)
    close(ys, yt)
    g = np.random.default_rng(3).standard_normal(tuple(yt.shape))
    ys.backward(sg.tensor(g))
    yt.backward(torch.tensor(g))
    for i in grad_idx:
        if t_args[i].grad is not None:
            close(s_args[i].grad, t_args[i].grad)
    return ys, yt


def _both(name, **kw):
    return getattr(sg.nn, name)(**kw), getattr(torch.nn, name)(**kw)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss"])
def test_regression_losses(name, reduction):
    s, t = _both(name, reduction=reduction)
    x, y = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    _run(s, t, [x, y], grad_idx=(0, 1))


def test_smooth_l1_and_huber_options():
    x, y = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    _run(sg.nn.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5), [x, y], (0, 1))
    _run(sg.nn.HuberLoss(delta=0.3), torch.nn.HuberLoss(delta=0.3), [x, y], (0, 1))


def test_mse_broadcast_warns_and_matches():
    x, y = rng.standard_normal((4, 5)), rng.standard_normal((5,))
    with pytest.warns(UserWarning, match="different to the input size"):
        _run(
            sg.nn.functional.mse_loss,
            lambda a, b: torch.nn.functional.mse_loss(a, b),
            [x, y],
            (0, 1),
        )


@pytest.mark.parametrize("fn", ["mse_loss", "l1_loss"])
def test_weighted_regression(fn):
    x, y, w = rng.standard_normal((4, 5)), rng.standard_normal((4, 5)), rng.random((4, 5))
    for red in REDUCTIONS:
        _run(
            lambda a, b, c, red=red: getattr(sg.nn.functional, fn)(a, b, reduction=red, weight=c),
            lambda a, b, c, red=red: getattr(torch.nn.functional, fn)(
                a, b, reduction=red, weight=c
            ),
            [x, y, w],
            (0, 1),
        )


CE_CASES = [
    dict(),
    dict(weight=True),
    dict(ignore_index=1),
    dict(weight=True, ignore_index=2),
    dict(label_smoothing=0.2),
    dict(label_smoothing=0.1, weight=True),
    dict(label_smoothing=0.3, weight=True, ignore_index=0),
    dict(label_smoothing=0.25, ignore_index=3),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CE_CASES, ids=[str(c) for c in CE_CASES])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2, 3), (4,)], ids=["NC", "NCd1d2", "C"])
def test_cross_entropy_class_indices(case, reduction, shape):
    case = dict(case)
    c = shape[0] if len(shape) == 1 else shape[1]
    x = rng.standard_normal(shape)
    tshape = () if len(shape) == 1 else (shape[0], *shape[2:])
    target = rng.integers(0, c, tshape)
    kw = {k: v for k, v in case.items() if k != "weight"}
    w = rng.random(c) + 0.5 if case.get("weight") else None
    s = sg.nn.CrossEntropyLoss(
        weight=None if w is None else sg.tensor(w), reduction=reduction, **kw
    )
    unbatched_ignored = (
        len(shape) == 1
        and reduction == "mean"
        and not kw.get("label_smoothing")
        and int(target) == kw.get("ignore_index", -100)
    )
    # One unbatched sample that is ignored: torch's CUDA kernel returns 0 here, where its CPU
    # kernel (and every batched input, on either device) gives the 0/0 mean, NaN. shardgrad
    # gives NaN on every device, so torch on the CPU is the oracle for this one case.
    with torch.device("cpu") if unbatched_ignored else contextlib.nullcontext():
        t = torch.nn.CrossEntropyLoss(
            weight=None if w is None else torch.tensor(w), reduction=reduction, **kw
        )
        _run(s, t, [x, target])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "smoothing,weight", [(0.0, False), (0.2, False), (0.0, True), (0.15, True)]
)
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3), (4,)], ids=["NC", "NCd", "C"])
def test_cross_entropy_probabilities(reduction, smoothing, weight, shape):
    x = rng.standard_normal(shape)
    p = rng.random(shape)
    p = p / p.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)
    c = shape[0] if len(shape) == 1 else shape[1]
    w = rng.random(c) + 0.5 if weight else None

    def s(a, b):
        return sg.nn.functional.cross_entropy(
            a,
            b,
            weight=None if w is None else sg.tensor(w),
            reduction=reduction,
            label_smoothing=smoothing,
        )

    def t(a, b):
        return torch.nn.functional.cross_entropy(
            a,
            b,
            weight=None if w is None else torch.tensor(w),
            reduction=reduction,
            label_smoothing=smoothing,
        )

    _run(s, t, [x, p], grad_idx=(0, 1))


@pytest.mark.parametrize("weight", [False, True])
def test_unbatched_ignored_target_mean_is_nan(weight):
    """A single unbatched sample whose target is ignored: the mean over no weight is NaN and
    the input gradient is zero, for cross_entropy and nll_loss alike. torch agrees on the CPU;
    its CUDA kernel returns 0 for this one shape, so the oracle is torch on the CPU."""
    x = rng.standard_normal(4)
    w = rng.random(4) + 0.5 if weight else None
    for loss in ("cross_entropy", "nll_loss"):

        def fn(lib, a, loss=loss):
            wt = None if w is None else lib.tensor(w)
            return getattr(lib.nn.functional, loss)(a, lib.tensor(2), wt, ignore_index=2)

        ys = fn(sg, xs := sg.tensor(x, requires_grad=True))
        with torch.device("cpu"):
            yt = fn(torch, xt := torch.tensor(x, requires_grad=True))
        ys.backward()
        yt.backward()
        assert np.isnan(ys.item()) and np.isnan(yt.item())
        close(xs.grad, xt.grad)
        assert not np.any(xs.grad.cpu().numpy())


def test_cross_entropy_all_ignored_is_nan_like_torch():
    x = rng.standard_normal((3, 4))
    tgt = np.full(3, -100)
    ys = sg.nn.functional.cross_entropy(sg.tensor(x), sg.tensor(tgt))
    yt = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(tgt))
    assert np.isnan(ys.item()) and np.isnan(yt.item())


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight,ignore", [(False, -100), (True, -100), (True, 2), (False, 0)])
def test_nll_loss(reduction, weight, ignore):
    logp = torch.log_softmax(torch.tensor(rng.standard_normal((6, 4))), 1).numpy()
    target = rng.integers(0, 4, 6)
    w = rng.random(4) + 0.5 if weight else None
    s = sg.nn.NLLLoss(
        weight=None if w is None else sg.tensor(w), ignore_index=ignore, reduction=reduction
    )
    t = torch.nn.NLLLoss(
        weight=None if w is None else torch.tensor(w), ignore_index=ignore, reduction=reduction
    )
    _run(s, t, [logp, target])


def test_nll_loss_errors_match_torch():
    F = sg.nn.functional
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        F.nll_loss(sg.randn(3, 4), sg.tensor([0, 7, 1]))
    with pytest.raises(
        ValueError, match=r"Expected input batch_size \(3\) to match target batch_size \(2\)"
    ):
        F.cross_entropy(sg.randn(3, 4), sg.tensor([0, 1]))
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        F.cross_entropy(sg.randn(3, 4), sg.tensor([0, 1, 2]), reduction="avg")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", [False, True])
def test_bce(reduction, weight):
    x = rng.uniform(0.05, 0.95, (4, 5))
    y = rng.random((4, 5))
    w = rng.random((4, 5)) + 0.5 if weight else None
    s = sg.nn.BCELoss(weight=None if w is None else sg.tensor(w), reduction=reduction)
    t = torch.nn.BCELoss(weight=None if w is None else torch.tensor(w), reduction=reduction)
    _run(s, t, [x, y], grad_idx=(0, 1))


def test_bce_clamps_log_like_torch():
    x = np.array([0.0, 1.0, 0.5, 1e-60])
    y = np.array([1.0, 0.0, 1.0, 1.0])
    close(
        sg.nn.functional.binary_cross_entropy(sg.tensor(x), sg.tensor(y), reduction="none"),
        torch.nn.functional.binary_cross_entropy(
            torch.tensor(x), torch.tensor(y), reduction="none"
        ),
    )
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        sg.nn.functional.binary_cross_entropy(sg.tensor([1.5]), sg.tensor([1.0]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "weight,pos_weight", [(False, False), (True, False), (False, True), (True, True)]
)
def test_bce_with_logits(reduction, weight, pos_weight):
    x = rng.standard_normal((4, 5)) * 4
    y = rng.random((4, 5))
    w = rng.random((4, 5)) + 0.5 if weight else None
    pw = rng.random(5) * 3 if pos_weight else None
    s = sg.nn.BCEWithLogitsLoss(
        weight=None if w is None else sg.tensor(w),
        pos_weight=None if pw is None else sg.tensor(pw),
        reduction=reduction,
    )
    t = torch.nn.BCEWithLogitsLoss(
        weight=None if w is None else torch.tensor(w),
        pos_weight=None if pw is None else torch.tensor(pw),
        reduction=reduction,
    )
    _run(s, t, [x, y], grad_idx=(0, 1))


def test_bce_with_logits_is_stable_for_large_logits():
    x = np.array([-800.0, 800.0, 0.0])
    y = np.array([1.0, 0.0, 0.5])
    _run(
        lambda a, b: sg.nn.functional.binary_cross_entropy_with_logits(a, b, reduction="none"),
        lambda a, b: torch.nn.functional.binary_cross_entropy_with_logits(a, b, reduction="none"),
        [x, y],
    )


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    x = torch.log_softmax(torch.tensor(rng.standard_normal((4, 5))), 1).numpy()
    p = rng.random((4, 5))
    p = p / p.sum(1, keepdims=True)
    if log_target:
        p = np.log(p)

    def s(a, b):
        return sg.nn.functional.kl_div(a, b, reduction=reduction, log_target=log_target)

    def t(a, b):
        return torch.nn.functional.kl_div(a, b, reduction=reduction, log_target=log_target)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _run(s, t, [x, p], (0, 1))
        if not log_target:  # a zero probability contributes 0 (torch's xlogy), not nan
            p[0, 0] = 0.0
            _run(s, t, [x, p], (0,))


def test_legacy_size_average_reduce():
    x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    with pytest.warns(UserWarning):
        s = sg.nn.functional.mse_loss(sg.tensor(x), sg.tensor(y), size_average=False)
    close(s, torch.nn.functional.mse_loss(torch.tensor(x), torch.tensor(y), reduction="sum"))
    with pytest.warns(UserWarning, match="reduction='none' instead"):
        assert sg.nn.MSELoss(reduce=False).reduction == "none"
    with pytest.warns(UserWarning, match="reduction='none' instead"):
        assert torch.nn.MSELoss(reduce=False).reduction == "none"


def test_loss_weight_is_a_buffer_like_torch():
    w = rng.random(3)
    s, t = (
        sg.nn.CrossEntropyLoss(weight=sg.tensor(w)),
        torch.nn.CrossEntropyLoss(weight=torch.tensor(w)),
    )
    assert list(s.state_dict()) == list(t.state_dict()) == ["weight"]
    s2, t2 = (
        sg.nn.BCEWithLogitsLoss(pos_weight=sg.tensor(w)),
        torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w)),
    )
    assert list(s2.state_dict()) == list(t2.state_dict())
    assert repr(s) == repr(t) == "CrossEntropyLoss()"


# ---------------------------------------------------------------- pairs, triplets, margins
def _signs(*shape):
    return rng.choice([-1.0, 1.0], shape)


X45, Y45 = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
PAIR_CASES = [
    ("CosineEmbeddingLoss", {}, [X45, Y45, _signs(4)], (0, 1)),
    ("CosineEmbeddingLoss", {"margin": 0.2}, [X45[0], Y45[0], np.array(-1.0)], (0, 1)),
    ("MarginRankingLoss", {"margin": 0.3}, [X45[:, 0], Y45[:, 0], _signs(4)], (0, 1)),
    ("HingeEmbeddingLoss", {"margin": 0.5}, [np.abs(X45), _signs(4, 5)], (0,)),
    ("SoftMarginLoss", {}, [X45, _signs(4, 5)], (0,)),
    ("MultiLabelSoftMarginLoss", {}, [X45, (Y45 > 0).astype(float)], (0, 1)),
    ("MultiMarginLoss", {}, [X45, rng.integers(0, 5, 4)], (0,)),
    ("MultiMarginLoss", {"p": 2, "margin": 0.7}, [X45, rng.integers(0, 5, 4)], (0,)),
    ("MultiMarginLoss", {}, [X45[0], np.array(3)], (0,)),
    ("MultiLabelMarginLoss", {}, [X45, np.array([[3, 0, -1, 1, 1]] * 2 + [[-1] * 5] * 2)], (0,)),
    ("MultiLabelMarginLoss", {}, [X45[1], np.array([4, 2, 2, -1, 0])], (0,)),
    ("TripletMarginLoss", {}, [X45, Y45, X45[::-1].copy()], (0, 1, 2)),
    ("TripletMarginLoss", {"p": 1, "swap": True, "margin": 2.0}, [X45, Y45, Y45 * 2], (0, 1, 2)),
    ("TripletMarginWithDistanceLoss", {"swap": True}, [X45, Y45, X45 + 0.1], (0, 1, 2)),
    ("GaussianNLLLoss", {}, [X45, Y45, rng.random((4, 5)) + 0.1], (0, 1, 2)),
    ("GaussianNLLLoss", {"full": True}, [X45, Y45, rng.random(4) + 0.1], (0, 2)),
    ("GaussianNLLLoss", {"eps": 0.5}, [X45, Y45, rng.random((4, 1))], (0, 2)),
    ("PoissonNLLLoss", {}, [X45, rng.poisson(2.0, (4, 5)).astype(float)], (0,)),
    (
        "PoissonNLLLoss",
        {"log_input": False, "full": True},
        [np.abs(X45) + 0.1, rng.poisson(2.0, (4, 5)).astype(float)],
        (0, 1),
    ),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "name, kwargs, inputs, grad_idx",
    PAIR_CASES,
    ids=[f"{c[0]} {i}" for i, c in enumerate(PAIR_CASES)],
)
def test_pair_and_likelihood_losses(name, kwargs, inputs, grad_idx, reduction):
    s, t = _both(name, reduction=reduction, **kwargs)
    _run(s, t, inputs, grad_idx)


def test_weighted_margin_losses():
    w = rng.random(5) + 0.5
    y = rng.integers(0, 5, 4)
    for name, target in (("MultiMarginLoss", y), ("MultiLabelSoftMarginLoss", Y45 > 0)):
        s = getattr(sg.nn, name)(weight=sg.tensor(w))
        t = getattr(torch.nn, name)(weight=torch.tensor(w))
        assert list(s.state_dict()) == list(t.state_dict()) == ["weight"]
        _run(s, t, [X45, target.astype(target.dtype if name == "MultiMarginLoss" else float)])


def test_triplet_with_a_distance_of_ones_own():
    def cosine_distance(lib):
        return lambda a, b: 1 - lib.nn.functional.cosine_similarity(a, b)

    s = sg.nn.TripletMarginWithDistanceLoss(distance_function=cosine_distance(sg), margin=0.5)
    t = torch.nn.TripletMarginWithDistanceLoss(distance_function=cosine_distance(torch), margin=0.5)
    _run(s, t, [X45, Y45, -X45], (0, 1, 2))


def test_gaussian_nll_takes_a_float_variance():
    _run(
        lambda a, b: sg.nn.functional.gaussian_nll_loss(a, b, 0.5),
        lambda a, b: torch.nn.functional.gaussian_nll_loss(a, b, 0.5),
        [X45, Y45],
        (0, 1),
    )


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda lib: lib.nn.MultiMarginLoss(p=3), ValueError),
        (lambda lib: lib.nn.TripletMarginLoss(margin=0), ValueError),
        (lambda lib: lib.nn.TripletMarginWithDistanceLoss(margin=-1.0), ValueError),
        (
            lambda lib: lib.nn.functional.gaussian_nll_loss(
                lib.zeros(4, 5), lib.zeros(4, 5), -lib.ones(4, 5)
            ),
            ValueError,
        ),
        (
            lambda lib: lib.nn.functional.gaussian_nll_loss(
                lib.zeros(4, 5), lib.zeros(4, 5), lib.ones(3)
            ),
            ValueError,
        ),
        (
            lambda lib: lib.nn.functional.cosine_embedding_loss(
                lib.zeros(4, 5), lib.zeros(4, 5), lib.ones(4, 5)
            ),
            RuntimeError,
        ),
        (
            lambda lib: lib.nn.functional.margin_ranking_loss(
                lib.zeros(4), lib.zeros(4, 1), lib.ones(4)
            ),
            RuntimeError,
        ),
        (
            lambda lib: lib.nn.functional.triplet_margin_loss(
                lib.zeros(4, 5), lib.zeros(5), lib.zeros(4, 5)
            ),
            RuntimeError,
        ),
    ],
    ids=[
        "multi margin p", "triplet margin", "triplet distance margin", "negative variance",
        "variance shape", "cosine target dims", "ranking dims", "triplet dims",
    ],
)  # fmt: skip
def test_pair_loss_errors_match_torch(call, error):
    messages = []
    for lib in (sg, torch):
        with pytest.raises(error) as info:
            call(lib)
        messages.append(str(info.value).replace("torch.Size", "shardgrad.Size"))
    assert messages[0] == messages[1]
