"""Loading and validating time series for forecasting.

One entry point, :func:`load_series`, turns a CSV file, a Parquet file or a pandas
DataFrame into a :class:`ForecastData`: one ``TimeSeries`` per series on a
regular time grid with no missing values, ready for windowing. The work is split by
concept:

    sources        reading the file or frame; pointing messages at lines and rows
    time_axis      the time column: dates, calendar parts or step numbers
    series_table   the long table of checked values (numeric, finite, not too large)
    frequency      ``--freq``/``--resample`` and inferring the frequency
    gaps           the grid and the gap policy
    forecast_data  the TimeSeries and ForecastData containers

Layouts
    long  one row per (series, time): an optional series-id column, a time column,
          the target column and covariate columns.
    wide  one row per time and one column per series (covariates are not supported
          in this layout, because a covariate column could not say which series it
          belongs to; reshape to long for that).

Time
    ``time`` names the time column: dates, or whole step numbers (0, 1, 2, ...) for a
    series without a calendar (see :mod:`lstmkit.data.time_axis`). ``time`` may instead
    list calendar-part columns, e.g. ``["year", "quarter"]``. Left as None, the time
    comes from a DatetimeIndex of the DataFrame, or else the first column.

Policy for gaps (documented because it decides what the model sees)
    1. ``resample`` (optional) aggregates to another frequency first, with
       ``aggregation`` (mean by default) over the values present in each period;
       a period with no value at all is a missing value.
    2. The frequency is inferred unless ``freq`` is given (business days are
       recognised, see :mod:`lstmkit.data.frequency`), and every series is reindexed
       to that grid: absent timestamps become missing values.
    3. Missing target values before the first or after the last observed one are
       not gaps: they are trimmed (and counted), except that rows after the last
       observed target keep their future-known covariates as the known future.
    4. More than 20% of a column missing within the target's span is refused: filling
       it would invent the series (the grid is likely wrong).
    5. Interior missing values (target and covariates) follow ``missing``:
       ``"interpolate"`` fills them linearly in time, counts them per series and column
       and logs a warning on the ``lstmkit.data`` logger; ``"refuse"`` raises an error
       naming the first few timestamps and rows. Covariate values missing at the edges
       of the target's span are filled with the nearest value under ``"interpolate"``.

Every problem is an :class:`LstmkitError` whose advice names the command-line options
(``--freq``, ``--resample``, ``--missing``, ...) that fix it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import pandas as pd

from lstmkit.data.calendar import resolve_calendar_features
from lstmkit.data.forecast_data import ForecastData
from lstmkit.data.frequency import check_freq, common_frequency
from lstmkit.data.gaps import regularise, resample_series
from lstmkit.data.series_table import SERIES, TIME, check_duplicates, long_table
from lstmkit.data.sources import INDEX_TIME, read_source
from lstmkit.data.time_axis import is_steps
from lstmkit.errors import LstmkitError

__all__ = ["ForecastData", "load_series"]

MissingPolicy = Literal["interpolate", "refuse"]
MISSING_POLICIES = ("interpolate", "refuse")
AGGREGATIONS = ("mean", "sum", "median", "first", "last", "min", "max")


def load_series(
    source: str | os.PathLike | pd.DataFrame,
    target: str | Sequence[str] | None = None,
    *,
    time: str | Sequence[str] | None = None,
    series_id: str | None = None,
    layout: Literal["long", "wide"] = "long",
    past_covariates: Sequence[str] = (),
    future_covariates: Sequence[str] = (),
    calendar: bool | Sequence[str] = False,
    missing: MissingPolicy = "interpolate",
    freq: str | None = None,
    resample: str | None = None,
    aggregation: str = "mean",
    time_format: str | None = None,
) -> ForecastData:
    """Load, validate and regularise series for forecasting (policy in the module doc).

    Args:
        source: path to a .csv/.tsv/.parquet file, or a DataFrame.
        target: long layout: the target column (may be omitted when the table has only
            one column besides time and id). Wide layout: the series columns (default:
            every column except the time column).
        time: time column, calendar-part columns (e.g. ``["year", "quarter"]``), or
            None for the DataFrame's DatetimeIndex or else the first column.
        series_id: long layout: column whose values name the series; each distinct
            value (sorted) gets an integer id 0..S-1 for the static embedding.
        layout: "long" or "wide" (one column per series).
        past_covariates: columns observed only up to the present.
        future_covariates: columns known ahead; give their values for the forecast
            horizon as rows after the last target value with the target left empty.
        calendar: True for the frequency's default calendar features, a list of names
            (see :mod:`lstmkit.data.calendar`), or False.
        missing: "interpolate" or "refuse" for interior gaps.
        freq: frequency alias to use instead of inferring it.
        resample: aggregate to this frequency first (e.g. "MS" for monthly means).
        aggregation: how ``resample`` combines values: "mean", "sum", "median",
            "first", "last", "min" or "max".
        time_format: strftime format of the time column, for dates pandas cannot infer.

    Returns:
        ForecastData whose series are sorted by name, gap-free and on one grid.
    """
    if missing not in MISSING_POLICIES:
        raise LstmkitError(f"--missing {missing!r} is not a policy; use interpolate or refuse.")
    if layout not in ("long", "wide"):
        raise LstmkitError(f"--layout {layout!r} is not a layout; use long or wide.")
    if aggregation not in AGGREGATIONS:
        raise LstmkitError(
            f"aggregation {aggregation!r} is unknown; use one of {', '.join(AGGREGATIONS)}."
        )
    rule = None if resample is None else check_freq(resample, "--resample")
    if freq is not None:
        freq = check_freq(freq, "--freq")
    frame, src = read_source(source)
    time_hint = ""
    if time is None:
        time = INDEX_TIME if INDEX_TIME in frame.columns else str(frame.columns[0])
        if time != INDEX_TIME:
            time_hint = (
                f" (the time was taken from the first column '{time}'; pass --time if that "
                "is wrong, e.g. --time year quarter)"
            )
    past_covariates, future_covariates = list(past_covariates), list(future_covariates)
    long, target_name = long_table(
        frame, src, layout, target, time, time_format, series_id,
        past_covariates, future_covariates,
    )
    if is_steps(long[TIME]):
        _check_step_options(time, freq, rule, calendar)
    if rule is None:
        # Checked on the raw rows only: resampling is asked to aggregate them.
        check_duplicates(long, src, time_hint)
    else:
        long = resample_series(long, rule, aggregation)
        freq = rule
    groups = {
        str(name): group.sort_values(TIME).set_index(TIME)
        for name, group in sorted(long.groupby(SERIES), key=lambda item: str(item[0]))
    }
    freq = freq or common_frequency({name: group.index for name, group in groups.items()})
    series = tuple(
        regularise(
            name, series_index, group, freq, target_name, past_covariates,
            future_covariates, missing, src,
        )
        for series_index, (name, group) in enumerate(groups.items())
    )
    return ForecastData(
        series=series,
        freq=freq,
        target=target_name,
        past_covariates=tuple(past_covariates),
        future_covariates=tuple(future_covariates),
        calendar=tuple(resolve_calendar_features(calendar, freq)),
        missing=missing,
    )


def _check_step_options(
    time: str | Sequence[str], freq: str | None, rule: str | None, calendar: object
) -> None:
    """Refuse the options that need dates, for a time column of step numbers."""
    given = [option for option, value in (("--freq", freq), ("--resample", rule),
                                          ("--calendar", calendar)) if value]
    if given:
        options = " and ".join(given)
        raise LstmkitError(
            f"{options} {'needs' if len(given) == 1 else 'need'} dates, but the time column "
            f"'{time}' holds step numbers (0, 1, 2, ...), which have no calendar; drop {options} "
            "(the step is taken from the numbers), or give a column of dates to --time."
        )
