"""SpeechNet: log-mel frames -> LSTM layers -> CTC log-probabilities per stacked frame.

    x_t = (m_t - mu) / sigma                      normalised log-mel frame (per bin)
    s_u = [x_(ku) ; x_(ku+1) ; ... ; x_(ku+k-1)]  k frames stacked into one step
    h_u = LSTM(s_1..s_U)                          bidirectional offline, forward streaming
    p(a | u) = softmax(W h_u + b)                 over the alphabet and CTC's blank (id 0)

Training minimises CTC (Graves et al. 2006): -log of the summed probability of every
frame labelling that collapses (repeats merged, blanks dropped) to the transcript.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit.nn import LSTM

State = tuple[Tensor, Tensor]


class SpeechNet(nn.Module):
    """Normalisation, frame stacking, an lstmkit LSTM stack and the CTC output layer."""

    def __init__(self, n_mels: int, stack: int, hidden_size: int, num_layers: int,
                 bidirectional: bool, vocabulary_size: int, dropout: float,
                 lstm_options: dict[str, Any]) -> None:
        super().__init__()
        self.stack = stack
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("deviation", torch.ones(n_mels))
        self.lstm = LSTM(n_mels * stack, hidden_size, num_layers, dropout=dropout,
                         bidirectional=bidirectional, **lstm_options)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_size * (2 if bidirectional else 1), vocabulary_size)

    def set_normalisation(self, frames: Tensor) -> None:
        """Per-bin mean and deviation of the training frames (N, n_mels)."""
        self.mean.copy_(frames.mean(0))
        self.deviation.copy_(frames.std(0).clamp_min(1e-3))

    def stacked(self, features: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Normalised frames (T, B, F) -> steps (ceil(T / k), B, k F). Frames past a
        recording's ``lengths`` and those that fill its last step are the mean frame
        (normalised zeros), so a recording's steps do not depend on its batch."""
        T, B, n_mels = features.shape
        x = (features - self.mean) / self.deviation
        if lengths is not None:
            inside = torch.arange(T).unsqueeze(1) < lengths  # (T, B)
            x = x * inside.unsqueeze(2)
        short = -T % self.stack
        if short:
            x = torch.cat([x, x.new_zeros(short, B, n_mels)])
        # (U, k, B, F) -> (U, B, k, F) -> (U, B, k F)
        return x.view(-1, self.stack, B, n_mels).transpose(1, 2).reshape(-1, B,
                                                                          self.stack * n_mels)

    def steps(self, frames: Tensor) -> Tensor:
        """Frame counts -> LSTM step counts."""
        return torch.div(frames + self.stack - 1, self.stack, rounding_mode="floor")

    def forward(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Padded frames (T, B, n_mels) and their counts (B,) -> CTC log-probabilities
        (U, B, V) and step counts (B,)."""
        steps = self.steps(lengths)
        hidden, _ = self.lstm(self.stacked(features, lengths), lengths=steps)  # (U, B, D H)
        return F.log_softmax(self.output(self.dropout(hidden)), dim=-1), steps

    def stream(self, stacked: Tensor, state: State | None) -> tuple[Tensor, State]:
        """Streaming (forward LSTM only): stacked steps (U, 1, k F) of one utterance,
        from ``state`` -> log-probabilities (U, V) and the state after them."""
        hidden, state = self.lstm(stacked, state)
        return F.log_softmax(self.output(hidden[:, 0]), dim=-1), state


def ctc_loss(model: SpeechNet, batch: tuple[Tensor, Tensor, Tensor, Tensor]) -> Tensor:
    """CTC per recording, divided by its transcript's length, averaged over the batch."""
    features, lengths, targets, target_lengths = batch
    log_probs, steps = model(features, lengths)
    return F.ctc_loss(log_probs, targets, steps, target_lengths, blank=0,
                      reduction="mean", zero_infinity=True)
