"""What a model sees of a market at day t, and what it is asked about days t+1..t+h.

Features at day t use prices up to day t only (r_t = log C_t / C_{t-1}). Every feature
measured in returns is divided by the day's EWMA volatility sigma_t (below), so it says
how large a move was for its time: a model then carries over from calm years to
turbulent ones, where raw returns would lie outside anything it was trained on.

    return         r_t
    range          log(H_t / L_t)                  the day's range (needs high, low)
    gap            log(O_t / C_{t-1})              the overnight move (needs open)
    volume         log(1 + V_t) - mean of log(1 + V) over days t-20..t   (needs volume)
    volatility_5   sqrt(mean of r^2 over days t-4..t)
    volatility_21  sqrt(mean of r^2 over days t-20..t)
    momentum_21    r_{t-20} + ... + r_t

    sigma_t^2      RiskMetrics' EWMA variance: 0.94 sigma_{t-1}^2 + 0.06 r_t^2, started
                   at the variance of the first month's returns

Targets at origin t over the horizon h (NaN where day t+h is not in the data):

    return         R_t = r_{t+1} + ... + r_{t+h}               the log return ahead
    direction      R_t, scored by its sign                     up or down
    volatility     RV_t = r_{t+1}^2 + ... + r_{t+h}^2          the realised variance
    cross_section  R_t - median over assets of R_t             beating the median asset
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from lstmkit.data.prices import PricePanel

TARGETS = ("return", "direction", "volatility", "cross_section")
LONGEST_LOOKBACK = 21  # days of history the features need before they are all defined
EWMA_DECAY = 0.94  # RiskMetrics' daily decay


def ewma_variance(returns: np.ndarray) -> np.ndarray:
    """sigma_t^2 of every day (module doc): (T, A), NaN on the first day (no return yet).
    Each value uses returns up to that day only."""
    T, A = returns.shape
    variance_at = np.full((T, A), np.nan)
    known = np.nan_to_num(returns[1:], nan=0.0)
    variance = known[: min(LONGEST_LOOKBACK, len(known))].var(axis=0) + 1e-12
    for t in range(1, T):
        variance = EWMA_DECAY * variance + (1 - EWMA_DECAY) * known[t - 1] ** 2
        variance_at[t] = variance
    return variance_at


def _rolling_mean(values: np.ndarray, days: int) -> np.ndarray:
    """Mean over the last ``days`` rows, per column; NaN until that many are defined."""
    return pd.DataFrame(values).rolling(days, min_periods=days).mean().to_numpy()


def _return(panel: PricePanel, r: np.ndarray) -> np.ndarray:
    return r


def _range(panel: PricePanel, r: np.ndarray) -> np.ndarray:
    return np.log(panel.high / panel.low)


def _gap(panel: PricePanel, r: np.ndarray) -> np.ndarray:
    previous_close = np.vstack([np.full((1, panel.close.shape[1]), np.nan), panel.close[:-1]])
    return np.log(panel.open / previous_close)


def _volume(panel: PricePanel, r: np.ndarray) -> np.ndarray:
    log_volume = np.log1p(panel.volume)
    return log_volume - _rolling_mean(log_volume, LONGEST_LOOKBACK)


def _volatility_5(panel: PricePanel, r: np.ndarray) -> np.ndarray:
    return np.sqrt(_rolling_mean(r**2, 5))


def _volatility_21(panel: PricePanel, r: np.ndarray) -> np.ndarray:
    return np.sqrt(_rolling_mean(r**2, 21))


def _momentum_21(panel: PricePanel, r: np.ndarray) -> np.ndarray:
    return 21 * _rolling_mean(r, 21)


# name -> (the optional price fields it needs, its values (T, A))
FEATURES: dict[str, tuple[tuple[str, ...], Callable[[PricePanel, np.ndarray], np.ndarray]]] = {
    "return": ((), _return),
    "range": (("high", "low"), _range),
    "gap": (("open",), _gap),
    "volume": (("volume",), _volume),
    "volatility_5": ((), _volatility_5),
    "volatility_21": ((), _volatility_21),
    "momentum_21": ((), _momentum_21),
}
IN_RETURNS = ("return", "range", "gap", "volatility_5", "volatility_21", "momentum_21")
"""The features measured in returns: divided by sigma_t."""


def available_features(panel: PricePanel) -> list[str]:
    """The features the panel's fields allow, in FEATURES' order."""
    return [name for name, (needs, _) in FEATURES.items()
            if all(field in panel.fields for field in needs)]


def market_features(panel: PricePanel, names: list[str]) -> np.ndarray:
    """The named features at every day: (T, A, F), NaN before they are defined."""
    r = panel.log_returns()
    sigma = np.sqrt(ewma_variance(r))
    return np.stack([FEATURES[name][1](panel, r) / (sigma if name in IN_RETURNS else 1.0)
                     for name in names], axis=-1)


def forward_sum(values: np.ndarray, horizon: int) -> np.ndarray:
    """values[t+1] + ... + values[t+h] at each t: (T, A), NaN in the last h rows."""
    T = len(values)
    if horizon >= T:
        return np.full(values.shape, np.nan)
    cumulative = np.vstack([np.zeros((1, values.shape[1])), np.nancumsum(values, axis=0)])
    ahead = np.full(values.shape, np.nan)
    ahead[: T - horizon] = cumulative[horizon + 1:] - cumulative[1: T - horizon + 1]
    return ahead


def targets(panel: PricePanel, kind: str, horizon: int) -> np.ndarray:
    """The target of every origin day (module doc): (T, A)."""
    r = panel.log_returns()
    if kind == "volatility":
        return forward_sum(r**2, horizon)
    ahead = forward_sum(r, horizon)
    if kind == "cross_section":
        return ahead - np.median(ahead, axis=1, keepdims=True)
    return ahead
