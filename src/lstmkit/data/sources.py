"""Reading forecasting data: a CSV/TSV/Parquet file or a DataFrame, and where each row came from.

:func:`read_source` returns the table with a ``ROW`` column holding each row's
position in the source, and a :class:`Source` that turns positions into "line 12 of
data.csv" (text files) or "row 10 of the DataFrame", so every later message can point
at the cells it is about.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lstmkit.errors import LstmkitError

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
ROW = "__row__"  # column carrying each row's position in the source, for messages
INDEX_TIME = "__time__"  # name given to an unnamed DatetimeIndex turned into a column


class Source:
    """Where the data came from, so messages can point at file lines or frame rows."""

    def __init__(self, label: str, is_text_file: bool) -> None:
        self.label = label
        self.is_text_file = is_text_file

    def where(self, position: int) -> str:
        return self.where_all([position])

    def where_all(self, positions: Sequence[int]) -> str:
        """"lines 3, 4 of data.csv" for a text file, "rows 1, 2 of the DataFrame" otherwise."""
        # A text file's line = data position + 1 for the header + 1 for counting from 1.
        unit, offset = ("line", 2) if self.is_text_file else ("row", 0)
        plural = "s" if len(positions) > 1 else ""
        numbers = ", ".join(str(int(p) + offset) for p in positions)
        return f"{unit}{plural} {numbers} of {self.label}"


def read_source(source: str | os.PathLike | pd.DataFrame) -> tuple[pd.DataFrame, Source]:
    """The table (``ROW`` column added) and its :class:`Source`; refuses absent or empty input."""
    frame, src = _read(source)
    if isinstance(frame.index, pd.DatetimeIndex):
        # Keep a datetime index (a DataFrame's, or Parquet's written from one) as a column
        # so the same code path parses it.
        frame = frame.rename_axis(frame.index.name or INDEX_TIME).reset_index()
    frame[ROW] = np.arange(len(frame), dtype="float64")  # float: NaN marks inserted rows
    return frame, src


def _read(source: str | os.PathLike | pd.DataFrame) -> tuple[pd.DataFrame, Source]:
    if isinstance(source, pd.DataFrame):
        if source.empty:
            raise LstmkitError("the DataFrame has no rows; pass a frame with data.")
        return source.copy(), Source("the DataFrame", is_text_file=False)
    if not isinstance(source, (str, os.PathLike)):
        raise LstmkitError(
            f"cannot load data from a {type(source).__name__}; pass a file path or a "
            "pandas DataFrame."
        )
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LstmkitError(
            f"unsupported file type '{suffix or path.name}' for {path}; pass --data a file "
            f"ending in {', '.join(SUPPORTED_SUFFIXES)}."
        )
    if not path.is_file():
        raise LstmkitError(f"file not found: {path}; check the path (cwd is {Path.cwd()}).")
    if path.stat().st_size == 0:
        raise LstmkitError(f"{path} is empty (0 bytes); pass a file with a header and data.")
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except pd.errors.EmptyDataError as exc:
        raise LstmkitError(
            f"{path} has no data ({exc}); pass a file with a header and rows."
        ) from None
    except (OSError, ValueError) as exc:
        raise LstmkitError(f"could not read {path}: {exc}. Check that it is a valid "
                           f"{suffix[1:].upper()} file.") from exc
    if frame.empty:
        raise LstmkitError(f"{path} has a header but no data rows; add data rows.")
    return frame, Source(path.name, is_text_file=suffix not in (".parquet", ".pq"))


def require_columns(frame: pd.DataFrame, names: Sequence[str], label: str, hint: str) -> None:
    """Raise naming the first of ``names`` that ``frame`` lacks and the columns it has."""
    available = [str(c) for c in frame.columns if c != ROW]
    for name in names:
        if name not in frame.columns:
            raise LstmkitError(
                f"column '{name}' not found in {label}; available columns: "
                f"{', '.join(available)}. {hint}"
            )
