"""The fixed reduction tree over a job's K micro-shards.

Floating-point addition is not associative, so the sum of K micro-shard gradients depends on
the order in which they are added. shardgrad fixes that order once per job: a pairwise tree
whose node (level l, index i) covers the micro-shards [i * 2**l, min((i + 1) * 2**l, K)) and
whose value is left child + right child (or the left child alone where the right one would
start at or past K). A worker holding any set of micro-shards returns the sums of the maximal
aligned blocks (tree nodes) entirely inside its set, each added up in the tree's order; the
coordinator completes the tree from those blocks in the same order. Every addition performed
is then the same addition of the same two operands whatever the assignment of micro-shards to
workers, so the result is bitwise identical for 1 worker, 3 workers, or a worker whose shards
were recomputed elsewhere.

This module knows nothing about arrays: `add` is passed in, and values can be numpy or cupy
arrays, or plain floats (per-shard losses are reduced with the same tree).
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")
Block = tuple[int, int]
"""A tree node as (level, index)."""


def tree_height(num_shards: int) -> int:
    """The root's level: the smallest L with 2**L >= K."""
    _check_k(num_shards)
    return (num_shards - 1).bit_length()


def root(num_shards: int) -> Block:
    return (tree_height(num_shards), 0)


def block_range(block: Block, num_shards: int) -> tuple[int, int]:
    """The micro-shards [start, stop) a node covers; ValueError for a node outside the tree."""
    level, index = block
    if level < 0 or index < 0 or level > tree_height(num_shards):
        raise ValueError(f"block {block} is not a node of the tree over {num_shards} micro-shards")
    start = index << level
    if start >= num_shards:
        raise ValueError(f"block {block} starts at micro-shard {start}, past K={num_shards}")
    return start, min((index + 1) << level, num_shards)


def maximal_blocks(shards: Iterable[int], num_shards: int) -> list[Block]:
    """The highest tree nodes whose micro-shards all lie in `shards`, in micro-shard order.

    They partition `shards`: every micro-shard of the set is in exactly one returned block.
    """
    _check_k(num_shards)
    given = list(shards)
    members = sorted(set(given))
    if len(members) != len(given):
        dupes = sorted({k for k in given if given.count(k) > 1})
        raise ValueError(f"micro-shards {dupes} are listed more than once")
    for k in members:
        if not 0 <= k < num_shards:
            raise ValueError(f"micro-shard {k} is outside [0, {num_shards})")
    out: list[Block] = []

    def visit(level: int, index: int) -> None:
        start, stop = index << level, min((index + 1) << level, num_shards)
        held = bisect_left(members, stop) - bisect_left(members, start)
        if held == stop - start:
            out.append((level, index))
        elif held:
            visit(level - 1, 2 * index)
            if (2 * index + 1) << (level - 1) < num_shards:
                visit(level - 1, 2 * index + 1)

    if members:
        visit(tree_height(num_shards), 0)
    return out


def reduce_block(
    block: Block,
    num_shards: int,
    get: Callable[[int, int], T | None],
    add: Callable[[T, T], T],
) -> T:
    """The value of `block`, in the tree's order.

    `get(level, index)` returns a node's value when it is known (a leaf computed by a worker, a
    block a worker sent), else None; unknown nodes are computed from their children as
    `add(left, right)`. `add` may write into its first argument: each value it receives is
    used exactly once.
    """
    block_range(block, num_shards)

    def value(level: int, index: int) -> T:
        known = get(level, index)
        if known is not None:
            return known
        if level == 0:
            raise KeyError(index)
        left = value(level - 1, 2 * index)
        if (2 * index + 1) << (level - 1) >= num_shards:
            return left
        return add(left, value(level - 1, 2 * index + 1))

    return value(*block)


def tree_sum(blocks: Mapping[Block, T], num_shards: int, add: Callable[[T, T], T]) -> T:
    """The sum of all K micro-shards from blocks that partition them (the coordinator's side).

    Raises ValueError when the blocks leave a micro-shard out or cover one twice.
    """
    used: set[Block] = set()

    def get(level: int, index: int) -> T | None:
        value = blocks.get((level, index))
        if value is not None:
            used.add((level, index))
        return value

    try:
        total = reduce_block(root(num_shards), num_shards, get, add)
    except KeyError as exc:
        raise ValueError(f"micro-shard {exc.args[0]} is covered by no block") from None
    unused = sorted(set(blocks) - used)
    if unused:
        raise ValueError(f"blocks {unused} overlap blocks that cover the same micro-shards")
    return total


def tree_sum_values(values: Iterable[float], add: Callable = operator.add) -> float:
    """The sum of one value per micro-shard (e.g. losses) in the tree's order."""
    leaves = list(values)
    k = len(leaves)
    return reduce_block(root(k), k, lambda level, i: leaves[i] if level == 0 else None, add)


def _check_k(num_shards: int) -> None:
    if not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"the number of micro-shards must be a positive int, got {num_shards!r}")
