"""The gate explorer's view of one input: what the top layer's gates did at every step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from lstmkit.nn import GATE_NAMES, LSTM, most_varying_units, record_gates, top_layer_steps

MAX_UNITS = 32
"""Units shown at most: the ones whose cell state varies most over the input."""


def gate_view(lstm: LSTM, run: Callable[[], Any], max_units: int = MAX_UNITS
              ) -> tuple[Any, dict[str, Any]]:
    """``run()`` with ``lstm``'s gates recorded -> (what it returned, the view).

    The view covers the first sequence of the batch in the top layer's forward
    direction: ``units`` (their indices) and "forget", "input", "output", "cell", each
    a list of steps holding one value per unit (JSON-ready, 4 decimals).
    """
    with torch.no_grad(), record_gates(lstm) as trace:
        result = run()
    recorded = {key: t.double() for key, t in top_layer_steps(trace, lstm).items()}  # (T, H)
    units = sorted(most_varying_units(recorded["c"], max_units))
    view: dict[str, Any] = {"units": units, "layer": lstm.num_layers - 1}
    for name, key in (*GATE_NAMES.items(), ("cell", "c")):
        view[name] = np.round(recorded[key][:, units].numpy(), 4).tolist()
    return result, view
