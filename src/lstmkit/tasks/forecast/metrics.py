"""Forecast accuracy metrics and the baselines every forecast is compared with.

All metrics take numpy-compatible arrays of one shape (any shape), an optional
boolean ``mask`` (True = count this point), and skip points where the actual or
the forecast is NaN, so masked trailing windows and gaps need no special care. A
metric with no point to count returns NaN.

Definitions (a = actual, f = forecast, over the counted points):
    MAE    mean |a - f|
    RMSE   sqrt(mean (a - f)^2)
    sMAPE  mean 200 |a - f| / (|a| + |f|), in percent, 0..200 (0/0 counts as 0)
    MASE   MAE / mean |y_t - y_{t-m}| over the training history y (M4 definition;
           m = 1 gives the naive scaling)
    coverage  fraction of a inside [lower, upper]
    width     mean (upper - lower)
    pinball   mean max(q (a - f), (q - 1)(a - f)) for quantile q
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from pandas.tseries.frequencies import to_offset

from lstmkit.errors import LstmkitError


def _counted(mask: ArrayLike | None, *arrays: np.ndarray) -> np.ndarray:
    """Boolean array of the points a metric counts: in the mask and finite everywhere."""
    valid = np.ones(np.broadcast_shapes(*(a.shape for a in arrays)), dtype=bool)
    for array in arrays:
        valid &= np.isfinite(array)
    if mask is not None:
        valid &= np.asarray(mask, dtype=bool)
    return valid


def _mean(values: np.ndarray, valid: np.ndarray) -> float:
    if not valid.any():
        return float("nan")
    return float(values[valid].mean())


def _pair(actual: ArrayLike, forecast: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    actual, forecast = np.asarray(actual, dtype="float64"), np.asarray(forecast, dtype="float64")
    if actual.shape != forecast.shape:
        raise ValueError(f"actual {actual.shape} and forecast {forecast.shape} differ in shape")
    return actual, forecast


def mae(actual: ArrayLike, forecast: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Mean absolute error."""
    actual, forecast = _pair(actual, forecast)
    valid = _counted(mask, actual, forecast)
    return _mean(np.abs(actual - forecast), valid)


