"""The GRU, for comparison with the LSTM: torch.nn.GRU's equations and layout.

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)        reset gate
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)        update gate
    n_t = tanh (W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn)) candidate
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

Gate order r, z, n in the rows of weight_ih (3H, I) and weight_hh (3H, H).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lstmkit.kernels import fused, reference, resolve_backend
from lstmkit.nn.recurrent import RecurrentLayer


def gru_step(x_term: Tensor, h_prev: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """One GRU step; x_term = W_i x_t + b_i: (B, 3H)."""
    h_term = torch.nn.functional.linear(h_prev, weight_hh, bias_hh)  # (B, 3H)
    x_r, x_z, x_n = x_term.chunk(3, dim=-1)
    h_r, h_z, h_n = h_term.chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h_prev


class SimpleRecurrentLayer(RecurrentLayer):
    """A layer with one state tensor h and no variants (GRU, RNN): reference or fused."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 *, backend: str = "auto") -> None:
        if backend == "native":
            raise ValueError(f"{type(self).__name__} has no native kernel; use 'auto', "
                             "'reference' or 'fused'")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, backend=backend)
        self.reset_parameters()

    def _weights(self) -> list[tuple[Tensor, ...]]:
        return [
            tuple(getattr(self, prefix + name, None)
                  for prefix in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            for name in self._names()
        ]

    def _run(self, x: Tensor, state: tuple[Tensor, ...], lengths: Tensor | None):
        backend = resolve_backend(self.backend, None, "no native kernel for this layer")
        kernel = getattr(fused if backend == "fused" else reference, self.kernel_name)
        args = (self.num_layers, self.bidirectional, self.dropout, self.training, lengths)
        if backend == "fused":
            output, h_n = kernel(x, state[0], self._weights(), self.bias, *args)
        else:
            output, h_n = kernel(x, state[0], self._weights(), *args)
        self._ran(backend)
        return output, (h_n,)


class GRU(SimpleRecurrentLayer):
    """Drop-in for torch.nn.GRU (same parameters and call), plus ``lengths=`` and ``backend``."""

    gate_count = 3
    kernel_name = "gru"
