"""Helpers for padded batches of sequences of unequal length (time-major)."""

from __future__ import annotations

import torch
from torch import Tensor


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence within its own length; padding stays at the end.

    x: (T, B, ...). Applied twice it is the identity, so the backward direction of
    a bidirectional layer runs forward over the reversed batch and reverses back.
    """
    if lengths is None:
        return x.flip(0)
    T, B = x.shape[0], x.shape[1]
    steps = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    lengths = lengths.to(x.device).unsqueeze(0)  # (1, B)
    # position t of sequence b reads position lengths[b] - 1 - t while t < lengths[b]
    source = torch.where(steps < lengths, lengths - 1 - steps, steps)  # (T, B)
    index = source.view(T, B, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)


def active_mask(lengths: Tensor | None, T: int, like: Tensor) -> Tensor | None:
    """(T, B, 1) boolean: True where step t is inside sequence b."""
    if lengths is None:
        return None
    steps = torch.arange(T, device=like.device).unsqueeze(1)  # (T, 1)
    return (steps < lengths.to(like.device).unsqueeze(0)).unsqueeze(-1)
