"""Labelled texts and labelled numeric sequences, read from CSV, JSONL or a DataFrame.

Files are checked before anything is learned from them, and every problem is an
:class:`LstmkitError` that says where it is: a byte that is not UTF-8 (its offset and
line), a missing column (with the columns there are), an empty text or a sequence
without steps (its row), a value column that mixes numbers and text (row and value).

Numeric sequences come in two layouts:

- long: one row per step, ``id_column`` says which sequence a row belongs to,
  ``step_column`` (optional) orders the steps, one or more ``value_columns`` hold the
  features, and the label repeats on every row of a sequence;
- one row per sequence: each value column holds the whole series, as a JSON list
  (JSONL) or numbers separated by spaces, commas or semicolons (CSV).

Labels are read as strings, whatever the file stored, so "1" in a CSV and 1 in a
JSONL file name the same class.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lstmkit.errors import LstmkitError

TableSource = str | Path | pd.DataFrame
"""A CSV/TSV/JSONL file path, or a DataFrame already in memory."""

_SEPARATORS = re.compile(r"[\s,;]+")
_SHOW = 5  # how many offending values a message lists
# Sequences are stored as float32 and standardised with float32 statistics, whose
# standard deviation squares the values. Up to 1e15 a square stays below 1e30, so sums
# over up to 3e8 steps stay below float32's largest number (3.4e38); larger values
# overflow to inf there (and 1e39 is inf in float32 already).
MAX_MAGNITUDE = 1e15


@dataclass
class LabelledTexts:
    """Texts and, when the table had a label column, one label per text."""

    texts: list[str]
    labels: list[str] | None


@dataclass
class LabelledSequences:
    """Numeric sequences, each (steps, features) float32, with their ids and labels."""

    sequences: list[np.ndarray]
    labels: list[str] | None
    ids: list[str]


# --------------------------------------------------------------------------- reading


def read_table(source: TableSource) -> pd.DataFrame:
    """A DataFrame of the file's cells as text (CSV) or JSON values (JSONL).

    The row index is what messages call "row": 1 for the first data row.
    """
    if isinstance(source, pd.DataFrame):
        frame = source.reset_index(drop=True)
    else:
        path = Path(source)
        text = read_utf8(path)
        suffix = path.suffix.lower()
        frame = _read_jsonl(text, path) if suffix in (".jsonl", ".ndjson") else _read_csv(
            text, path, "\t" if suffix == ".tsv" else ",")
    frame.index = range(1, len(frame) + 1)
    if frame.empty:
        raise LstmkitError(f"{_name(source)} has no data rows")
    return frame


def read_utf8(path: Path) -> str:
    """The file's text; a byte that is not UTF-8 is reported by offset, line and column."""
    if not path.is_file():
        raise LstmkitError(f"{path} does not exist; check the path")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise LstmkitError(
            f"{path} is not UTF-8 text: byte 0x{data[error.start]:02x} at byte offset "
            f"{error.start} (line {line}, byte {column} of the line) cannot be decoded; "
            "re-save the file as UTF-8"
        ) from None


def _read_csv(text: str, path: Path, separator: str) -> pd.DataFrame:
    try:
        # every cell as a string and "" for empty cells: values are checked column by
        # column below, where the message can name the row
        return pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise LstmkitError(f"{path} is empty; it needs a header row and data rows") from None
    except pd.errors.ParserError as error:
        raise LstmkitError(f"{path} is not a well-formed CSV file: {error}") from None


def _read_jsonl(text: str, path: Path) -> pd.DataFrame:
    records = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise LstmkitError(f"{path}, line {line_number}: not valid JSON ({error})") from None
        if not isinstance(record, dict):
            raise LstmkitError(
                f"{path}, line {line_number}: expected a JSON object per line, "
                f"got {type(record).__name__}"
            )
        records.append(record)
    if not records:
        raise LstmkitError(f"{path} holds no JSON records")
    return pd.DataFrame.from_records(records).astype(object)


def _name(source: TableSource) -> str:
    return "the DataFrame" if isinstance(source, pd.DataFrame) else str(source)


