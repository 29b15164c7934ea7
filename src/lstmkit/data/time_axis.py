"""The time axis of a series: reading the time column, formatting it, laying grids on it.

A time column (``--time``) holds one of three things:

dates
    anything :func:`pandas.to_datetime` reads, including whole numbers such as
    19580329 or 1990 (read as text, not as epoch seconds);
calendar parts
    several columns named year, quarter, month, day (``--time year quarter``);
    quarters map to the first day of the quarter;
step numbers
    whole numbers that are not dates, such as 0, 1, 2, ... or 1..N: a plain step
    index with no calendar.

Step series keep their step numbers as the time index (an int64 :class:`pandas.Index`),
so forecasts, reports and messages show steps. Code that needs a pandas frequency
alias (the season length, saved configurations) gets the alias of a synthetic
calendar the steps map onto: step k is k nanoseconds after an arbitrary origin, so
the alias is "ns" for steps of one ("5ns" for 0, 5, 10, ...). Nanoseconds have no
seasonal cycle, which is all a step index can claim; calendar features, ``--freq``
and ``--resample`` are refused for step series.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from lstmkit.data.sources import Source, require_columns
from lstmkit.errors import LstmkitError

TIME_PARTS = ("year", "quarter", "month", "day")
STEP_UNIT = "ns"  # the synthetic calendar of step series (module doc)
_NO_DATE_BELOW = 1000  # pandas reads no whole number below 1000 as a date (years have 4 digits)
_TIME_HELP = (
    "The time column must hold dates (e.g. 2024-01-31, 20240131 or 2024) or whole step "
    "numbers (0, 1, 2, ...); calendar parts go to --time as several columns, e.g. "
    "--time year quarter; dates written another way need --time-format, e.g. "
    "--time-format %d.%m.%Y."
)


def is_steps(times: pd.Index | pd.Series) -> bool:
    """True for a step-number time axis, False for dates."""
    return not pd.api.types.is_datetime64_any_dtype(times)


def format_time(stamp: object) -> str:
    """A time as people write it: a step number, or a date alone when the time is midnight."""
    if isinstance(stamp, (int, np.integer)):
        return str(int(stamp))
    stamp = pd.Timestamp(stamp)
    return str(stamp.date()) if stamp == stamp.normalize() else str(stamp)


def step_frequency(step: int) -> str:
    """The frequency alias of a step series whose steps are ``step`` apart."""
    return to_offset(f"{int(step)}{STEP_UNIT}").freqstr


def time_grid(first: object, last: object, freq: str) -> pd.Index:
    """Every time of the ``freq`` grid from ``first`` to ``last``, both included."""
    if isinstance(first, (int, np.integer)):
        return pd.Index(np.arange(first, last + 1, to_offset(freq).n), dtype="int64")
    return pd.date_range(first, last, freq=freq)


def future_times(times: pd.Index, freq: str, steps: int) -> pd.Index:
    """The ``steps`` times that follow the end of ``times`` on its ``freq`` grid."""
    if is_steps(times):
        return pd.Index(times[-1] + to_offset(freq).n * np.arange(1, steps + 1), dtype="int64")
    return pd.date_range(times[-1], periods=steps + 1, freq=freq)[1:]


def parse_time(
    frame: pd.DataFrame, time: str | Sequence[str], time_format: str | None, src: Source
) -> pd.Series:
    """The time of each row: datetime64, or int64 step numbers; raise naming a bad value."""
    if not isinstance(time, str):
        return _time_from_parts(frame, list(time), src)
    require_columns(frame, [time], src.label, "Pass --time with the time column.")
    raw = frame[time]
    if isinstance(raw.dtype, pd.PeriodDtype):
        return raw.dt.to_timestamp()
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
    else:
        whole = _whole_numbers(raw)
        text = raw.astype("Int64").astype("string") if whole else raw.astype("string")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # format-inference chatter
            parsed = pd.to_datetime(text, format=time_format, errors="coerce")
        if whole and time_format is None and _counts_steps(raw, parsed):
            return raw.astype("int64")
    bad = parsed.isna()
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        value = raw.iloc[position]
        value = value.item() if isinstance(value, np.generic) else value  # 5, not np.int64(5)
        what = "an empty time value" if pd.isna(value) else f"time value {value!r}"
        raise LstmkitError(
            f"could not parse {what} in column '{time}' at {src.where(position)}; fix the "
            f"value. {_TIME_HELP}"
        )
    return parsed


def _whole_numbers(raw: pd.Series) -> bool:
    """True for a numeric column whose values are all whole numbers (empty cells aside)."""
    if pd.api.types.is_bool_dtype(raw) or not pd.api.types.is_numeric_dtype(raw):
        return False
    present = raw.dropna()
    return bool(len(present)) and bool((present == present.round()).all())


def _counts_steps(raw: pd.Series, parsed: pd.Series) -> bool:
    """Whether whole numbers that are not all dates are a step index.

    They are when some lie below any year pandas reads or none reads as a date;
    otherwise they are dates with a bad value (19580332), which the caller names.
    """
    if raw.isna().any() or parsed.notna().all():
        return False
    return bool((raw < _NO_DATE_BELOW).any() or parsed.isna().all())


def _time_from_parts(frame: pd.DataFrame, columns: list[str], src: Source) -> pd.Series:
    """Build timestamps from calendar-part columns such as ``year`` and ``quarter``."""
    hint = "Pass --time one column, or calendar parts named year, quarter, month, day."
    require_columns(frame, columns, src.label, hint)
    parts: dict[str, pd.Series] = {}
    for column in columns:
        part = column.lower()
        if part not in TIME_PARTS:
            raise LstmkitError(
                f"time part column '{column}' is not one of {', '.join(TIME_PARTS)}. "
                f"{hint} Or add a date column to the data and pass it to --time."
            )
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            position = int(np.flatnonzero(bad.to_numpy())[0])
            raise LstmkitError(
                f"time part '{column}' has a non-integer value "
                f"{frame[column].iloc[position]!r} at {src.where(position)}; fix it."
            )
        parts[part] = values.astype("int64")
    if "year" not in parts:
        raise LstmkitError(f"time parts {columns} need a 'year' column. {hint}")
    if "quarter" in parts:
        if "month" in parts:
            raise LstmkitError("time parts: give --time either quarter or month, not both.")
        quarter = parts.pop("quarter")
        bad = ~quarter.between(1, 4)
        if bad.any():
            position = int(np.flatnonzero(bad.to_numpy())[0])
            raise LstmkitError(
                f"quarter must be 1..4; got {quarter.iloc[position]} at {src.where(position)}."
            )
        parts["month"] = (quarter - 1) * 3 + 1  # a quarter is labelled by its first month
    ymd = pd.DataFrame({
        "year": parts["year"], "month": parts.get("month", 1), "day": parts.get("day", 1)
    })
    parsed = pd.to_datetime(ymd, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise LstmkitError(
            f"time parts {dict(ymd.iloc[position])} at {src.where(position)} are not a "
            "valid date; fix them."
        )
    return parsed
