"""The sequence classifier network: (embedding) -> LSTM -> pooling over time -> head.

    x_t        = E[token_t]  (text)   or  the standardised values at step t (numbers)
    h_1 .. h_T = LSTM(x_1 .. x_T)      only the sequence's own T steps (``lengths=``)
    z          = pool(h_1 .. h_T)      last state, mean, max, or attention:
                 s_t = v . tanh(W_a h_t + b_a),  a = softmax(s over real steps),  z = sum a_t h_t
    y          = W z + b               one score (logit) per class

Padding never reaches ``z``: the LSTM stops each sequence at its length, and every
pooling masks the steps past it (attention gives them weight exactly 0).

Training minimises :class:`ClassificationLoss`, the cross-entropy of the scores y.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit.nn import LSTM, Attention
from lstmkit.tasks.classify.data import Batch

POOLINGS = ("last", "mean", "max", "attention")


def lstm_arguments_of(lstm: LSTM) -> dict[str, Any]:
    """The constructor arguments, but the input size, that rebuild ``lstm`` (JSON-ready)."""
    zoneout = list(lstm.zoneout) if any(lstm.zoneout) else 0.0
    return {
        "hidden_size": lstm.hidden_size,
        "num_layers": lstm.num_layers, "bias": lstm.bias, "dropout": lstm.dropout,
        "bidirectional": lstm.bidirectional, "proj_size": lstm.proj_size,
        "peephole": lstm.peephole, "layer_norm": lstm.layer_norm, "zoneout": zoneout,
        "recurrent_dropout": lstm.recurrent_dropout, "weight_drop": lstm.weight_drop,
        "forget_bias": lstm.forget_bias,
    }


@dataclass
class Pooled:
    """The pooled summary and, for attention pooling, the weight of each step."""

    features: Tensor  # (B, D)
    attention: Tensor | None  # (B, T), rows sum to 1 over real steps, 0 on padding


class SequenceClassifierNet(nn.Module):
    """Embedding (text) or raw features (numbers), LSTM, pooling, linear head.

    ``vocab_size`` set: inputs are token ids (B, T) with 0 as padding; otherwise
    inputs are values (B, T, input_size). ``lstm_arguments`` are lstmkit.nn.LSTM's
    constructor arguments (sizes and variants) but the input size.
    """

    def __init__(
        self,
        num_classes: int,
        lstm_arguments: dict[str, Any],
        pooling: str = "attention",
        vocab_size: int | None = None,
        embedding_dim: int | None = None,
        input_size: int | None = None,
        dropout: float = 0.0,
        attention_size: int = 64,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if (vocab_size is None) == (input_size is None):
            raise ValueError("give vocab_size (text) or input_size (numbers), not both")
        self.pooling = pooling
        if vocab_size is not None:
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
            features = embedding_dim
        else:
            self.embedding = None
            features = input_size
        self.encoder = LSTM(features, **lstm_arguments, batch_first=True)
        size = self.encoder.output_size
        # query-free additive attention (lstmkit.nn.attention): s_t = v . tanh(W_a h_t + b_a)
        self.attention = (Attention("additive", 0, size, attention_size)
                          if pooling == "attention" else None)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(size, num_classes)

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Class scores (B, C) for a padded batch with each sequence's length."""
        return self.head(self.dropout(self.encode(inputs, lengths).features))

    def encode(self, inputs: Tensor, lengths: Tensor) -> Pooled:
        """The pooled summary of each sequence, before the head."""
        # dropout on embeddings only: dropping raw numeric features would erase the signal
        x = self.dropout(self.embedding(inputs)) if self.embedding is not None else inputs
        outputs, (h_n, _) = self.encoder(x, lengths=lengths)  # x (B, T, F) -> (B, T, D)
        return self.pool(outputs, lengths, h_n)

    def pool(self, outputs: Tensor, lengths: Tensor, h_n: Tensor) -> Pooled:
        """The encoder's outputs (B, T, D) and final states h_n (L * D, B, P) -> summary."""
        T = outputs.shape[1]
        mask = torch.arange(T, device=outputs.device) < lengths.to(outputs.device)[:, None]
        if self.pooling == "attention":
            context, weights = self.attention(None, outputs, mask=mask)  # (B, 1, D), (B, 1, T)
            return Pooled(context[:, 0], weights[:, 0])
        if self.pooling == "last":
            # h_n (L * D, B, P): the top layer's D final states, each at its own end
            directions = self.encoder.num_directions
            top = h_n[-directions:]  # (D, B, P)
            return Pooled(top.transpose(0, 1).reshape(h_n.shape[1], -1), None)  # (B, D * P)
        if self.pooling == "mean":
            total = (outputs * mask[..., None]).sum(dim=1)
            return Pooled(total / lengths.to(outputs)[:, None], None)
        return Pooled(outputs.masked_fill(~mask[..., None], float("-inf")).amax(dim=1), None)


class ClassificationLoss:
    """Mean cross-entropy of the class scores, optionally weighted per class."""

    def __init__(self, class_weights: Tensor | None) -> None:
        self.class_weights = class_weights

    def __call__(self, model: SequenceClassifierNet, batch: Batch) -> Tensor:
        logits = model(batch.inputs, batch.lengths)
        weights = None if self.class_weights is None else self.class_weights.to(logits.device)
        return F.cross_entropy(logits, batch.targets, weight=weights)
