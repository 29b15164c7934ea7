"""Learning curves: several named series on one set of axes, saved as a PNG.

Generic over what is plotted (test MSE against steps, validation loss against
epochs, ...): each series is a name and its (xs, ys); an optional horizontal
baseline marks what a trivial predictor scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from lstmkit.report.figures import plt, save_figure


def plot_curves(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    baseline: float | None = None,
    baseline_label: str = "baseline",
    logy: bool = False,
    title: str | None = None,
) -> Path:
    """Plot each series as a line, the baseline as a dashed line; writes path, returns it."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, (xs, ys) in series.items():
        axes.plot(list(xs), list(ys), label=name, linewidth=1.5)
    if baseline is not None:
        axes.axhline(baseline, color="black", linestyle="--", linewidth=1, label=baseline_label)
    if logy:
        axes.set_yscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if title:
        axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    return save_figure(figure, path)
