"""Dropout masks shared by the recurrent layers: drawn once, reused across steps."""

from __future__ import annotations

import torch
from torch import Tensor


def dropout_mask(shape: tuple[int, ...], p: float, like: Tensor) -> Tensor | None:
    """An inverted-dropout mask: 0 with probability p, else 1 / (1 - p); None when p is 0."""
    if p == 0.0:
        return None
    keep = torch.full(shape, 1.0 - p, dtype=like.dtype, device=like.device)
    return torch.bernoulli(keep) / (1.0 - p)


def drop_connect(weight: Tensor, p: float) -> Tensor:
    """DropConnect: drop individual weights (Wan et al. 2013), one mask per call."""
    return weight * dropout_mask(tuple(weight.shape), p, weight)
