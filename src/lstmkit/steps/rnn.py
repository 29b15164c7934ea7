"""The plain tanh RNN step, for comparison: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)."""

from __future__ import annotations

import torch
from torch import Tensor


def rnn_step(x_term: Tensor, h_prev: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """One step; x_term = W_ih x_t + b_ih: (B, H)."""
    return torch.tanh(x_term + torch.nn.functional.linear(h_prev, weight_hh, bias_hh))
