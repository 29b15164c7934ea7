"""Randomness as a function of (seed, position), so any point of a run can be replayed.

Instead of saving and restoring generator states, the loop derives every random
stream from the run's seed and where it is: the data order of epoch ``e`` from
``(seed, e)``, and the generators used by step ``s`` on process ``r`` (dropout, any
sampling in the loss) from ``(seed, s, r)``. A run resumed at any step therefore
draws exactly what the uninterrupted run drew, with nothing to save but the step.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch

# Tags keep the streams for data order and for steps apart even for equal numbers.
ORDER_STREAM = 0
STEP_STREAM = 1


def derive_seed(*parts: int) -> int:
    """Mix integers into a well-spread 63-bit seed (stable across platforms and runs)."""
    text = ",".join(str(int(part)) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def seed_everything(seed: int, device: torch.device | None = None) -> None:
    """Seed Python's, NumPy's and torch's global generators (CPU, and ``device``'s if CUDA).

    Uses the CPU generator directly: ``torch.manual_seed`` visits every backend and
    costs about 100 microseconds, too much to pay at every step.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed)
    if device is not None and device.type == "cuda":
        torch.cuda.manual_seed(seed)


def seed_step(seed: int, step: int, rank: int, device: torch.device) -> None:
    """Seed the global generators for optimizer step ``step`` on process ``rank``."""
    seed_everything(derive_seed(seed, STEP_STREAM, step, rank), device)


def epoch_order(size: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """Indices ``0..size-1`` in the order epoch ``epoch`` visits them."""
    if not shuffle:
        return np.arange(size)
    return np.random.default_rng(derive_seed(seed, ORDER_STREAM, epoch)).permutation(size)
