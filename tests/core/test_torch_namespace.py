"""torch's top-level names beyond the ops: nn.functional ops under torch.*, with torch's
argument orders and integer reduction codes; dtype introspection; real-only identities;
threads, buffers and DLPack. Each against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import shardgrad as sg

RNG = np.random.default_rng(0)
X3 = RNG.standard_normal((2, 4, 9))
W1 = RNG.standard_normal((3, 4, 3))
X4 = RNG.standard_normal((2, 4, 6, 6))
X5 = RNG.standard_normal((1, 2, 4, 4, 4))
W3 = RNG.standard_normal((3, 2, 2, 2, 2))
BILINEAR = RNG.standard_normal((2, 9, 9))
THETA = RNG.standard_normal((2, 2, 3))


def _both(fn):
    return [fn(lib) for lib in (sg, torch)]


def _close(ours, theirs):
    if isinstance(theirs, (tuple, list)):
        for a, b in zip(ours, theirs):
            _close(a, b)
        return
    np.testing.assert_allclose(
        np.asarray(ours.detach().numpy()), theirs.detach().numpy(), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.conv1d(L.tensor(X3), L.tensor(W1), padding=1),
        lambda L: L.conv3d(L.tensor(X5), L.tensor(W3)),
        lambda L: L.conv_transpose1d(L.tensor(X3), L.tensor(W1.transpose(1, 0, 2).copy()), stride=2),
        lambda L: L.pixel_shuffle(L.tensor(X4), 2),
        lambda L: L.pixel_unshuffle(L.tensor(X4), 2),
        lambda L: L.channel_shuffle(L.tensor(X4), 2),
        lambda L: L.native_channel_shuffle(L.tensor(X4), 2),
        lambda L: L.pdist(L.tensor(X3[0])),
        lambda L: L.celu(L.tensor(X3), 0.5),
        lambda L: L.selu(L.tensor(X3)),
        lambda L: L.threshold(L.tensor(X3), 0.1, 20.0),
        lambda L: L.hardshrink(L.tensor(X3), 0.3),
        lambda L: L.max_pool1d(L.tensor(X3), 2),
        lambda L: L.max_pool1d_with_indices(L.tensor(X3), 3, 2),
        lambda L: L.max_pool3d(L.tensor(X5), 2),
        lambda L: L.avg_pool1d(L.tensor(X3), 3, 2, 1),
        lambda L: L.adaptive_avg_pool1d(L.tensor(X3), 4),
        lambda L: L.adaptive_max_pool1d(L.tensor(X3), 4),
        lambda L: L.group_norm(L.tensor(X4), 2),
        lambda L: L.rms_norm(L.tensor(X3), [9]),
        lambda L: L.bilinear(L.tensor(X3[0]), L.tensor(X3[1]), L.tensor(BILINEAR)),
        lambda L: L.constant_pad_nd(L.tensor(X3), [1, 2], 3.0),
        lambda L: L.embedding(L.tensor(X3[0]), L.tensor([[0, 3], [1, 1]])),
        lambda L: L.embedding(L.tensor(X3[0]), L.tensor([0, 3]), padding_idx=3),
        lambda L: L.batch_norm(
            L.tensor(X4), L.ones(4, dtype=L.float64), L.zeros(4, dtype=L.float64),
            L.zeros(4, dtype=L.float64), L.ones(4, dtype=L.float64), True, 0.1, 1e-5, True,
        ),
        lambda L: L.instance_norm(L.tensor(X4), None, None, None, None, True, 0.1, 1e-5, True),
        lambda L: L.affine_grid_generator(L.tensor(THETA), [2, 1, 4, 5], False),
        lambda L: L.kl_div(L.tensor(X3).log_softmax(-1), L.tensor(X3).softmax(-1), 2),
        lambda L: L.binary_cross_entropy_with_logits(L.tensor(X3), L.tensor(X3).sigmoid(), None, None, 0),
        lambda L: L.poisson_nll_loss(L.tensor(X3), L.tensor(np.abs(X3)), True, False, 1e-8, 1),
        lambda L: L.cosine_embedding_loss(L.tensor(X3[0]), L.tensor(X3[1]), L.tensor([1, -1, 1, -1]), 0.1, 1),
        lambda L: L.hinge_embedding_loss(L.tensor(X3), L.tensor(np.sign(X3)), 1.0, 2),
        lambda L: L.margin_ranking_loss(L.tensor(X3[0, 0]), L.tensor(X3[1, 0]), L.tensor(np.sign(X3[0, 1])), 0.2, 1),
        lambda L: L.triplet_margin_loss(L.tensor(X3[0]), L.tensor(X3[1]), L.tensor(X3[0] * 2), 1.0, 2, 1e-6, False, 1),
    ],
)  # fmt: skip
def test_functional_ops_at_the_top_match_torch(call):
    ours, theirs = _both(call)
    _close(ours, theirs)


def test_inplace_functional_forms():
    for name, args in [("celu_", (0.5,)), ("selu_", ()), ("threshold_", (0.1, 20.0))]:
        ours, theirs = _both(lambda L, n=name, a=args: getattr(L, n)(L.tensor(X3), *a))
        _close(ours, theirs)
    for lib in (sg, torch):
        x = lib.tensor(X3)
        assert lib.dropout_(x, 0.0, True) is x and lib.alpha_dropout_(x, 0.0, False) is x
        assert lib.feature_dropout(x, 0.0, True).shape == x.shape


def test_dtype_introspection_matches_torch():
    pairs = [
        (lambda L: L.tensor([1, 2]), 2.5), (lambda L: L.tensor([1, 2], dtype=L.int8), 300),
        (lambda L: L.tensor([1.0], dtype=L.float16), lambda L: L.tensor([1], dtype=L.int64)),
        (lambda L: L.tensor(True), lambda L: L.tensor([1], dtype=L.uint8)), (1, 2.0), (True, False),
        (3, 4),
    ]  # fmt: skip
    for a, b in pairs:
        ours, theirs = _both(
            lambda L, a=a, b=b: L.result_type(
                a(L) if callable(a) else a, b(L) if callable(b) else b
            )
        )
        assert str(ours).split(".")[-1] == str(theirs).split(".")[-1], (a, b)
    names = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]
    for x in names:
        for y in names:
            ours = sg.promote_types(getattr(sg, x), getattr(sg, y))
            assert (
                str(ours).split(".")[-1]
                == str(torch.promote_types(getattr(torch, x), getattr(torch, y))).split(".")[-1]
            )
            assert sg.can_cast(getattr(sg, x), getattr(sg, y)) == torch.can_cast(
                getattr(torch, x), getattr(torch, y)
            )
    for lib in (sg, torch):
        assert lib.is_floating_point(lib.ones(2)) and not lib.is_floating_point(lib.ones(2).long())
        assert not lib.is_complex(lib.ones(2)) and lib.is_signed(lib.ones(2).int())
        assert not lib.is_signed(lib.ones(2, dtype=lib.uint8))
        assert lib.is_nonzero(lib.tensor([2.0])) and not lib.is_nonzero(lib.tensor(0))
        with pytest.raises(RuntimeError, match="ambiguous"):
            lib.is_nonzero(lib.ones(2))
        assert lib.is_same_size(lib.ones(2, 3), lib.zeros(2, 3))
        x = lib.tensor([1.0, -2.0])
        for fn in ("conj", "conj_physical", "resolve_conj", "resolve_neg", "real"):
            assert getattr(lib, fn)(x).tolist() == [1.0, -2.0]
        assert not lib.is_conj(x) and not lib.is_neg(x)
        with pytest.raises(RuntimeError, match="non-complex"):
            lib.imag(x)


def test_threads_buffers_and_dlpack():
    before = sg.get_num_threads()
    sg.set_num_threads(1)
    assert sg.get_num_threads() == 1
    sg.set_num_threads(before)
    with pytest.raises(RuntimeError, match="positive"):
        sg.set_num_threads(0)
    buffer = bytearray(np.arange(4, dtype=np.float32).tobytes())
    t = sg.frombuffer(buffer, dtype=sg.float32, count=3, offset=4)
    assert t.tolist() == torch.frombuffer(buffer, dtype=torch.float32, count=3, offset=4).tolist()
    t[0] = 9.0  # shares the buffer's memory
    assert np.frombuffer(buffer, dtype=np.float32)[1] == 9.0
    from_torch = sg.from_dlpack(torch.arange(3.0))
    assert from_torch.tolist() == [0.0, 1.0, 2.0] and from_torch.dtype == sg.float32
    back = torch.from_dlpack(sg.to_dlpack(sg.tensor([1.0, 2.0])))
    assert back.tolist() == [1.0, 2.0]


def test_settings_and_small_forms_match_torch():
    x = np.random.default_rng(1).standard_normal((100, 2))
    results = []
    for lib in (sg, torch):
        hist, edges = lib.histogramdd(lib.tensor(x), bins=[3, 4], range=[-2.0, 2.0, -1.0, 1.0])
        lib.set_deterministic_debug_mode("warn")
        mode = lib.get_deterministic_debug_mode()
        lib.set_deterministic_debug_mode(0)
        lib.set_float32_matmul_precision("high")
        precision = lib.get_float32_matmul_precision()
        lib.set_float32_matmul_precision("highest")
        with pytest.raises(RuntimeError, match="linalg.matrix_rank"):
            lib.matrix_rank(lib.eye(2))
        results.append(
            (
                hist.tolist(),
                [np.round(e.numpy(), 12).tolist() for e in edges],
                mode,
                precision,
                lib.typename(lib.ones(2).long()).split(".")[-1],
                lib.get_device(lib.ones(1)),
                lib.vmap(lambda r: r.sum())(lib.ones(3, 2)).tolist(),
                lib.nonzero_static(lib.tensor([0, 2, 3]), size=3).tolist(),
            )
        )
    assert results[0] == results[1]
