"""Sampling the next token: the options checked, the probabilities to draw from
(temperature, top-k, top-p), and where a stop string may begin."""

from __future__ import annotations

import torch
from torch import Tensor

from lstmkit.errors import LstmkitError


def check_sampling(temperature: float, top_k: int | None, top_p: float | None,
                   max_tokens: int) -> None:
    if not temperature > 0:
        raise LstmkitError(f"temperature must be above 0, got {temperature}; use a small "
                           "value such as 0.1 or top_k=1 for (nearly) greedy text")
    if top_k is not None and top_k < 1:
        raise LstmkitError(f"top_k must be at least 1 (1 is greedy), got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise LstmkitError(f"top_p must lie in (0, 1], got {top_p}")
    if max_tokens < 1:
        raise LstmkitError(f"max_tokens must be at least 1, got {max_tokens}")


def next_token_probabilities(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                             top_p: float | None = None) -> Tensor:
    """(V,) logits -> (V,) probabilities to sample from: logits / temperature, only the
    ``top_k`` likeliest tokens, only the smallest set whose mass reaches ``top_p``."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth_largest = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    probabilities = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1:
        ranked, order = probabilities.sort(descending=True)
        mass_before = ranked.cumsum(0) - ranked
        ranked = ranked.masked_fill(mass_before >= top_p, 0.0)
        probabilities = torch.zeros_like(probabilities).scatter(0, order, ranked)
        probabilities = probabilities / probabilities.sum()
    return probabilities


def stop_prefix_length(text: str, stop: str) -> int:
    """Length of the longest end of ``text`` that may be the start of ``stop``."""
    for k in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:k]):
            return k
    return 0
