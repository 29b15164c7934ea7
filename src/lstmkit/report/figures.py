"""Matplotlib set up once for files (no screen), and figures saved atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)

from lstmkit.io.files import atomic_path  # noqa: E402

__all__ = ["plt", "save_figure"]


def save_figure(figure: plt.Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write figure as a PNG (temp file, then rename: a killed run leaves no half image)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return path
