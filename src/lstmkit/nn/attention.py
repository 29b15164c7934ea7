"""Attention over a sequence of states, for any task that reads one sequence from another.

Given queries q (what is looked for) and keys k_s / values v_s (what is there, one per
position s of the attended sequence):

    score_s   = q . k_s                         "dot"      (Luong et al. 2015)
              = q . (W_a k_s)                   "general"  (Luong et al. 2015)
              = w . tanh(W_q q + W_k k_s)       "additive" (Bahdanau et al. 2015)
    alpha     = softmax over s of score_s       padded positions excluded
    context   = sum_s alpha_s v_s

A translation decoder asks with its hidden state and reads the encoder states; a
classifier or forecaster can pool a sequence by asking with a learned query.
:class:`SelfAttention` lets a sequence attend to itself (LSTM states refined by
multi-head self-attention, the combination the LSTM literature turned to).

Several queries per sequence (B, N, Dq) share one set of keys (B, S, Dk): the N
hypotheses of a beam search read their sentence's encoder states without copies.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

SCORES = ("dot", "general", "additive")


class Attended(NamedTuple):
    context: Tensor  # (B, N, Dv) the weighted sum of the values
    weights: Tensor  # (B, N, S) alpha, each row summing to 1 over the unpadded positions


class Attention(nn.Module):
    """Score queries against keys, softmax over positions, weigh the values.

    ``score``: "dot" (query and key sizes equal), "general" or "additive";
    ``attention_size`` is the hidden size of the additive score (default: query size).
    An additive score with ``query_size`` 0 asks no question: w . tanh(W_k k_s + b)
    pools a sequence by what its states say alone (a classifier's attention pooling);
    call it with ``query=None``. Call :meth:`prepare_keys` once per attended sequence
    and pass its result as ``prepared`` to every call that reads the same keys (a
    decoder's steps).
    """

    def __init__(self, score: str, query_size: int, key_size: int,
                 attention_size: int | None = None) -> None:
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"attention score must be one of {', '.join(SCORES)}, got {score!r}")
        if score == "dot" and query_size != key_size:
            raise ValueError(f"dot attention needs equal query and key sizes, got {query_size} "
                             f"and {key_size}; use 'general' or 'additive'")
        if score != "additive" and query_size == 0:
            raise ValueError(f"{score} attention needs a query; only 'additive' pools without")
        self.kind = score
        if score == "general":
            self.project = nn.Linear(key_size, query_size, bias=False)  # W_a
        elif score == "additive":
            size = attention_size or query_size
            self.project = nn.Linear(key_size, size, bias=True)  # W_k and the score's bias b
            self.query_map = nn.Linear(query_size, size, bias=False) if query_size else None
            self.score = nn.Linear(size, 1, bias=False)  # w

    def prepare_keys(self, keys: Tensor) -> Tensor:
        """The part of the score that depends on the keys alone: (B, S, Dk) -> (B, S, A)."""
        return keys if self.kind == "dot" else self.project(keys)

    def forward(self, query: Tensor | None, keys: Tensor, values: Tensor | None = None,
                mask: Tensor | None = None, prepared: Tensor | None = None) -> Attended:
        """query (B, N, Dq) (None: one query-free pooling, N = 1), keys (B, S, Dk), values
        (B, S, Dv) (default: the keys), mask (B, S) True where a position is real ->
        context (B, N, Dv), weights (B, N, S)."""
        values = keys if values is None else values
        prepared = self.prepare_keys(keys) if prepared is None else prepared  # (B, S, A)
        if self.kind == "additive":
            if query is None:
                hidden = torch.tanh(prepared).unsqueeze(1)  # (B, 1, S, A)
            else:  # (B, N, 1, A) + (B, 1, S, A) -> (B, N, S, A)
                hidden = torch.tanh(self.query_map(query).unsqueeze(2) + prepared.unsqueeze(1))
            scores = self.score(hidden).squeeze(-1)  # (B, N, S)
        else:
            scores = torch.bmm(query, prepared.transpose(1, 2))  # (B, N, S)
        if mask is not None:
            scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # exp(-inf) = 0 on padding
        return Attended(torch.bmm(weights, values), weights)

    def extra_repr(self) -> str:
        return f"score={self.kind!r}"


class SelfAttention(nn.Module):
    """One block of multi-head self-attention over a sequence, added to it and normalised:

        x <- LayerNorm(x + Dropout(MultiHeadAttention(x, x, x)))

    Padded positions are neither attended to nor changed in meaning (their outputs are
    whatever; callers mask them). torch's ``nn.MultiheadAttention`` does the heads.
    """

    def __init__(self, size: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if size % heads:
            raise ValueError(f"self-attention size {size} must be divisible by its {heads} heads")
        self.attention = nn.MultiheadAttention(size, heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(size)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x (B, S, D), mask (B, S) True where real -> (B, S, D)."""
        padding = None if mask is None else ~mask
        attended, _ = self.attention(x, x, x, key_padding_mask=padding, need_weights=False)
        return self.norm(x + self.dropout(attended))
