"""The gate explorer's view of one input: what the top layer's gates did at every step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from lstmkit.nn import GATE_NAMES, LSTM, record_gates

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
    top_forward = (lstm.num_layers - 1) * lstm.num_directions
    step_first = not lstm.batch_first
    recorded = {key: (t[:, 0] if step_first else t[0]).double().numpy()  # (T, H)
                for key, t in trace.last[top_forward].items()}
    cells = recorded["c"]
    units = np.sort(np.argsort(-cells.std(axis=0), kind="stable")[:max_units]).tolist()
    view: dict[str, Any] = {"units": units, "layer": lstm.num_layers - 1}
    for name, key in (*GATE_NAMES.items(), ("cell", "c")):
        view[name] = np.round(recorded[key][:, units], 4).tolist()
    return result, view
