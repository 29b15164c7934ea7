"""The plain tanh RNN layer, for comparison; its step is lstmkit.steps.rnn."""

from __future__ import annotations

from lstmkit.nn.gru import SimpleRecurrentLayer


class RNN(SimpleRecurrentLayer):
    """Drop-in for torch.nn.RNN with nonlinearity='tanh', plus ``lengths=`` and ``backend``."""

    gate_count = 1
    kernel_name = "rnn"
