"""A classifier's examples: inputs as read, encoded examples and their padded batches,
frames of numeric steps, the order of labels and the stratified validation split."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

Examples = list[str] | list[np.ndarray]
"""Inputs as read: texts, or numeric sequences each (steps, features)."""


class ReadData(NamedTuple):
    inputs: Examples
    labels: list[str] | None
    ids: list[str] | None  # numbers read from a table: each sequence's id (or row)


class Batch(NamedTuple):
    inputs: Tensor  # (B, T) token ids, or (B, T, F) values
    lengths: Tensor  # (B,)
    targets: Tensor  # (B,), -1 where the label is unknown


class EncodedExamples(Dataset):
    """Encoded inputs (each a 1-D id tensor or a (T, F) tensor) with class indices."""

    def __init__(self, inputs: list[Tensor], targets: np.ndarray | None) -> None:
        self.inputs = inputs
        self.targets = torch.as_tensor(
            targets if targets is not None else np.full(len(inputs), -1), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.targets[index]


def collate(items: list[tuple[Tensor, Tensor]]) -> Batch:
    """Pad to the longest sequence of the batch (with 0, the padding id) and keep lengths."""
    inputs, targets = zip(*items)
    lengths = torch.tensor([len(x) for x in inputs])
    return Batch(pad_sequence(list(inputs), batch_first=True), lengths, torch.stack(targets))


def frames(series: np.ndarray, length: int) -> np.ndarray:
    """(T, F) -> (ceil(T / length), length * F): each row holds ``length`` consecutive steps.

    The last frame is completed by repeating the last step, so no zeros are invented.
    """
    T, F = series.shape
    count = math.ceil(T / length)
    if count * length > T:
        series = np.concatenate([series, np.repeat(series[-1:], count * length - T, axis=0)])
    return series.reshape(count, length * F)  # step t * length + k lands at [t, k * F:]


def natural_sort(labels: set[str]) -> list[str]:
    """Labels in numeric order when they are all numbers ("2" before "10"), else as text."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


MIN_VALIDATION_PER_CLASS = 2
"""Each class sends at least this many examples to a held-out validation split, so early
stopping and the best epoch see every class more than once (one example right or wrong
would decide them). A class gives at most a third of its examples to reach it."""


def stratified_split(targets: np.ndarray, fraction: float, seed: int,
                     min_per_class: int = MIN_VALIDATION_PER_CLASS
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation parts, ``fraction`` of each class held out.

    With ``fraction`` above 0 each class holds out at least ``min_per_class`` examples
    where it can spare them without losing more than a third of itself (a class of 36
    gives 4 at 0.1; one of 12 gives 2, not 1; one of 6 gives 2; one of 3 to 5 gives 1;
    one of 2 gives none), so a small set still validates on every class. Every class
    keeps at least one training example; a class too small to spare one has no
    validation examples.
    """
    generator = np.random.default_rng(seed)
    held_out = []
    for target in np.unique(targets):
        members = generator.permutation(np.flatnonzero(targets == target))
        take = int(round(fraction * len(members)))
        if fraction > 0:
            take = max(take, min(min_per_class, len(members) // 3))
        take = min(take, len(members) - 1)
        held_out.extend(members[:take].tolist())
    validation = np.sort(np.asarray(held_out, dtype=np.int64))
    training = np.setdiff1d(np.arange(len(targets)), validation)
    return training, validation
