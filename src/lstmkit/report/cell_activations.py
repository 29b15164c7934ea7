"""The cell-activation view of Karpathy, Johnson & Fei-Fei (2015), "Visualizing and
Understanding Recurrent Networks": one LSTM unit's tanh(c_t) coloured over the text
it reads, blue at the unit's low values on the text, red at its high ones (2nd and
98th percentile: many units sit near +-1 most of the time, and their own range shows
what moves them). The HTML shows each value on hover.

Units are chosen by hand or found automatically: each unit's activation is correlated
(Pearson r, over the text's pieces) with signals of the text's structure that
:func:`text_features` reads off with a small scanner for code (Python-like quoting
and comments): being inside quotes, inside a comment, the bracket depth, the position
in the line and the line's indentation. The best unit for each signal is shown.

    pieces, activations = model.cell_activations(text)        # (T,) and (T, H)
    html, png = write_cell_activations(pieces, activations, "runs/pylm/inspect")
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_text

COLORMAP = "coolwarm"  # blue (low) .. grey (middle) .. red (high)
HTML_FILE = "cell_activations.html"
PNG_FILE = "cell_activations.png"


@dataclass(frozen=True)
class UnitView:
    """A unit to show and what the title says about it."""

    unit: int
    label: str


def text_features(text: str) -> dict[str, np.ndarray]:
    """Per character of ``text``: inside quotes (0/1), inside a comment (0/1), bracket
    depth, position in line (column) and the line's indentation."""
    n = len(text)
    quoted, commented, depth = np.zeros(n), np.zeros(n), np.zeros(n)
    delimiter: str | None = None  # the open string's quote: ' " ''' or \"\"\"
    in_comment, level, i = False, 0, 0
    while i < n:
        ch, step = text[i], 1
        if delimiter is not None:
            if ch == "\n" and len(delimiter) == 1:  # an unclosed one-line string ends here
                delimiter = None
            else:
                if ch == "\\":
                    step = 2
                elif text.startswith(delimiter, i):
                    step, delimiter = len(delimiter), None
                quoted[i:i + step] = 1
        elif in_comment:
            commented[i] = 1
            in_comment = ch != "\n"
        elif ch == "#":
            in_comment, commented[i] = True, 1
        elif ch in "'\"":
            delimiter = ch * 3 if text.startswith(ch * 3, i) else ch
            step = len(delimiter)
            quoted[i:i + step] = 1
        elif ch in "([{":
            level += 1
        elif ch in ")]}":
            level = max(level - 1, 0)
        depth[i:i + step] = level
        i += step
    column, indentation = np.zeros(n), np.zeros(n)
    start = 0
    for line in text.splitlines(keepends=True):
        stop = start + len(line)
        column[start:stop] = np.arange(len(line))
        indentation[start:stop] = len(line) - len(line.lstrip(" \t"))
        start = stop
    return {"inside quotes": quoted, "inside a comment": commented, "bracket depth": depth,
            "position in line": column, "line indentation": indentation}


def correlations(signal: np.ndarray, activations: np.ndarray) -> np.ndarray:
    """Pearson r of ``signal`` (T,) with every column of ``activations`` (T, H); 0 where
    either does not vary."""
    centred_signal = signal - signal.mean()
    centred = activations - activations.mean(axis=0)  # (T, H)
    scale = np.sqrt((centred_signal ** 2).sum() * (centred ** 2).sum(axis=0))  # (H,)
    covariance = centred_signal @ centred  # (H,)
    return np.divide(covariance, scale, out=np.zeros_like(covariance), where=scale > 0)


def find_interesting_units(pieces: Sequence[str], activations: np.ndarray) -> list[UnitView]:
    """For each structure signal that varies over the text, the not yet chosen unit
    whose activation correlates with it most strongly (either sign), strongest first."""
    text = "".join(pieces)
    starts = np.cumsum([0, *map(len, pieces)])[:-1]  # each piece's first character
    found: list[tuple[float, UnitView]] = []
    chosen: set[int] = set()
    for name, per_character in text_features(text).items():
        signal = per_character[np.minimum(starts, len(text) - 1)]
        if signal.std() == 0:
            continue
        r = correlations(signal, activations)
        r[list(chosen)] = 0.0
        unit = int(np.abs(r).argmax())
        chosen.add(unit)
        found.append((abs(r[unit]), UnitView(unit, f"unit {unit}: r = {r[unit]:+.2f} with "
                                                   f"{name}")))
    return [view for _, view in sorted(found, key=lambda pair: -pair[0])]


