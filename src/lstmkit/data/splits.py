"""Cutting series in time: training ends, rolling-origin backtests.

A cutoff is where training ends. As an int it is a slice stop: the first ``cutoff``
points train, and a negative int counts from the end (``-24`` holds out the last 24,
which suits several series of different lengths). As a timestamp (or a string
pandas parses) it is the last training timestamp, inclusive:
``"1958-12-01"`` trains on everything up to and including December 1958.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from lstmkit.data.forecast_data import ForecastData, TimeSeries
from lstmkit.data.time_axis import format_time, is_steps
from lstmkit.errors import LstmkitError

Cutoff = int | str | pd.Timestamp


def cutoff_position(series: TimeSeries, cutoff: Cutoff | None) -> int:
    """Number of training points of ``series`` for ``cutoff`` (None: all of it)."""
    length = len(series)
    if cutoff is None:
        return length
    span = (f"series '{series.name}' has {length} points ({format_time(series.time[0])}.."
            f"{format_time(series.time[-1])})")
    if isinstance(cutoff, (int, np.integer)) and not isinstance(cutoff, bool):
        position = int(cutoff) + length if cutoff < 0 else int(cutoff)
        if cutoff < 0 and position < 1:
            raise LstmkitError(
                f"holding out the last {-cutoff} points leaves none to train on: {span}; "
                f"hold out fewer (--holdout at most {length - 1}) or use a longer series."
            )
    elif is_steps(series.time):
        raise LstmkitError(
            f"cutoff {cutoff!r} is not a number of points, and {span} numbered by steps, "
            "not dates; give the cutoff as a number of points, e.g. 120 or -24."
        )
    else:
        try:
            stamp = pd.Timestamp(cutoff)
        except (TypeError, ValueError):
            raise LstmkitError(
                f"cutoff {cutoff!r} is neither a number of points nor a timestamp; pass "
                "e.g. 120, -24 or '1958-12-01'."
            ) from None
        position = int(series.time.searchsorted(stamp, side="right"))
    if not 1 <= position <= length:
        raise LstmkitError(
            f"cutoff {cutoff!r} leaves {position} training point(s), but {span}; choose a "
            "cutoff inside the series."
        )
    return position


def cut_series(series: TimeSeries, cutoff: Cutoff) -> tuple[TimeSeries, TimeSeries]:
    """Split at ``cutoff`` into (training part, held-out part).

    The held-out part's future-known covariates become the training part's known
    future, so a forecast from the cutoff sees them as it would in production.
    """
    stop = cutoff_position(series, cutoff)
    train = dataclasses.replace(
        series,
        time=series.time[:stop],
        target=series.target[:stop],
        past_covariates=series.past_covariates[:stop],
        future_covariates=series.future_covariates[:stop],
        future_time=series.time[stop:].append(series.future_time),
        future_ahead=np.concatenate(
            [series.future_covariates[stop:], series.future_ahead.reshape(
                len(series.future_time), series.future_covariates.shape[1]
            )]
        ),  # (T - stop + K, Ff)
    )
    held_out = dataclasses.replace(
        series,
        time=series.time[stop:],
        target=series.target[stop:],
        past_covariates=series.past_covariates[stop:],
        future_covariates=series.future_covariates[stop:],
    )
    return train, held_out


def cut_data(data: ForecastData, cutoff: Cutoff) -> tuple[ForecastData, ForecastData]:
    """:func:`cut_series` applied to every series: (training data, held-out data)."""
    parts = [cut_series(s, cutoff) for s in data.series]
    return (
        dataclasses.replace(data, series=tuple(train for train, _ in parts)),
        dataclasses.replace(data, series=tuple(held for _, held in parts)),
    )


def rolling_origin_cutoffs(
    length: int, horizon: int, n_windows: int, step: int | None = None, min_train: int = 1
) -> list[int]:
    """Cutoffs (training lengths, ascending) for a rolling-origin backtest.

    The last cutoff leaves exactly ``horizon`` points to forecast; each earlier one is
    ``step`` (default ``horizon``) points before the next.
    """
    step = horizon if step is None else step
    for option, value, meaning in (
        ("--horizon", horizon, "the steps each backtest window forecasts"),
        ("--windows", n_windows, "the number of backtest origins"),
        ("--step", step, "the points from one backtest origin to the next"),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise LstmkitError(
                f"{option} ({meaning}) must be a whole number of at least 1, got {value!r}."
            )
    last = length - horizon
    cutoffs = [last - k * step for k in range(n_windows - 1, -1, -1)]
    if cutoffs[0] < min_train:
        most = max(0, (last - min_train) // step + 1)
        raise LstmkitError(
            f"{n_windows} backtest windows of horizon {horizon} every {step} steps need "
            f"{min_train + (n_windows - 1) * step + horizon} points, but the series has "
            f"{length}; use at most {most} --windows, a smaller --step, or a shorter --horizon."
        )
    return cutoffs
