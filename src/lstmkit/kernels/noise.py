"""The random masks of one forward call, drawn by the layer and shared by every kernel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from torch import Tensor


class LSTMNoise(NamedTuple):
    """Random masks drawn by the layer, so every kernel sees the same ones.

    Lists hold one entry per layer and direction (index layer * D + direction);
    time is indexed by processing step (the backward direction's step 0 is a
    sequence's last element).
    """

    recurrent: Sequence[Tensor | None]  # (B, P) dropout mask on h_{t-1}, already / (1 - p)
    zoneout_c: Sequence[Tensor | float]  # (T, B, H) 0/1 keep-previous mask, or p at evaluation
    zoneout_h: Sequence[Tensor | float]  # (T, B, P)
    between_layers: Sequence[Tensor | None]  # per layer but the last: (T, B, D * P), / (1 - p)


def no_noise(num_layers: int, num_directions: int) -> LSTMNoise:
    n = num_layers * num_directions
    return LSTMNoise([None] * n, [0.0] * n, [0.0] * n, [None] * (num_layers - 1))
