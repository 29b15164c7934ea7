"""The forecasts an LSTM must beat, made at each origin from what is known by its close.

    random walk       a zero return ahead (the price stays where it is)
    historical mean   the mean h-day return of the training window
    GARCH(1,1)        sigma^2_{t+1} = omega + alpha r_t^2 + beta sigma^2_t, fitted by the
                      ``arch`` library on each training window's returns, then run with
                      those parameters over the test days; the h-day variance is the sum
                      of its 1..h-step forecasts
    EWMA              RiskMetrics' sigma^2_{t+1} = 0.94 sigma^2_t + 0.06 r_t^2, times h
"""

from __future__ import annotations

import warnings

import numpy as np

from lstmkit.data.market_features import ewma_variance
from lstmkit.errors import LstmkitError

PERCENT = 100.0  # arch fits returns in percent: its optimiser is scaled for them


def ewma_forecast(returns: np.ndarray, horizon: int) -> np.ndarray:
    """The EWMA h-day variance forecast at the close of every day, h sigma_t^2: (T, A)."""
    return horizon * ewma_variance(returns)


def garch_variance(returns: np.ndarray, fit_days: np.ndarray, test_origins: np.ndarray,
                   horizon: int, previous: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """GARCH(1,1) h-day variance forecasts at ``test_origins`` for one asset, fitted on the
    returns of ``fit_days`` (each before the first test origin); and the fitted
    parameters. Where the fit fails, ``previous`` parameters are used."""
    from arch import arch_model  # imported here: arch takes a second to import

    first = int(fit_days[0])
    series = returns[first: int(test_origins[-1]) + 1] * PERCENT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and scaling chatter
        model = arch_model(series[: int(fit_days[-1]) - first + 1], mean="Constant",
                           vol="GARCH", p=1, q=1, rescale=False)
        try:
            params = model.fit(disp="off", show_warning=False).params.to_numpy()
        except (ValueError, np.linalg.LinAlgError):
            params = None
        if params is None or not np.isfinite(params).all():
            if previous is None:
                raise LstmkitError("GARCH(1,1) could not be fitted on the first training "
                                   "window; give more history (--train-days)")
            params = previous
        filtered = arch_model(series, mean="Constant", vol="GARCH", p=1, q=1,
                              rescale=False).fix(params)
        forecasts = filtered.forecast(horizon=horizon, start=int(test_origins[0]) - first,
                                      reindex=False)
    variance = forecasts.variance.to_numpy()[: len(test_origins)].sum(axis=1)
    return variance / PERCENT**2, params