def rmse(actual: ArrayLike, forecast: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Root mean squared error."""
    actual, forecast = _pair(actual, forecast)
    valid = _counted(mask, actual, forecast)
    return float(np.sqrt(_mean((actual - forecast) ** 2, valid)))


def smape(actual: ArrayLike, forecast: ArrayLike, mask: ArrayLike | None = None) -> float:
    """Symmetric mean absolute percentage error, in percent (0..200)."""
    actual, forecast = _pair(actual, forecast)
    valid = _counted(mask, actual, forecast)
    denominator = np.abs(actual) + np.abs(forecast)
    # Both zero means a perfect forecast of zero: count it as 0 rather than 0/0.
    ratio = np.divide(
        200.0 * np.abs(actual - forecast), denominator,
        out=np.zeros_like(denominator), where=denominator > 0,
    )
    return _mean(ratio, valid)


def seasonal_naive_scale(history: ArrayLike, season: int = 1) -> float:
    """MASE denominator: in-sample MAE of the seasonal-naive forecast on ``history``."""
    history = np.asarray(history, dtype="float64").ravel()
    _check_season(season, len(history))
    differences = np.abs(history[season:] - history[:-season])
    finite = np.isfinite(differences)
    return float(differences[finite].mean()) if finite.any() else float("nan")


def mase(
    actual: ArrayLike,
    forecast: ArrayLike,
    history: ArrayLike,
    season: int = 1,
    mask: ArrayLike | None = None,
) -> float:
    """Mean absolute scaled error against the seasonal-naive in-sample MAE of ``history``.

    ``history`` is the training part of the same series (1-D). NaN when the scale is
    zero (a constant history), where MASE is undefined.
    """
    scale = seasonal_naive_scale(history, season)
    if not scale > 0:
        return float("nan")
    return mae(actual, forecast, mask) / scale


def interval_coverage(
    actual: ArrayLike, lower: ArrayLike, upper: ArrayLike, mask: ArrayLike | None = None
) -> float:
    """Fraction of actual values inside [lower, upper] (bounds included)."""
    actual, lower = _pair(actual, lower)
    upper = np.asarray(upper, dtype="float64")
    valid = _counted(mask, actual, lower, upper)
    inside = (actual >= lower) & (actual <= upper)
    return _mean(inside.astype("float64"), valid)


def interval_width(
    lower: ArrayLike, upper: ArrayLike, mask: ArrayLike | None = None
) -> float:
    """Mean width ``upper - lower`` of prediction intervals."""
    lower, upper = _pair(lower, upper)
    valid = _counted(mask, lower, upper)
    return _mean(upper - lower, valid)


def pinball_loss(
    actual: ArrayLike,
    forecast: ArrayLike,
    quantile: float | ArrayLike,
    mask: ArrayLike | None = None,
) -> float:
    """Mean pinball (quantile) loss.

    ``forecast`` has the shape of ``actual``, or one more trailing axis of quantile
    forecasts (..., Q) with ``quantile`` of shape (Q,).
    """
    actual = np.asarray(actual, dtype="float64")
    forecast = np.asarray(forecast, dtype="float64")
    quantile = np.asarray(quantile, dtype="float64")
    if np.any((quantile <= 0) | (quantile >= 1)):
        raise LstmkitError(f"quantiles must lie strictly between 0 and 1, got {quantile}.")
    if forecast.ndim == actual.ndim + 1:
        actual = actual[..., None]  # (..., 1) against (..., Q)
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)[..., None]
    error = actual - forecast  # (..., Q) or (...)
    loss = np.maximum(quantile * error, (quantile - 1.0) * error)
    valid = _counted(mask, actual, forecast)
    return _mean(np.broadcast_to(loss, valid.shape), valid)


def _check_season(season: int, length: int) -> None:
    if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
        raise LstmkitError(f"season must be a positive integer, got {season!r}.")
    if length <= season:
        raise LstmkitError(
            f"a season of {season} needs more than {season} history points, but there are "
            f"{length}; use a longer history or a smaller season (1 for naive)."
        )


def naive_forecast(history: ArrayLike, horizon: int) -> np.ndarray:
    """Repeat the last value of ``history`` for ``horizon`` steps: (H,)."""
    return seasonal_naive_forecast(history, horizon, season=1)


def seasonal_naive_forecast(history: ArrayLike, horizon: int, season: int) -> np.ndarray:
    """Repeat the last ``season`` values of ``history`` over ``horizon`` steps: (H,).

    Step h (from 0) takes ``history[T - m + (h mod m)]``.
    """
    history = np.asarray(history, dtype="float64").ravel()
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise LstmkitError(f"horizon must be a positive integer, got {horizon!r}.")
    if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
        raise LstmkitError(f"season must be a positive integer, got {season!r}.")
    if len(history) < season:
        raise LstmkitError(
            f"seasonal naive with season {season} needs at least {season} history points, "
            f"got {len(history)}; use a longer history or a smaller season."
        )
    last_season = history[len(history) - season :]
    return last_season[np.arange(horizon) % season]


# Steps per natural cycle for a frequency's base unit: a year for calendar units,
# a week for days, a day for hours.
_CYCLE = {
    "MS": 12, "ME": 12, "BMS": 12, "BME": 12,
    "QS": 4, "QE": 4, "BQS": 4, "BQE": 4,
    "W": 52,
    "D": 7, "B": 5,
    "h": 24,
}


def seasonality(freq: str) -> int:
    """Guess the season length m from a pandas frequency alias.

    Monthly 12, quarterly 4, weekly 52, daily 7, business-daily 5, hourly 24; a
    multiple such as "2W" divides the cycle when it can (26); anything else 1.
    """
    try:
        offset = to_offset(freq)
    except (TypeError, ValueError):
        raise LstmkitError(
            f"{freq!r} is not a pandas frequency; use e.g. 'MS', 'W-SAT', 'QS', 'D', 'h'."
        ) from None
    cycle = _CYCLE.get(offset.rule_code.split("-")[0], 1)
    steps = offset.n
    if cycle > 1 and steps >= 1 and cycle % steps == 0:
        return cycle // steps
    return 1
