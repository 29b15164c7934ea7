"""Putting each series on its regular grid, and the policy for the gaps that leaves.

Steps (the policy :func:`lstmkit.data.timeseries.load_series` documents):

1. ``--resample`` aggregates each series over the values present in each period
   (:func:`resample_series`); a period without any value is a missing value.
2. Every series is reindexed to its frequency's grid (:func:`regularise`): absent
   times become missing values, times off the grid are refused.
3. Missing targets before the first or after the last observed one are trimmed, except
   that rows after the last target keep their future-known covariates.
4. If more than ``MAX_FILLED_FRACTION`` of a column's values within the target's span
   are missing, filling them would invent the series: refused, with advice (the
   frequency is probably wrong).
5. Otherwise ``--missing interpolate`` fills them linearly in time and logs a warning
   on the ``lstmkit.data`` logger with how many values were filled and what fraction;
   ``--missing refuse`` raises naming the first few. Covariates missing at the edges
   of the target's span take the nearest value.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from lstmkit.data.forecast_data import TimeSeries
from lstmkit.data.frequency import weekdays_only
from lstmkit.data.series_table import SERIES, SHOW, TARGET, TIME
from lstmkit.data.sources import ROW, Source
from lstmkit.data.time_axis import format_time, is_steps, time_grid
from lstmkit.errors import LstmkitError

logger = logging.getLogger("lstmkit.data")

# Business-day data read as daily has 2 of every 7 values missing (29%); holidays on a
# business-day grid are a few percent. Filling more than a fifth of a series means the
# grid is wrong rather than the data gappy.
MAX_FILLED_FRACTION = 0.2


def resample_series(long: pd.DataFrame, rule: str, aggregation: str) -> pd.DataFrame:
    """Aggregate each series to the frequency ``rule`` over the values present."""
    value_columns = [c for c in long.columns if c not in (SERIES, TIME, ROW)]
    pieces = []
    for name, group in long.groupby(SERIES, sort=True):
        periods = group.set_index(TIME).sort_index()[value_columns].resample(rule)
        aggregated = periods.agg(aggregation)
        # A period with no value is missing (pandas would sum it to zero).
        aggregated = aggregated.where(periods.count() > 0)
        aggregated[SERIES] = name
        aggregated[ROW] = np.nan  # a period no longer maps to one row of the source
        pieces.append(aggregated.reset_index())
    return pd.concat(pieces, ignore_index=True)


def regularise(
    name: str,
    series_index: int,
    group: pd.DataFrame,
    freq: str,
    target_name: str,
    past_covariates: list[str],
    future_covariates: list[str],
    missing: str,
    src: Source,
) -> TimeSeries:
    """Put one series (indexed by sorted time) on its grid and apply the gap policy."""
    index = group.index
    grid = time_grid(index[0], index[-1], freq)
    off_grid = index[~index.isin(grid)]
    if len(off_grid):
        rows = group.loc[off_grid[:SHOW], ROW]
        shown = ", ".join(
            format_time(t) + ("" if pd.isna(r) else f" ({src.where(int(r))})")
            for t, r in rows.items()
        )
        raise LstmkitError(
            f"series '{name}': {len(off_grid)} timestamp(s) are not on the {freq} grid "
            f"starting {format_time(index[0])}: {shown}. Pass --resample {freq} to "
            "aggregate to that frequency, or --freq with the right one."
        )
    regular = group.reindex(grid)

    observed = np.flatnonzero(regular[TARGET].notna().to_numpy())
    if len(observed) == 0:
        raise LstmkitError(f"series '{name}' has no target values; remove it or fill in its data.")
    first, last = int(observed[0]), int(observed[-1])
    span = regular.iloc[first : last + 1]
    # Rows after the last target are the known future only when there are future covariates.
    ahead = regular.iloc[last + 1 :] if future_covariates else regular.iloc[:0]
    trimmed = first + (len(regular) - last - 1 - len(ahead))
    absent = ~span.index.isin(index)

    labels = {TARGET: target_name} | {c: c for c in [*past_covariates, *future_covariates]}
    for column, label in labels.items():
        _refuse_invention(span[column], absent, label, name, freq, index)
    filled: dict[str, int] = {}
    columns: dict[str, np.ndarray] = {}
    for column, label in labels.items():
        values, count = _fill_gaps(
            span[column], label, name, missing, span[ROW], src, fill_edges=column != TARGET
        )
        if count:
            filled[label] = count
        columns[column] = values.to_numpy(dtype="float64")
    if filled:
        logger.warning(
            "series '%s': filled %s by linear interpolation (%d at times absent from the "
            "data); pass --missing refuse to stop at gaps instead",
            name,
            ", ".join(f"{n} of {len(span)} values ({n / len(span):.1%}) of '{c}'"
                      for c, n in filled.items()),
            int(absent.sum()),
        )

    def stacked(names: list[str], rows: int) -> np.ndarray:
        return np.stack([columns[c] for c in names], axis=-1) if names else np.zeros((rows, 0))

    return TimeSeries(
        name=name,
        series_id=series_index,
        time=span.index,
        target=columns[TARGET],
        past_covariates=stacked(past_covariates, len(span)),  # (T, Fp)
        future_covariates=stacked(future_covariates, len(span)),  # (T, Ff)
        future_time=ahead.index,
        future_ahead=ahead[future_covariates].to_numpy(dtype="float64")
        .reshape(len(ahead), len(future_covariates)),  # (K, Ff)
        filled=filled,
        inserted=len(grid) - len(index),
        trimmed=trimmed,
    )


def _refuse_invention(
    values: pd.Series, absent: np.ndarray, column: str, name: str, freq: str, observed: pd.Index
) -> None:
    """Raise when more than ``MAX_FILLED_FRACTION`` of ``values`` would have to be filled."""
    missing = values.isna().to_numpy()
    if missing.mean() <= MAX_FILLED_FRACTION:
        return
    if is_steps(observed):
        grid, advice = "step grid", (
            "The step numbers in the time column leave that many steps out: give the "
            "missing steps, or check that --time names the step column."
        )
    elif freq == "D" and weekdays_only(observed):
        grid, advice = "D grid", (
            "The data has no values on Saturdays or Sundays: pass --freq B for business "
            "days, or --resample to aggregate it to a coarser frequency (e.g. --resample "
            "W-FRI)."
        )
    else:
        grid, advice = f"{freq} grid", (
            "Pass --freq with the series' real frequency, or --resample to aggregate it "
            "to a coarser one (e.g. --resample MS); or fill the gaps in the data."
        )
    count = int(missing.sum())
    raise LstmkitError(
        f"series '{name}': {count} of its {len(values)} values of '{column}' "
        f"({count / len(values):.0%}) are missing on the {grid} ({int((missing & absent).sum())} "
        f"at times absent from the data); filling them would invent more than "
        f"{MAX_FILLED_FRACTION:.0%} of the series. {advice}"
    )


def _fill_gaps(
    values: pd.Series, column: str, name: str, policy: str, rows: pd.Series, src: Source,
    fill_edges: bool,
) -> tuple[pd.Series, int]:
    """Apply the missing-value policy to one column of one series."""
    missing = values.isna()
    if not missing.any():
        return values, 0
    if policy == "refuse":
        where = []
        for time, row in zip(values.index[missing][:SHOW], rows[missing][:SHOW], strict=True):
            place = "timestamp absent from the data" if pd.isna(row) else src.where(int(row))
            where.append(f"{format_time(time)} ({place})")
        count = int(missing.sum())
        raise LstmkitError(
            f"series '{name}' has {count} missing value(s) in column '{column}' and "
            f"--missing refuse: {'; '.join(where)}"
            + (f" (first {SHOW} of {count})" if count > SHOW else "")
            + ". Fill them in the data, or pass --missing interpolate to fill them "
            "linearly in time."
        )
    # Linear in the index (time, or step number), so unequal month lengths weigh the
    # neighbours correctly.
    filled = values.interpolate(method="index", limit_area="inside")
    if fill_edges:
        filled = filled.ffill().bfill()
    return filled, int(missing.sum() - filled.isna().sum())
