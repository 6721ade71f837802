"""The fixed reduction tree gives the same bytes however micro-shards are spread over workers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardgrad.worker import reduction


def _leaves(k: int, seed: int, size: int = 9) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # Wide magnitudes make float32 addition order-sensitive, so a wrong order shows up.
    return [
        (rng.standard_normal(size) * 10.0 ** rng.integers(-6, 7, size)).astype(np.float32)
        for _ in range(k)
    ]


def _add(a, b):
    return a + b


def _worker_blocks(shards: list[int], k: int, leaves: list[np.ndarray]) -> dict:
    """What one worker returns: each maximal block summed in tree order."""

    def get(level, index):
        return leaves[index].copy() if level == 0 else None

    def add_in_place(a, b):
        np.add(a, b, out=a)
        return a

    return {
        b: reduction.reduce_block(b, k, get, add_in_place)
        for b in reduction.maximal_blocks(shards, k)
    }


def _reference(k: int, leaves: list[np.ndarray]) -> np.ndarray:
    return reduction.tree_sum_values(leaves, _add)


assignments = st.integers(1, 40).flatmap(
    lambda k: st.tuples(
        st.just(k),
        st.lists(st.integers(0, 4), min_size=k, max_size=k),
        st.integers(0, 2**31),
    )
)


@settings(max_examples=50, deadline=None)
@given(assignments)
def test_any_assignment_gives_identical_bytes(case):
    k, owner, seed = case
    leaves = _leaves(k, seed)
    blocks: dict = {}
    for w in set(owner):
        mine = [i for i in range(k) if owner[i] == w]
        got = _worker_blocks(mine, k, leaves)
        assert not set(got) & set(blocks)
        blocks.update(got)
    total = reduction.tree_sum(blocks, k, _add)
    assert total.tobytes() == _reference(k, leaves).tobytes()


@settings(max_examples=50, deadline=None)
@given(assignments)
def test_recomputing_a_lost_workers_shards_elsewhere_gives_identical_bytes(case):
    k, owner, seed = case
    leaves = _leaves(k, seed)
    lost = owner[0]
    survivors = sorted(set(owner) - {lost}) or [lost + 1]
    blocks: dict = {}
    for w in set(owner) - {lost}:
        blocks.update(_worker_blocks([i for i in range(k) if owner[i] == w], k, leaves))
    orphans = [i for i in range(k) if owner[i] == lost]
    # The lost worker's shards are dealt round-robin to the survivors, as separate requests.
    for j in range(len(survivors)):
        blocks.update(_worker_blocks(orphans[j :: len(survivors)], k, leaves))
    total = reduction.tree_sum(blocks, k, _add)
    assert total.tobytes() == _reference(k, leaves).tobytes()


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 70).flatmap(lambda k: st.tuples(st.just(k), st.sets(st.integers(0, k - 1)))))
def test_maximal_blocks_partition_the_set_and_are_maximal(case):
    k, shards = case
    blocks = reduction.maximal_blocks(shards, k)
    covered = []
    for b in blocks:
        start, stop = reduction.block_range(b, k)
        covered.extend(range(start, stop))
        level, index = b
        if level < reduction.tree_height(k):
            p_start, p_stop = reduction.block_range((level + 1, index // 2), k)
            assert not set(range(p_start, p_stop)) <= shards, f"{b} is not maximal"
    assert covered == sorted(shards)


def test_blocks_of_a_contiguous_run():
    assert reduction.maximal_blocks(range(8), 8) == [(3, 0)]
    assert reduction.maximal_blocks([1, 2, 3, 4, 5], 8) == [(0, 1), (1, 1), (1, 2)]
    # K = 5: the tree's last node covers shard 4 alone at every level.
    assert reduction.maximal_blocks([4], 5) == [(2, 1)]
    assert reduction.maximal_blocks(range(5), 5) == [(3, 0)]
    assert reduction.maximal_blocks([0], 1) == [(0, 0)]


def test_order_matters_so_the_tree_is_not_a_formality():
    leaves = [np.float32(1e8), np.float32(1.0), np.float32(-1e8), np.float32(1.0)]
    left_to_right = ((leaves[0] + leaves[1]) + leaves[2]) + leaves[3]
    tree = reduction.tree_sum_values(leaves)
    assert tree == (leaves[0] + leaves[1]) + (leaves[2] + leaves[3])
    assert tree != left_to_right


def test_missing_and_overlapping_blocks_are_refused():
    leaves = _leaves(6, 0)
    blocks = _worker_blocks([0, 1, 2, 3], 6, leaves)
    with pytest.raises(ValueError, match="micro-shard 4 is covered by no block"):
        reduction.tree_sum(blocks, 6, _add)
    blocks.update(_worker_blocks([4, 5], 6, leaves))
    blocks[(0, 1)] = leaves[1]
    with pytest.raises(ValueError, match="overlap"):
        reduction.tree_sum(blocks, 6, _add)


def test_bad_shard_sets_are_refused():
    with pytest.raises(ValueError, match="outside"):
        reduction.maximal_blocks([8], 8)
    with pytest.raises(ValueError, match="more than once"):
        reduction.maximal_blocks([1, 1], 8)
    with pytest.raises(ValueError, match="positive"):
        reduction.maximal_blocks([0], 0)
    with pytest.raises(ValueError, match="past K"):
        reduction.block_range((1, 3), 6)
