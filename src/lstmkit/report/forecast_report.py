"""The forecasting report: what a person looks at after training.

- forecast.png: history, actuals, the forecast and its prediction interval;
- training.png: training loss per epoch of every ensemble member;
- gates.png: forget, input and output gates and the cell state over the last
  input window (layer 1), one row per unit;
- report.html: the three pictures and the metrics table against the baselines.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lstmkit.io.files import atomic_write_text
from lstmkit.nn import record_gates
from lstmkit.report.curves import plot_curves
from lstmkit.report.figures import plt, save_figure

MAX_SERIES_PLOTTED = 4


def plot_forecast(history: pd.DataFrame, forecast: pd.DataFrame, path: str | Path,
                  actual: pd.DataFrame | None = None, context: int = 96) -> Path:
    """One panel per series (at most 4): the last ``context`` points, actuals, forecast.

    history/actual: columns series, time, value; forecast: predict()'s frame.
    """
    names = list(dict.fromkeys(forecast["series"]))[:MAX_SERIES_PLOTTED]
    figure, axes = plt.subplots(len(names), 1, figsize=(9, 3.2 * len(names)), squeeze=False)
    quantiles = sorted(c for c in forecast.columns if c.startswith("q"))
    for ax, name in zip(axes[:, 0], names):
        past = history[history["series"] == name].tail(context)
        ahead = forecast[forecast["series"] == name]
        ax.plot(past["time"], past["value"], color="black", linewidth=1.2, label="history")
        if actual is not None:
            truth = actual[actual["series"] == name]
            ax.plot(truth["time"], truth["value"], color="tab:green", linewidth=1.2,
                    label="actual")
        if len(quantiles) >= 2:
            low, high = quantiles[0], quantiles[-1]
            ax.fill_between(ahead["time"], ahead[low], ahead[high], color="tab:blue", alpha=0.2,
                            label=f"interval {low[1:]}-{high[1:]}")
        ax.plot(ahead["time"], ahead["forecast"], color="tab:blue", linewidth=1.5,
                label="forecast")
        ax.set_title(str(name))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_training(histories: list[list[dict[str, Any]]], path: str | Path) -> Path:
    """Training loss per epoch, one line per ensemble member."""
    curves = {
        f"member {k}": ([row["epoch"] for row in history], [row["train_loss"] for row in history])
        for k, history in enumerate(histories)
    }
    return plot_curves(curves, path, xlabel="epoch", ylabel="training loss (pinball)",
                       title="training")


@torch.no_grad()
def plot_gates(encoder, encoder_input: torch.Tensor, path: str | Path) -> Path:
    """Heatmaps of f, i, o and c (units x steps) of layer 1 for one input window (1, L, F)."""
    with record_gates(encoder) as trace:
        encoder(encoder_input)
    gates = trace.last[0]  # layer 1, forward direction; each (1, L, H) batch-first
    panels = [("f", "forget gate f"), ("i", "input gate i"), ("o", "output gate o"),
              ("c", "cell state c")]
    figure, axes = plt.subplots(1, 4, figsize=(14, 3.8))
    for ax, (key, title) in zip(axes, panels):
        values = gates[key][0].T.numpy()  # (H, L)
        if key == "c":
            bound = float(np.abs(values).max()) or 1.0
            image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound)
        else:
            image = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_title(title)
        ax.set_xlabel("step of the input window")
        ax.set_ylabel("unit")
        figure.colorbar(image, ax=ax, fraction=0.046)
    figure.tight_layout()
    return save_figure(figure, path)


def write_report_page(run_dir: str | Path, title: str, tables: dict[str, str],
                      images: list[str], notes: list[str] = ()) -> Path:
    """report.html: text tables (pre-formatted) and the PNGs beside it, in one page."""
    run_dir = Path(run_dir)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             "</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "img{max-width:100%;border:1px solid #ddd;margin:1em 0}pre{background:#f6f6f6;"
             "padding:1em}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{html.escape(note)}</p>" for note in notes]
    for heading, table in tables.items():
        parts.append(f"<h2>{html.escape(heading)}</h2><pre>{html.escape(table)}</pre>")
    for image in images:
        parts.append(f"<img src='{html.escape(image)}' alt='{html.escape(image)}'>")
    parts.append("</body></html>")
    path = run_dir / "report.html"
    atomic_write_text(path, "\n".join(parts))
    return path


def series_frame(data) -> pd.DataFrame:
    """ForecastData's targets as a long frame: series, time, value."""
    return pd.concat(
        [pd.DataFrame({"series": s.name, "time": s.time, "value": s.target}) for s in data.series],
        ignore_index=True,
    )
