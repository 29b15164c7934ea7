"""The long table every layout is turned into: one row per (series, time), values checked.

Columns: ``SERIES`` (the series name), ``TIME`` (parsed, see :mod:`lstmkit.data.time_axis`),
``TARGET``, the source's ``ROW`` and one column per covariate. Values must be numbers
(empty cells are missing values), finite, and at most ``MAX_MAGNITUDE`` in size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lstmkit.data.sources import ROW, Source, require_columns
from lstmkit.data.time_axis import format_time, parse_time
from lstmkit.errors import LstmkitError

SERIES = "__series__"
TIME = "__time__"
TARGET = "__target__"
SHOW = 5  # how many offending values a message lists
# Series are scaled in float64: the standard deviation and the RMSE square the values and
# sum the squares. Up to 1e150 a square stays below 1e300, so sums over up to 1e8 values
# stay below float64's largest number (1.8e308); larger values overflow to inf there, and
# are a unit or parsing mistake anyway.
MAX_MAGNITUDE = 1e150


def numeric_values(frame: pd.DataFrame, column: str, src: Source, role: str) -> pd.Series:
    """Numeric values of a column; empty cells become NaN, anything else unusable raises."""
    raw = frame[column]
    if pd.api.types.is_bool_dtype(raw):
        return raw.astype("float64")
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna()
    if not pd.api.types.is_numeric_dtype(raw):
        # Whitespace-only cells are empty, not bad values.
        bad &= raw.astype("string").str.strip().fillna("") != ""
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        count = int(bad.sum())
        raise LstmkitError(
            f"{role} column '{column}' must be numeric, but has {count} non-numeric "
            f"value(s), first {raw.iloc[position]!r} at {src.where(position)}; fix or "
            "empty those cells (empty cells are treated as missing values)."
        )
    values = values.astype("float64")
    _refuse_extremes(values, column, src, role)
    return values


def _refuse_extremes(values: pd.Series, column: str, src: Source, role: str) -> None:
    """Raise naming the first infinite values, then the first beyond ``MAX_MAGNITUDE``."""
    numbers = values.to_numpy()
    infinite = np.isinf(numbers)
    huge = np.abs(np.nan_to_num(numbers, posinf=0.0, neginf=0.0)) > MAX_MAGNITUDE
    problems = (
        (infinite, "infinite value(s)",
         "replace them with finite numbers, or empty those cells to treat them as missing "
         "values"),
        (huge, f"value(s) larger than {MAX_MAGNITUDE:g} in size",
         "values that large overflow when the series is scaled: express the column in "
         "larger units (divide it by a power of ten) or fix those values"),
    )
    for bad, what, fix in problems:
        if bad.any():
            positions = np.flatnonzero(bad)
            shown = ", ".join(f"{numbers[p]:g}" for p in positions[:SHOW])
            first = f"the first {SHOW} " if len(positions) > SHOW else ""
            raise LstmkitError(
                f"{role} column '{column}' has {len(positions)} {what} ({first}at "
                f"{src.where_all(positions[:SHOW])}: {shown}); {fix}."
            )


def long_table(
    frame: pd.DataFrame,
    src: Source,
    layout: str,
    target: str | Sequence[str] | None,
    time: str | Sequence[str],
    time_format: str | None,
    series_id: str | None,
    past_covariates: list[str],
    future_covariates: list[str],
) -> tuple[pd.DataFrame, str]:
    """One row per (series, time) with parsed time and checked values; and the target name."""
    time_columns = [time] if isinstance(time, str) else list(time)
    if layout == "wide":
        if series_id is not None or past_covariates or future_covariates:
            raise LstmkitError(
                "--layout wide (one column per series) takes no --series-id, "
                "--past-covariates or --future-covariates; reshape to long (series-id, "
                "time, target, covariate columns) to use them."
            )
        if target is None:
            series_columns = [c for c in frame.columns if c not in (*time_columns, ROW)]
        else:
            series_columns = [target] if isinstance(target, str) else list(target)
        require_columns(frame, series_columns, src.label, "Pass --target the series columns.")
        if not series_columns:
            raise LstmkitError(f"{src.label} has no series columns besides the time column.")
        times = parse_time(frame, time, time_format, src)
        pieces = [
            pd.DataFrame({
                SERIES: str(c),
                TIME: times,
                TARGET: numeric_values(frame, c, src, "series"),
                ROW: frame[ROW],
            })
            for c in series_columns
        ]
        return pd.concat(pieces, ignore_index=True), "value"

    if target is None:
        others = [c for c in frame.columns if c not in (*time_columns, series_id, ROW)]
        if len(others) != 1:
            raise LstmkitError(
                f"which column is the target? {src.label} has columns "
                f"{', '.join(map(str, others))}; pass --target one of them."
            )
        target = str(others[0])
    if not isinstance(target, str):
        raise LstmkitError(
            "the long layout takes one --target column; for one column per series "
            "pass --layout wide."
        )
    require_columns(frame, [target], src.label, "Pass --target one of them.")
    require_columns(frame, past_covariates + future_covariates, src.label,
                    "Pass --past-covariates and --future-covariates existing columns.")
    if series_id is not None:
        require_columns(frame, [series_id], src.label, "Pass --series-id one of them.")
    roles = [target, *past_covariates, *future_covariates]
    repeated = sorted({c for c in roles if roles.count(c) > 1})
    if repeated:
        raise LstmkitError(
            f"column(s) {repeated} are given more than one role (--target, "
            "--past-covariates, --future-covariates); give each column one role."
        )
    long = pd.DataFrame({
        SERIES: frame[series_id].astype("string").fillna("<empty>") if series_id else target,
        TIME: parse_time(frame, time, time_format, src),
        TARGET: numeric_values(frame, target, src, "target"),
        ROW: frame[ROW],
    })
    for c in past_covariates:
        long[c] = numeric_values(frame, c, src, "past covariate")
    for c in future_covariates:
        long[c] = numeric_values(frame, c, src, "future covariate")
    return long, target


def check_duplicates(long: pd.DataFrame, src: Source, time_hint: str) -> None:
    """Raise naming repeated times per series (first few) and their rows."""
    duplicated = long.duplicated([SERIES, TIME], keep=False)
    if not duplicated.any():
        return
    messages = []
    for name, group in long[duplicated].groupby(SERIES, sort=True):
        stamps = group.groupby(TIME)[ROW].apply(lambda rows: src.where_all(list(rows)))
        shown = "; ".join(f"{format_time(t)} at {w}" for t, w in list(stamps.items())[:SHOW])
        messages.append(f"series '{name}': {len(stamps)} repeated timestamp(s): {shown}")
    raise LstmkitError(
        "duplicate timestamps: " + " | ".join(messages) + time_hint + ". Keep one row "
        "per series and time, or pass --resample to aggregate rows that share a period."
    )
