"""The frequency of a series: checking ``--freq``/``--resample`` and inferring it from the times.

Inference tries :func:`pandas.infer_freq` on all timestamps; when some are missing
(irregular spacing) it takes the most common frequency of consecutive triples that puts
every timestamp on its grid, so a monthly series with a missing month is still monthly.
Daily-spaced data with no timestamp on a Saturday or Sunday over a span that has
weekends is business-daily ("B"): market closes are not a daily series with every
weekend missing. Step series have the step of their numbers (see
:mod:`lstmkit.data.time_axis`).
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from lstmkit.data.series_table import SHOW
from lstmkit.data.time_axis import format_time, is_steps, step_frequency
from lstmkit.errors import LstmkitError

FREQ_EXAMPLES = "D, B (business days), W-SUN, MS, ME, QS, h"


def check_freq(freq: str, option: str) -> str:
    """The canonical alias of ``freq``, or an error naming the ``option`` it came from."""
    try:
        return to_offset(freq).freqstr
    except (ValueError, TypeError):
        raise LstmkitError(
            f"{option} {freq!r} is not a pandas frequency; use an alias such as "
            f"{FREQ_EXAMPLES}."
        ) from None


def infer_frequency(times: pd.Index) -> str | None:
    """The frequency alias of sorted, unique times, or None if there is none (module doc)."""
    if is_steps(times):
        gaps = np.diff(times.to_numpy())
        return step_frequency(np.gcd.reduce(gaps) if len(gaps) else 1)
    alias = _infer_alias(times)
    if alias is None and len(times) >= 3:
        alias = next((c for c in _spacing_votes(times) if _on_grid(times, c)), None)
    if alias == "D" and weekdays_only(times) and _spans_weekend(times):
        return "B"
    return alias


def weekdays_only(times: pd.DatetimeIndex) -> bool:
    """True when no timestamp falls on a Saturday or Sunday."""
    return bool((times.day_of_week < 5).all())


def _spans_weekend(times: pd.DatetimeIndex) -> bool:
    return bool((pd.date_range(times[0], times[-1], freq="D").day_of_week >= 5).any())


def _infer_alias(times: pd.DatetimeIndex) -> str | None:
    if len(times) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 warns about the return type changing
        try:
            inferred = pd.infer_freq(times)
        except (TypeError, ValueError):
            return None
    return None if inferred is None else to_offset(inferred).freqstr


def _on_grid(times: pd.DatetimeIndex, freq: str) -> bool:
    grid = pd.date_range(times[0], times[-1], freq=freq)
    return len(grid) > 0 and grid[0] == times[0] and bool(times.isin(grid).all())


def _spacing_votes(times: pd.DatetimeIndex) -> list[str]:
    """Frequencies of consecutive timestamp triples, most common first."""
    if len(times) < 3:
        return []
    # A sample of triples is enough to find the dominant spacing and stays fast.
    starts = np.unique(np.linspace(0, len(times) - 3, num=min(len(times) - 2, 200)).astype(int))
    votes = Counter(_infer_alias(times[i : i + 3]) for i in starts)
    votes.pop(None, None)
    return [candidate for candidate, _ in votes.most_common()]


def common_frequency(times_by_series: dict[str, pd.Index]) -> str:
    """The one frequency of all series, inferred from their sorted times."""
    inferred = {}
    for name, times in times_by_series.items():
        alias = infer_frequency(times)
        if alias is None:
            # Take the dominant spacing anyway: the grid check then names the
            # timestamps that do not fit it, which says more than "no frequency".
            alias = next(iter(_spacing_votes(times)), None)
        if alias is None:
            raise LstmkitError(
                f"could not infer the frequency of series '{name}' ({len(times)} "
                f"timestamps from {format_time(times[0])} to {format_time(times[-1])}); "
                f"pass --freq (e.g. {FREQ_EXAMPLES}) or --resample to aggregate to a "
                "regular grid."
            )
        inferred[name] = alias
    distinct = sorted(set(inferred.values()))
    if len(distinct) > 1:
        raise LstmkitError(
            "series have different frequencies ("
            + ", ".join(f"{n}: {a}" for n, a in list(inferred.items())[:SHOW])
            + "); one model needs one frequency: pass --resample to aggregate them."
        )
    return distinct[0]
