"""Pictures of a classifier: confusion matrices, where it looked, what its cells did.

- :func:`plot_confusion_matrix`: the model's confusion matrix beside the baseline's;
- :func:`plot_attention`: the attention weight of every token (or step);
- :func:`plot_cell_activations`: chosen cell units' state c_t at every token, a heatmap;
- :func:`write_inspection`: both pictures and one HTML page that colours the text itself.

Every file is written atomically.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lstmkit.io.files import atomic_write_text
from lstmkit.report.figures import plt, save_figure

if TYPE_CHECKING:
    from lstmkit.tasks.classify import Explanation
    from lstmkit.tasks.lifecycle import Evaluation

ATTENTION_FILE = "attention.png"
CELLS_FILE = "cells.png"
INSPECTION_FILE = "inspection.html"


def _token_width(count: int) -> float:
    """Figure width in inches that leaves each token label readable (within reason)."""
    return float(np.clip(0.28 * count + 1.5, 6.0, 40.0))


def plot_confusion_matrix(evaluation: Evaluation, path: str | Path,
                          title: str | None = None) -> Path:
    """Counts per (true, predicted) class, coloured by the share of each true class."""
    panels = list(evaluation.rows)  # the model, then the baseline
    classes = evaluation.details["classes"]
    size = max(3.5, 0.6 * len(classes) + 2.0)
    figure, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size),
                                squeeze=False)
    for axis, key in zip(axes[0], panels):
        scores = evaluation.rows[key]
        counts = np.asarray(evaluation.details["confusion"][key])
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        for (row, column), count in np.ndenumerate(counts):
            axis.text(column, row, str(count), ha="center", va="center",
                      color="white" if shares[row, column] > 0.5 else "black")
        axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        axis.set_yticks(range(len(classes)), classes)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(f"{evaluation.labels.get(key, key)}: accuracy "
                       f"{scores['accuracy']:.3f}, macro-F1 {scores['macro_F1']:.3f}",
                       fontsize=9)
    if title:
        figure.suptitle(title)
    return save_figure(figure, path)


def plot_attention(tokens: list[str], weights: np.ndarray, path: str | Path) -> Path:
    """One bar per token: how much of the pooled summary came from it (the bars sum to 1)."""
    figure, axis = plt.subplots(figsize=(_token_width(len(tokens)), 3.2))
    axis.bar(range(len(tokens)), weights, color="tab:orange")
    axis.set_xticks(range(len(tokens)), [_label(t) for t in tokens], rotation=90, fontsize=8)
    axis.set_xlim(-0.5, len(tokens) - 0.5)
    axis.set_ylabel("attention weight")
    axis.set_title("where the model looked")
    return save_figure(figure, path)


def plot_cell_activations(tokens: list[str], cells: np.ndarray, units: list[int],
                          path: str | Path) -> Path:
    """Heatmap of cell states (units x tokens), red positive, blue negative."""
    limit = float(np.abs(cells).max()) or 1.0
    figure, axis = plt.subplots(figsize=(_token_width(len(tokens)), 0.35 * len(units) + 1.6))
    image = axis.imshow(cells.T, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    axis.set_xticks(range(len(tokens)), [_label(t) for t in tokens], rotation=90, fontsize=8)
    axis.set_yticks(range(len(units)), [f"unit {u}" for u in units], fontsize=8)
    axis.set_title("cell state c_t of chosen units (top layer, forward)")
    figure.colorbar(image, ax=axis, fraction=0.02, pad=0.01)
    return save_figure(figure, path)


def _label(token: str) -> str:
    """A token as a tick label: spaces and line breaks made visible."""
    return token.replace(" ", "\u2423").replace("\n", "\\n") or "\u2205"


def write_inspection(explanation: Explanation, output_dir: str | Path) -> list[Path]:
    """Write the attention and cell pictures and an HTML page showing both on the text.

    Returns the paths written.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokens = explanation.tokens
    written = []
    if explanation.attention is not None:
        written.append(plot_attention(tokens, explanation.attention, output_dir / ATTENTION_FILE))
    written.append(plot_cell_activations(tokens, explanation.cells, explanation.units,
                                         output_dir / CELLS_FILE))
    page = output_dir / INSPECTION_FILE
    atomic_write_text(page, _page(explanation, [p.name for p in written]))
    return [*written, page]


def _page(explanation: Explanation, images: list[str]) -> str:
    joiner = explanation.joiner
    ranked = sorted(explanation.probabilities.items(), key=lambda item: -item[1])
    rows = "".join(f"<tr><td>{html.escape(c)}</td><td>{p:.4f}</td></tr>" for c, p in ranked)
    sections = [f"<h1>lstmkit classifier: {html.escape(ranked[0][0])}</h1>",
                f"<table><tr><th>class</th><th>probability</th></tr>{rows}</table>"]
    if explanation.attention is not None:
        weights = explanation.attention
        # colour relative to the largest weight so short and long texts read alike
        shades = weights / max(float(weights.max()), 1e-12)
        sections += ["<h2>Where the model looked (attention)</h2>",
                     _text(explanation.tokens, [f"255,140,0,{s:.3f}" for s in shades], weights,
                           joiner)]
    sections.append("<h2>Cell states per token</h2>")
    limit = float(np.abs(explanation.cells).max()) or 1.0
    for column, unit in enumerate(explanation.units):
        values = explanation.cells[:, column]
        sections.append(f"<p class='unit'>unit {unit}</p>")
        colours = [f"{'214,39,40' if v > 0 else '31,119,180'},{abs(v) / limit:.3f}"
                   for v in values]  # red positive, blue negative, as in cells.png
        sections.append(_text(explanation.tokens, colours, values, joiner))
    sections += [f"<p><img src='{html.escape(name)}' alt='{html.escape(name)}'></p>"
                 for name in images]
    style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto}"
             ".text{font-family:monospace;white-space:pre-wrap;line-height:1.8}"
             "td,th{padding:0 1em;text-align:left}.unit{margin:0.6em 0 0;color:#555}"
             "img{max-width:100%}")
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>lstmkit inspection"
            f"</title><style>{style}</style></head><body>{''.join(sections)}</body></html>\n")


def _text(tokens: list[str], colours: list[str], values: np.ndarray, joiner: str) -> str:
    """The tokens as text, each on its background colour, its value shown on hover."""
    spans = [f"<span title='{v:.4f}' style='background:rgba({c})'>{html.escape(t)}</span>"
             for t, c, v in zip(tokens, colours, values)]
    return f"<div class='text'>{joiner.join(spans)}</div>"
