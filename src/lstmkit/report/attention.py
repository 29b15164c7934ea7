"""The attention alignment of a translated sentence: one row per target piece, one
column per source piece, darker where the decoder looked (Bahdanau et al. 2015, fig. 3).

    alignment = translator.align("Open the file")           # or align(source, target)
    write_alignment(alignment, "runs/inspect")             # attention.png, attention.html

The HTML is a self-contained table (no script, no network) whose cells show each weight
on hover.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from lstmkit.io.files import atomic_path, atomic_write_text

PNG_FILE = "attention.png"
HTML_FILE = "attention.html"


def write_alignment(alignment, directory: str | Path) -> tuple[Path, Path]:
    """Write the alignment (a :class:`lstmkit.translate.Alignment`) as PNG and HTML into
    ``directory``; returns their paths."""
    directory = Path(directory)
    weights = alignment.weights.detach().cpu().numpy()  # (T, S)
    # a piece's leading space is shown as "▁" so that word starts stay visible
    sources = [p.replace(" ", "▁") for p in alignment.source_pieces]
    targets = [p.replace(" ", "▁") for p in alignment.target_pieces]
    png, page = directory / PNG_FILE, directory / HTML_FILE
    _write_png(weights, sources, targets, png, alignment.translation)
    atomic_write_text(page, _html(weights, sources, targets, alignment.translation))
    return png, page


def _write_png(weights: np.ndarray, sources: list[str], targets: list[str], path: Path,
               title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T, S = weights.shape
    figure, axes = plt.subplots(figsize=(max(4.0, 0.45 * S + 2), max(3.0, 0.4 * T + 1.5)))
    axes.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(S), sources, rotation=60, ha="right", fontsize=9)
    axes.set_yticks(range(T), targets, fontsize=9)
    axes.set_xlabel("source")
    axes.set_ylabel("translation")
    axes.set_title(title if len(title) < 70 else title[:67] + "...", fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)


def _html(weights: np.ndarray, sources: list[str], targets: list[str], title: str) -> str:
    head = "".join(f"<th class='s'>{html.escape(p)}</th>" for p in sources)
    rows = []
    for t, piece in enumerate(targets):
        cells = "".join(
            f"<td title='{html.escape(targets[t])} -> {html.escape(sources[s])}: "
            f"{weights[t, s]:.3f}' style='background: rgba(0,0,0,{weights[t, s]:.3f})'></td>"
            for s in range(len(sources)))
        rows.append(f"<tr><th>{html.escape(piece)}</th>{cells}</tr>")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>attention: {html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; }}
td {{ width: 1.6em; height: 1.6em; border: 1px solid #ddd; }}
th {{ font-weight: normal; text-align: right; padding-right: 0.4em; }}
th.s {{ writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; }}
</style></head>
<body><h1>Where the decoder looked</h1>
<p>Translation: {html.escape(title)}</p>
<p>Rows: the translation's pieces; columns: the source's; darker cells carry more
attention (hover for the weight).</p>
<table><tr><th></th>{head}</tr>
{chr(10).join(rows)}
</table></body></html>
"""