def check_columns(frame: pd.DataFrame, columns: Sequence[str], source: TableSource,
                  option: str = "") -> None:
    """Raise naming the missing columns and listing the ones there are."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise LstmkitError(
            f"{_name(source)} has no column {', '.join(map(repr, missing))}; its columns are "
            f"{', '.join(map(repr, map(str, frame.columns)))}"
            + (f" (choose with {option})" if option else "")
        )


def _label_column(frame: pd.DataFrame, column: str | None, required: bool,
                  source: TableSource) -> str | None:
    """The label column to read, or None when there is none to read."""
    if column is None or (not required and column not in frame.columns):
        return None
    check_columns(frame, [column], source, "--label-column")
    return column


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def read_labels(frame: pd.DataFrame, column: str, source: TableSource) -> list[str]:
    """One label per row as text; JSON numbers and strings may not be mixed."""
    values = frame[column].tolist()
    for row, value in zip(frame.index, values):
        if _is_missing(value):
            raise LstmkitError(f"{_name(source)}, row {row}: the label column {column!r} is empty")
        if isinstance(value, (list, dict)):
            raise LstmkitError(
                f"{_name(source)}, row {row}: the label {value!r} is not a single value")
    kinds = {isinstance(v, str) for v in values}
    if len(kinds) > 1:
        first_other = next(row for row, v in zip(frame.index, values)
                           if isinstance(v, str) != isinstance(values[0], str))
        raise LstmkitError(
            f"{_name(source)}: the label column {column!r} mixes text and numbers (row 1 is "
            f"{values[0]!r}, row {first_other} is {values[first_other - 1]!r}); use one type"
        )
    return [_label_text(v) for v in values]


def _label_text(value: object) -> str:
    # JSON 1.0 and 1 and CSV "1" should be one class
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------- texts


def load_texts(source: TableSource, text_column: str, label_column: str | None,
               label_required: bool = True) -> LabelledTexts:
    """Texts of ``text_column`` and, if ``label_column`` is given, their labels.

    Without ``label_required`` a missing label column just means no labels. An empty
    (or whitespace-only) text or a text cell that is not text is an error naming its row.
    """
    frame = read_table(source)
    check_columns(frame, [text_column], source, "--text-column")
    label_column = _label_column(frame, label_column, label_required, source)
    texts = frame[text_column].tolist()
    for row, text in zip(frame.index, texts):
        if not isinstance(text, str):
            if _is_missing(text):
                text = ""
            else:
                raise LstmkitError(
                    f"{_name(source)}, row {row}: the text column {text_column!r} holds "
                    f"{text!r}, not text"
                )
        if not text.strip():
            raise LstmkitError(
                f"{_name(source)}, row {row}: the text in column {text_column!r} is empty; "
                "remove the row or fill it in"
            )
    labels = read_labels(frame, label_column, source) if label_column else None
    return LabelledTexts(texts=texts, labels=labels)


# --------------------------------------------------------------------------- sequences


def load_sequences(
    source: TableSource,
    value_columns: Sequence[str],
    label_column: str | None,
    id_column: str | None = None,
    step_column: str | None = None,
    label_required: bool = True,
) -> LabelledSequences:
    """Numeric sequences in the long layout (``id_column`` given) or one row per sequence.

    Without ``label_required`` a missing label column just means no labels.
    """
    if not value_columns:
        raise LstmkitError("name at least one value column (--value-columns)")
    frame = read_table(source)
    check_columns(frame, value_columns, source, "--value-columns")
    for column, option in ((id_column, "--id-column"), (step_column, "--step-column")):
        if column is not None:
            check_columns(frame, [column], source, option)
    label_column = _label_column(frame, label_column, label_required, source)
    if id_column is None:
        if step_column is not None:
            raise LstmkitError("--step-column needs --id-column (the long layout): pass both")
        return _sequences_per_row(frame, value_columns, label_column, source)
    return _sequences_long(frame, value_columns, label_column, id_column, step_column, source)


def _numeric_column(frame: pd.DataFrame, column: str, source: TableSource) -> np.ndarray:
    """One number per row; an empty cell or a cell of text is an error naming the row."""
    values = frame[column]
    numbers_ = pd.to_numeric(values.map(_scalar_or_nan), errors="coerce").to_numpy(float)
    for row, number, value in zip(frame.index, numbers_, values):
        if math.isnan(number) or isinstance(value, bool):
            _raise_bad_value(source, row, column, value)
    return numbers_


def _scalar_or_nan(value: object) -> object:
    return value if isinstance(value, (str, numbers.Number)) else math.nan


def _raise_bad_value(source: TableSource, row: int, column: str, value: object) -> None:
    if _is_missing(value):
        raise LstmkitError(f"{_name(source)}, row {row}: column {column!r} has no value; "
                           "fill it in or drop the row")
    raise LstmkitError(
        f"{_name(source)}, row {row}: column {column!r} mixes value types: {value!r} is not "
        "a number; every value must be numeric"
    )


def _sequences_long(frame, value_columns, label_column, id_column, step_column, source):
    columns = [_numeric_column(frame, c, source) for c in value_columns]
    for column, numbers_ in zip(value_columns, columns):
        check_values(numbers_, source, column, lambda k: f"row {frame.index[k]}")
    values = np.stack(columns, axis=1)  # (rows, features)
    ids = frame[id_column].map(_label_text)
    labels = read_labels(frame, label_column, source) if label_column else None
    steps = _numeric_column(frame, step_column, source) if step_column else None
    if steps is not None:  # steps only order the rows: any finite number will do
        check_values(steps, source, step_column, lambda k: f"row {frame.index[k]}", np.inf)
    sequences, sequence_labels, sequence_ids = [], [] if labels else None, []
    # groups in order of first appearance: the file's order is the user's order
    for sequence_id, positions in ids.groupby(ids, sort=False).indices.items():
        if steps is not None:
            order = np.argsort(steps[positions], kind="stable")
            positions = positions[order]
            repeated = np.diff(steps[positions]) == 0
            if repeated.any():
                raise LstmkitError(
                    f"{_name(source)}: sequence {sequence_id!r} has step "
                    f"{steps[positions][1:][repeated][0]:g} twice; steps must be unique"
                )
        sequences.append(values[positions].astype(np.float32))  # (steps, features)
        sequence_ids.append(sequence_id)
        if labels:
            seen = {labels[p] for p in positions}
            if len(seen) > 1:
                raise LstmkitError(
                    f"{_name(source)}: sequence {sequence_id!r} has several labels "
                    f"({', '.join(sorted(seen))}); a sequence takes one label"
                )
            sequence_labels.append(seen.pop())
    return LabelledSequences(sequences, sequence_labels, sequence_ids)


def _sequences_per_row(frame, value_columns, label_column, source):
    parsed = {c: [_parse_series(frame.at[row, c], row, c, source) for row in frame.index]
              for c in value_columns}
    for column, series in parsed.items():
        ends = np.cumsum([len(s) for s in series])  # item k is in sequence searchsorted(k)

        def where(k: int, ends: np.ndarray = ends) -> str:
            sequence = int(np.searchsorted(ends, k, side="right"))
            item = k - (ends[sequence - 1] if sequence else 0)
            return f"row {frame.index[sequence]} item {item + 1}"

        check_values(np.concatenate(series), source, column, where)
    sequences = []
    for position, row in enumerate(frame.index):
        features = [parsed[c][position] for c in value_columns]
        lengths = {len(f) for f in features}
        if len(lengths) > 1:
            raise LstmkitError(
                f"{_name(source)}, row {row}: the value columns hold series of different "
                f"lengths ({', '.join(f'{c}: {len(f)}' for c, f in zip(value_columns, features))})"
            )
        sequences.append(np.stack(features, axis=1).astype(np.float32))  # (steps, features)
    labels = read_labels(frame, label_column, source) if label_column else None
    return LabelledSequences(sequences, labels, [str(row) for row in frame.index])


def _parse_series(cell: object, row: int, column: str, source: TableSource) -> np.ndarray:
    """A whole series from one cell: a JSON list, a string of numbers, or a single number."""
    if isinstance(cell, str):
        items = [item for item in _SEPARATORS.split(cell.strip()) if item]
    elif isinstance(cell, (list, tuple, np.ndarray)):
        items = list(cell)
    elif _is_missing(cell):
        items = []
    else:
        items = [cell]
    if not items:
        raise LstmkitError(
            f"{_name(source)}, row {row}: the sequence in column {column!r} has length zero; "
            "every sequence needs at least one step"
        )
    series = np.empty(len(items))
    for k, item in enumerate(items):
        try:
            if isinstance(item, bool) or not isinstance(item, (str, numbers.Number)):
                raise ValueError
            series[k] = float(item)
        except ValueError:
            raise LstmkitError(
                f"{_name(source)}, row {row}: column {column!r} mixes value types: item {k + 1} "
                f"of the sequence, {item!r}, is not a number"
            ) from None
    return series


def check_values(values: np.ndarray, source: TableSource, column: str,
                 where: Callable[[int], str], limit: float = MAX_MAGNITUDE) -> None:
    """Refuse values that are not finite numbers, then values larger than ``limit`` in size.

    ``where(k)`` says where value ``k`` stands ("row 3", "row 3 item 2"); the message
    names the first few.
    """
    finite = np.isfinite(values)
    problems = (
        (~finite, "value(s) that are not finite numbers",
         "every value must be a finite number: fix those cells or drop the rows"),
        (np.abs(np.where(finite, values, 0.0)) > limit,
         f"value(s) larger than {limit:g} in size",
         "values that large overflow when the sequences are standardised: express the "
         "column in larger units (divide it by a power of ten) or fix those values"),
    )
    for bad, what, fix in problems:
        positions = np.flatnonzero(bad)
        if len(positions):
            shown = ", ".join(f"{values[k]:g} at {where(int(k))}" for k in positions[:_SHOW])
            first = f"first {_SHOW}: " if len(positions) > _SHOW else ""
            raise LstmkitError(
                f"{_name(source)}: column {column!r} has {len(positions)} {what} "
                f"({first}{shown}); {fix}"
            )
