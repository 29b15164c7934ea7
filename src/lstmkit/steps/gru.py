"""The GRU step, for comparison with the LSTM: torch.nn.GRU's equations and layout.

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)        reset gate
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)        update gate
    n_t = tanh (W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn)) candidate
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Gate order r, z, n in the rows of weight_ih (3H, I) and weight_hh (3H, H).
"""

from __future__ import annotations

import torch
from torch import Tensor


def gru_step(x_term: Tensor, h_prev: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """One GRU step; x_term = W_i x_t + b_i: (B, 3H)."""
    h_term = torch.nn.functional.linear(h_prev, weight_hh, bias_hh)  # (B, 3H)
    x_r, x_z, x_n = x_term.chunk(3, dim=-1)
    h_r, h_z, h_n = h_term.chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h_prev