def chosen_units(units: Sequence[int], hidden_size: int) -> list[UnitView]:
    bad = [u for u in units if not 0 <= u < hidden_size]
    if bad:
        raise LstmkitError(f"units {bad} do not exist; the layer has units 0 .. {hidden_size - 1}")
    return [UnitView(u, f"unit {u}") for u in units]


def own_range(values: np.ndarray) -> tuple[float, float]:
    """The range the colours span: 2nd to 98th percentile, so that the few steps after
    the state starts from zero do not stretch it."""
    low, high = np.percentile(values, [2, 98])
    return float(low), float(max(high, low + 1e-6))


def scaled(values: np.ndarray) -> np.ndarray:
    """``values`` mapped to [0, 1] over :func:`own_range` (clipped)."""
    low, high = own_range(values)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def _colours(values: np.ndarray) -> list[str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps[COLORMAP]
    return [to_hex(cmap(v)) for v in scaled(values)]


def render_html(pieces: Sequence[str], activations: np.ndarray, views: Sequence[UnitView],
                title: str) -> str:
    """One block of text per unit, each piece's background its activation's colour."""
    sections = []
    for view in views:
        values = activations[:, view.unit]
        spans = "".join(
            f'<span style="background:{colour}" title="{value:+.3f}">{html.escape(piece)}</span>'
            for piece, value, colour in zip(pieces, values, _colours(values))
        )
        heading = "{} (blue {:+.2f} .. red {:+.2f})".format(view.label, *own_range(values))
        sections.append(f"<h2>{html.escape(heading)}</h2>\n<pre>{spans}</pre>")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em}"
        "pre{font-family:monospace;font-size:13px;line-height:1.35;white-space:pre-wrap}"
        "h2{font-size:15px;margin-top:2em}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p>tanh(c) of each unit after reading each piece, "
        "from blue (the unit's low values here) to red (its high ones); hover for the "
        "value.</p>\n"
        + "\n".join(sections) + "\n</body></html>\n"
    )


def _character_grid(pieces: Sequence[str], values: np.ndarray, max_lines: int,
                    max_columns: int) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """(lines, columns) activations (NaN where no character) and the visible characters."""
    grid = np.full((max_lines, max_columns), np.nan)
    characters = []
    line, column = 0, 0
    for piece, value in zip(pieces, values):
        for ch in piece:
            if line >= max_lines:
                return grid, characters
            if ch == "\n":
                grid[line, column:column + 1] = value
                line, column = line + 1, 0
                continue
            if column < max_columns:
                grid[line, column] = value
                if not ch.isspace():
                    characters.append((line, column, ch))
            column += 1
    return grid, characters


def render_png(pieces: Sequence[str], activations: np.ndarray, views: Sequence[UnitView],
               path: str | Path, title: str, max_lines: int = 24, max_columns: int = 100) -> None:
    """The same view as a picture: the text's first lines, one panel per unit."""
    from lstmkit.report.figures import plt, save_figure

    shown = "".join(pieces).split("\n")[:max_lines]
    lines, columns = len(shown), min(max_columns, max(len(line) for line in shown) + 1)
    size = (max(columns * 0.085, 4), len(views) * (lines * 0.15 + 0.5))  # inches
    figure, axes = plt.subplots(len(views), 1, squeeze=False, figsize=size)
    for axis, view in zip(axes[:, 0], views):
        values = activations[:, view.unit]
        grid, characters = _character_grid(pieces, scaled(values), lines, columns)
        axis.imshow(grid, cmap=COLORMAP, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        for row, column, ch in characters:
            axis.text(column, row, ch, ha="center", va="center", fontsize=6, family="monospace")
        axis.set_title("{}   (blue {:+.2f} .. red {:+.2f})".format(view.label, *own_range(values)),
                       fontsize=8, loc="left")
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(title, fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.35 / size[1]))  # leave 0.35 inch for the title
    save_figure(figure, path, dpi=130)


def write_cell_activations(pieces: Sequence[str], activations: np.ndarray,
                           out_dir: str | Path, units: Sequence[int] | None = None,
                           title: str = "LSTM cell activations") -> tuple[Path, Path]:
    """Write ``cell_activations.html`` and ``.png`` into ``out_dir`` for ``units`` (by
    default the interesting ones found automatically); returns their paths."""
    if units:
        views = chosen_units(units, activations.shape[1])
    else:
        views = find_interesting_units(pieces, activations)
        if not views:
            raise LstmkitError("the text has no structure to correlate units with (no quotes, "
                               "comments, brackets or line breaks); choose units yourself")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, png_path = out_dir / HTML_FILE, out_dir / PNG_FILE
    atomic_write_text(html_path, render_html(pieces, activations, views, title))
    render_png(pieces, activations, views, png_path, title)
    return html_path, png_path
