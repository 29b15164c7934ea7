"""Batches of items of about the same size: little padding, and a new mix every epoch.

Translation batches pairs by tokens and speech batches recordings by frames; both cut
their batches here.
"""

from __future__ import annotations

import numpy as np

POOL_BATCHES = 50
"""Size-budgeted batches are cut from pools of about this many batches' worth of items,
sorted by size inside the pool: little padding, and still a new mix every epoch."""


def size_budgeted_batches(sizes: np.ndarray, order: np.ndarray, budget: int) -> list[np.ndarray]:
    """Global batches for one pass over ``order`` whose padded size (items x the largest
    item's size) stays within ``budget``: pools of consecutive items of ``order`` sorted by
    size and cut at the budget; the batches then go in the order of their earliest member
    in ``order`` (a shuffled order shuffles them)."""
    pool_size = max(1, int(POOL_BATCHES * budget / float(sizes.mean())))
    batches: list[np.ndarray] = []
    for start in range(0, len(order), pool_size):
        pool = order[start:start + pool_size]
        pool = pool[np.argsort(sizes[pool], kind="stable")]
        first, longest = 0, 0
        for end, index in enumerate(pool):
            longest_with = max(longest, int(sizes[index]))
            if longest_with * (end - first + 1) > budget:
                batches.append(pool[first:end])
                first, longest_with = end, int(sizes[index])
            longest = longest_with
        batches.append(pool[first:])
    position = np.zeros(len(sizes), dtype=np.int64)
    position[order] = np.arange(len(order))  # where each item sits in order
    batches.sort(key=lambda batch: int(position[batch].min()))
    return batches
