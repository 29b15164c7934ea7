"""The GRU layer, for comparison with the LSTM: torch.nn.GRU's interface and layout.

Its step, under its equations, is lstmkit.steps.gru; SimpleRecurrentLayer here is
shared with the plain RNN.
"""

from __future__ import annotations

from torch import Tensor

from lstmkit.kernels import fused, reference, resolve_backend
from lstmkit.nn.recurrent import RecurrentLayer


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
