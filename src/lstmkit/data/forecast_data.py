"""Validated forecasting data: :class:`TimeSeries` on a regular grid, :class:`ForecastData`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lstmkit.data.calendar import calendar_feature_names
from lstmkit.data.time_axis import format_time, is_steps


@dataclass(frozen=True)
class TimeSeries:
    """One validated series on a regular grid, free of missing values.

    ``time`` holds timestamps, or step numbers for a step series (see
    :mod:`lstmkit.data.time_axis`). ``future_time``/``future_ahead`` hold the
    future-known covariates given for times after the last observed target (the
    forecast horizon), if any.
    """

    name: str
    series_id: int
    time: pd.Index  # (T,) DatetimeIndex, or int64 step numbers
    target: np.ndarray  # (T,) float64
    past_covariates: np.ndarray  # (T, Fp) float64
    future_covariates: np.ndarray  # (T, Ff) float64
    future_time: pd.Index  # (K,) times after time[-1]
    future_ahead: np.ndarray  # (K, Ff) float64, may hold NaN where not given
    filled: dict[str, int] = field(default_factory=dict)  # column -> values interpolated
    inserted: int = 0  # times absent from the data, added by reindexing
    trimmed: int = 0  # leading/trailing rows without a target, dropped

    def __len__(self) -> int:
        return len(self.target)


@dataclass(frozen=True)
class ForecastData:
    """Validated series that share one frequency and one set of columns."""

    series: tuple[TimeSeries, ...]
    freq: str  # pandas alias, e.g. "MS", "W-SAT", "QS-OCT", "B"; "ns" for step series
    target: str
    past_covariates: tuple[str, ...] = ()
    future_covariates: tuple[str, ...] = ()
    calendar: tuple[str, ...] = ()  # calendar features, each giving a sin and cos column
    missing: str = "interpolate"

    @property
    def series_names(self) -> list[str]:
        """Series names in integer-id order (id i is ``series_names[i]``)."""
        return [s.name for s in self.series]

    @property
    def feature_names(self) -> list[str]:
        """Names of the per-step input features, in the order windows lay them out."""
        return (
            [self.target, *self.past_covariates, *self.future_covariates]
            + calendar_feature_names(self.calendar)
        )

    @property
    def future_feature_names(self) -> list[str]:
        """Names of the features known for the horizon steps."""
        return [*self.future_covariates, *calendar_feature_names(self.calendar)]

    def summary(self) -> str:
        """Human-readable lines: lengths, frequency and what was filled or trimmed."""
        grid = "step numbers" if is_steps(self.series[0].time) else f"frequency {self.freq}"
        lines = [f"{len(self.series)} series, {grid}, missing={self.missing}"]
        for s in self.series:
            notes = [f"{len(s)} points {format_time(s.time[0])}..{format_time(s.time[-1])}"]
            if s.filled:
                notes.append(
                    "filled " + ", ".join(f"{n} in {c}" for c, n in s.filled.items())
                )
            if s.inserted:
                notes.append(f"{s.inserted} absent timestamps inserted")
            if s.trimmed:
                notes.append(f"{s.trimmed} rows without target trimmed at the ends")
            if len(s.future_time):
                notes.append(f"{len(s.future_time)} future rows with known covariates")
            lines.append(f"  {s.name}: " + "; ".join(notes))
        return "\n".join(lines)
