"""The mechanism picture: how the gradient of the loss reaches back through time.

One line per model and state, ||dLoss/dh_t|| (or ||dLoss/dc_t||) against t on a
log scale, as measured by lstmkit.tasks.long_range.hidden_state_gradient_norms.
A plain RNN's line falls exponentially going back from the loss at t = T; an
LSTM's cell-state line stays flat when its forget gates stay near 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lstmkit.report.curves import plot_curves


def plot_gradient_norms(norms: Mapping[str, np.ndarray], path: str | Path,
                        title: str | None = None) -> Path:
    """norms: label -> ||dLoss/dstate_t|| for t = 1..T; one log-scale line each, saved as PNG."""
    # a gradient that underflows to exactly 0 cannot sit on a log axis; show it at the float floor
    floor = float(np.finfo(np.float64).tiny)
    series = {
        label: (np.arange(1, len(values) + 1), np.maximum(np.asarray(values), floor))
        for label, values in norms.items()
    }
    return plot_curves(series, path, xlabel="time step t (the loss is read at t = T)",
                       ylabel="gradient norm ||dLoss/d state_t||", logy=True, title=title)
