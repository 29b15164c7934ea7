"""Calendar features computed from the time index.

Each feature is a position within a cycle (month within the year, day within the
week, ...) encoded as a sine/cosine pair: the pair is bounded in [-1, 1] so it needs
no scaling, and it keeps the end of a cycle next to its start (December next to
January), which a plain 1..12 number would not.

Features (name: cycle, position counted from 0):
    month      month of the year, 12
    quarter    quarter of the year, 4
    week       ISO week of the year, 53
    dayofweek  day of the week (Monday 0), 7
    dayofmonth day of the month, length of that month
    dayofyear  day of the year, length of that year
    hour       hour of the day, 24

Defaults by frequency (``calendar=True``): monthly -> month; quarterly -> quarter;
weekly -> week; daily and business-daily -> dayofweek, dayofyear; hourly and finer ->
hour, dayofweek; anything coarser (yearly) -> none, since every step would look alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from lstmkit.errors import LstmkitError


def _month(t: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    return t.month.to_numpy() - 1, np.full(len(t), 12.0)


def _quarter(t: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    return t.quarter.to_numpy() - 1, np.full(len(t), 4.0)


def _week(t: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    return t.isocalendar().week.to_numpy(dtype="float64") - 1, np.full(len(t), 53.0)


def _dayofweek(t: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    return t.day_of_week.to_numpy(), np.full(len(t), 7.0)


def _dayofmonth(t: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    return t.day.to_numpy() - 1, t.days_in_month.to_numpy().astype("float64")


def _dayofyear(t: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    return t.day_of_year.to_numpy() - 1, np.where(t.is_leap_year, 366.0, 365.0)


def _hour(t: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    return t.hour.to_numpy(), np.full(len(t), 24.0)


# name -> (position, cycle length) per timestamp
CALENDAR_FEATURES: dict[str, Callable[[pd.DatetimeIndex], tuple[np.ndarray, np.ndarray]]] = {
    "month": _month,
    "quarter": _quarter,
    "week": _week,
    "dayofweek": _dayofweek,
    "dayofmonth": _dayofmonth,
    "dayofyear": _dayofyear,
    "hour": _hour,
}


def default_calendar_features(freq: str) -> list[str]:
    """The calendar features that vary usefully at frequency ``freq`` (see module doc)."""
    code = to_offset(freq).rule_code.split("-")[0]
    if code in ("MS", "ME", "BMS", "BME", "SMS", "SME"):
        return ["month"]
    if code in ("QS", "QE", "BQS", "BQE"):
        return ["quarter"]
    if code == "W":
        return ["week"]
    if code in ("D", "B", "C"):
        return ["dayofweek", "dayofyear"]
    if code in ("h", "bh", "cbh", "min", "s", "ms", "us", "ns"):
        return ["hour", "dayofweek"]
    return []


def resolve_calendar_features(calendar: bool | Sequence[str], freq: str) -> list[str]:
    """Turn the user's ``calendar`` option into a validated list of feature names."""
    if calendar is True:
        return default_calendar_features(freq)
    if calendar is False or calendar is None:
        return []
    names = [calendar] if isinstance(calendar, str) else list(calendar)
    for name in names:
        if name not in CALENDAR_FEATURES:
            raise LstmkitError(
                f"unknown calendar feature '{name}'; use any of "
                f"{', '.join(CALENDAR_FEATURES)}, or calendar=True for the defaults."
            )
    return names


def calendar_feature_names(features: Sequence[str]) -> list[str]:
    """Column names of the encoded features: ``<name>_sin``, ``<name>_cos`` per feature."""
    return [f"{name}_{part}" for name in features for part in ("sin", "cos")]


def calendar_features(times: pd.DatetimeIndex, features: Sequence[str]) -> np.ndarray:
    """Sine/cosine encoding of the calendar ``features`` at ``times``: (T, 2 * len(features))."""
    columns = []
    for name in features:
        position, cycle = CALENDAR_FEATURES[name](times)
        angle = 2.0 * np.pi * position / cycle
        columns += [np.sin(angle), np.cos(angle)]
    if not columns:
        return np.zeros((len(times), 0))
    return np.stack(columns, axis=-1).astype("float64")  # (T, 2K)
