"""The loop's mean gradient in its own buffers: the same bytes as the plain tree sum divided
by the batch size, for any split of the micro-shards; the workers' blocks untouched; a few
buffers reused, not one per step."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "worker"))
from test_reduction import _leaves, _reference, _worker_blocks, assignments  # noqa: E402

from shardgrad.service.gradients import GradientMean  # noqa: E402


def _blocks(k: int, owner: list[int], seed: int) -> dict:
    leaves = _leaves(k, seed)
    blocks: dict = {}
    for w in set(owner):
        blocks.update(_worker_blocks([i for i in range(k) if owner[i] == w], k, leaves))
    return blocks, leaves


@settings(max_examples=60, deadline=None)
@given(assignments)
def test_equals_the_tree_sum_divided_bit_for_bit_and_leaves_the_blocks_alone(case):
    k, owner, seed = case
    blocks, leaves = _blocks(k, owner, seed)
    before = {key: b.tobytes() for key, b in blocks.items()}
    for b in blocks.values():
        b.setflags(write=False)  # a worker's shared segment or a received message
    mean = GradientMean(9, np.float32)
    got = mean(blocks, k, 37)
    expected = _reference(k, leaves) / np.float32(37)
    assert got.dtype == np.float32 and got.tobytes() == expected.tobytes()
    assert {key: b.tobytes() for key, b in blocks.items()} == before
    assert not any(np.shares_memory(got, b) for b in blocks.values())


def test_buffers_are_reused_across_steps_and_bounded_by_the_tree():
    k = 64
    mean = GradientMean(9, np.float32)
    mean(_blocks(k, list(range(k)), 1)[0], k, 5)  # 64 one-leaf blocks: the deepest tree
    held = list(mean._buffers)
    assert len(held) <= 8  # depth 6, plus the one the sum lands in
    blocks, leaves = _blocks(k, [0] * 32 + [1] * 32, 2)
    second = mean(blocks, k, 5)
    assert mean._buffers == held and any(second is b for b in held)
    assert second.tobytes() == (_reference(k, leaves) / np.float32(5)).tobytes()


def test_a_single_block_is_copied_not_divided_in_place():
    block = np.arange(9, dtype=np.float64)
    got = GradientMean(9, np.float64)({(3, 0): block}, 8, 4)
    assert np.array_equal(block, np.arange(9)) and got.tobytes() == (block / 4.0).tobytes()


def test_blocks_that_do_not_partition_the_micro_shards_are_refused():
    with pytest.raises(ValueError, match="covered by no block"):
        GradientMean(9, np.float32)({(0, 0): np.zeros(9, np.float32)}, 2, 2)


@pytest.mark.parametrize(
    "a, b",
    [(3e38, 3e38), (-3e38, -3e38), (np.inf, -np.inf)],
    ids=["overflow", "negative-overflow", "inf-minus-inf"],
)
def test_an_addition_that_overflows_gives_none(a, b):
    """Every block may be finite and their sum still not: the loop must hear of it."""
    blocks = {(0, 0): np.full(9, a, np.float32), (0, 1): np.full(9, b, np.float32)}
    assert GradientMean(9, np.float32)(blocks, 2, 2) is None


def test_non_finite_blocks_carry_through_for_the_loop_to_find():
    blocks = {(0, 0): np.full(9, np.nan, np.float32), (0, 1): np.ones(9, np.float32)}
    got = GradientMean(9, np.float32)(blocks, 2, 2)
    assert got is not None and np.isnan(got).all()
