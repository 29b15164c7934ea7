"""Recording the gates: f, i, g, o and c at every step, for inspection and heatmaps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor

GATE_NAMES = {"forget": "f", "input": "i", "output": "o"}
"""The three gates by name -> their keys in a recorded step."""


class GateTrace:
    """What record_gates collected: one entry per forward call.

    ``calls[n][k]`` is a dict of tensors "i", "f", "g", "o", "c" for layer and
    direction k (index layer * D + direction), each (T, B, H), or (B, T, H) when
    the layer is batch_first. ``last`` is the most recent call's list.
    """

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Tensor]]] = []

    def add(self, records: list[dict[str, Tensor]], batch_first: bool) -> None:
        if batch_first:
            records = [{k: t.transpose(0, 1) for k, t in r.items()} for r in records]
        self.calls.append(records)

    @property
    def last(self) -> list[dict[str, Tensor]]:
        if not self.calls:
            raise RuntimeError("nothing recorded: call the LSTM inside the record_gates block")
        return self.calls[-1]


@contextmanager
def record_gates(lstm) -> Iterator[GateTrace]:
    """Within the block, every call of ``lstm`` records its gates (on the reference kernel).

        with record_gates(lstm) as trace:
            lstm(x)
        forget = trace.last[0]["f"]    # (T, B, H) forget gate of layer 0
    """
    trace = GateTrace()
    previous = lstm._gate_recorder
    lstm._gate_recorder = trace
    try:
        yield trace
    finally:
        lstm._gate_recorder = previous


def top_layer_steps(trace: GateTrace, lstm, sequence: int = 0) -> dict[str, Tensor]:
    """The last recorded call's top layer, forward direction, for one sequence of the
    batch: "i", "f", "g", "o" and "c", each (T, H)."""
    top_forward = (lstm.num_layers - 1) * lstm.num_directions
    return {key: t[sequence] if lstm.batch_first else t[:, sequence]
            for key, t in trace.last[top_forward].items()}


def most_varying_units(cells: Tensor, count: int) -> list[int]:
    """The ``count`` units whose cell state (T, H) varies most over the steps, most first."""
    return cells.std(dim=0, correction=0).argsort(descending=True, stable=True)[:count].tolist()
