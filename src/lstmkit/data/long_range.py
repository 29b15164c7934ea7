"""Long-range dependency tasks: the adding problem, copying memory, sequential 8x8 digits.

- Adding problem (Hochreiter & Schmidhuber 1997, in the set-up of Arjovsky,
  Shah & Bengio 2016, "Unitary evolution recurrent neural networks", sec. 4.2):
  each step carries two numbers, a value drawn from U[0, 1] and a marker. Exactly
  two markers are 1: one at a position drawn uniformly from the first half
  [0, T/2), one from the second half [T/2, T). The target is the sum of the two
  marked values. The sum of two U[0, 1] has mean 1 and variance 1/6, so always
  predicting 1 scores MSE 1/6 ~ 0.167: the baseline.
- Copying memory (Arjovsky et al. 2016, sec. 4.1): symbols 0..7 are data, 8 is
  blank, 9 the delimiter. The input is 10 data symbols, T - 1 blanks, the
  delimiter, 10 blanks (T + 20 steps); the target is T + 10 blanks then the 10
  data symbols. A model without memory outputs blank and then guesses uniformly
  among 8 symbols: cross-entropy 10 log 8 / (T + 20) per step, the baseline.
- Digits: scikit-learn's bundled 8x8 digits (1797 images), pixels scaled to
  [0, 1] and read one per step in row order (64 steps of 1 feature), or in one
  fixed random permutation of the 64 positions (the "permuted" task).

Generators take a torch.Generator so a seed fixes every batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lstmkit.errors import LstmkitError

ADDING_BASELINE_MSE = 1.0 / 6.0

COPY_DATA_SYMBOLS = 8
COPY_BLANK = 8
COPY_DELIMITER = 9
COPY_ALPHABET = 10
COPY_LENGTH = 10

DIGITS_STEPS = 64
DIGITS_CLASSES = 10


def check_length(T: int, minimum: int = 1) -> int:
    """The sequence length (or delay) T as a positive int, or a LstmkitError saying why not."""
    if isinstance(T, bool) or not isinstance(T, int) or T < minimum:
        raise LstmkitError(f"the length T must be an integer >= {minimum}, got {T!r}")
    return T


def adding_batch(batch_size: int, T: int, generator: torch.Generator | None = None
                 ) -> tuple[Tensor, Tensor]:
    """Adding-problem sequences: inputs (B, T, 2) [value, marker], targets (B,)."""
    check_length(T, minimum=2)
    values = torch.rand(batch_size, T, generator=generator)
    half = T // 2
    first = torch.randint(0, half, (batch_size,), generator=generator)
    second = torch.randint(half, T, (batch_size,), generator=generator)
    markers = torch.zeros(batch_size, T)
    rows = torch.arange(batch_size)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    return torch.stack([values, markers], dim=-1), targets  # (B, T, 2), (B,)


def copy_batch(batch_size: int, T: int, generator: torch.Generator | None = None
               ) -> tuple[Tensor, Tensor]:
    """Copying-memory sequences of symbol ids: inputs (B, T + 20), targets (B, T + 20)."""
    check_length(T)
    data = torch.randint(0, COPY_DATA_SYMBOLS, (batch_size, COPY_LENGTH), generator=generator)
    inputs = torch.full((batch_size, T + 2 * COPY_LENGTH), COPY_BLANK, dtype=torch.long)
    inputs[:, :COPY_LENGTH] = data
    # the delimiter sits T steps after the last data symbol; the recall starts right after it
    inputs[:, COPY_LENGTH + T - 1] = COPY_DELIMITER
    targets = torch.full_like(inputs, COPY_BLANK)
    targets[:, -COPY_LENGTH:] = data
    return inputs, targets


def copy_baseline_cross_entropy(T: int) -> float:
    """Per-step cross-entropy of the memoryless strategy: 10 log 8 / (T + 20)."""
    check_length(T)
    return COPY_LENGTH * math.log(COPY_DATA_SYMBOLS) / (T + 2 * COPY_LENGTH)


@dataclass(frozen=True)
class DigitsSplit:
    """Digits as sequences: x (N, 64, 1) in [0, 1], y (N,) class ids; permutation of the steps."""

    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    permutation: Tensor | None


def load_digit_sequences(permuted: bool = False, seed: int = 0, test_fraction: float = 0.25
                         ) -> DigitsSplit:
    """scikit-learn's 8x8 digits, pixel by pixel, split stratified by class.

    The split is sklearn's train_test_split(stratify=labels, random_state=seed)
    with test_fraction of the 1797 images held out (450 at 0.25). The permuted
    task reorders the 64 steps by one permutation drawn from ``seed``, the same
    for every image, so the split and the permutation are fixed by the seed.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise LstmkitError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    digits = load_digits()
    pixels = digits.data.astype(np.float32) / 16.0  # (N, 64), sklearn's pixels run 0..16
    labels = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        pixels, labels, test_size=test_fraction, stratify=labels, random_state=seed
    )
    permutation = None
    if permuted:
        permutation = torch.randperm(DIGITS_STEPS, generator=torch.Generator().manual_seed(seed))

    def as_sequences(x: np.ndarray) -> Tensor:
        steps = torch.from_numpy(x)
        if permutation is not None:
            steps = steps[:, permutation]
        return steps.unsqueeze(-1)  # (N, 64, 1)

    return DigitsSplit(as_sequences(train_x), torch.from_numpy(train_y),
                       as_sequences(test_x), torch.from_numpy(test_y), permutation)
