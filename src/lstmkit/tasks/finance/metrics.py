"""Scores of financial forecasts and of a simple trading strategy (numpy and scipy only).

Every input is a float64 array of equal length; a NaN, an infinity, a length mismatch or too
few values raises :class:`LstmkitError`. Notation: f = forecast, y = realised, e = error,
h = variance forecast, rv = realised variance, w = portfolio weights, R = simple asset
returns, r = portfolio returns, n = number of values.

Measures:
    directional accuracy
        hits / calls, where a call is a case with f != 0 and y != 0 and a hit is a call
        with sign(f) == sign(y); p-value = P(X >= hits), X ~ Binomial(calls, 1/2)
        (one-sided exact binomial test against coin-tossing)
    MAE, RMSE
        mean |f - y|,  sqrt(mean (f - y)^2)
    Diebold-Mariano
        d_t = |e_a,t|^p - |e_b,t|^p,  gamma_k = (1/n) sum_{t=k}^{n-1} (d_t - dbar)(d_{t-k} - dbar)
        lrv = gamma_0 + 2 sum_{k=1}^{H-1} gamma_k   (H = forecast horizon)
        DM = dbar / sqrt(lrv / n) * sqrt((n + 1 - 2H + H(H - 1)/n) / n)
        (the last factor is the Harvey-Leybourne-Newbold 1997 small-sample correction);
        p-value = 2 P(T > |DM|), T ~ Student t with n - 1 degrees of freedom;
        DM < 0 means forecast a is the more accurate
    QLIKE (Patton 2011)
        mean (log h + rv / h), lower is better; robust to noise in rv and defined at rv = 0
    variance MSE
        mean (rv - h)^2
    strategy returns
        turnover_t = sum_a |w_t,a - w_{t-1},a| with w_{-1} = 0,
        r_t = sum_a w_t,a R_t,a - (cost_bps / 10 000) turnover_t
    buy and hold
        V_t = mean_a prod_{s<=t} (1 + R_s,a) with V_{-1} = 1,  r_t = V_t / V_{t-1} - 1
    performance (P = periods per year)
        total return       prod (1 + r) - 1
        annual return      (prod (1 + r))^(P / n) - 1
        annual volatility  std(r, ddof=1) sqrt(P)
        Sharpe ratio       mean(r) / std(r, ddof=1) sqrt(P)   (risk-free rate 0)
        maximum drawdown   max_t (1 - E_t / max_{s<=t} E_s), E = equity curve starting at 1
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from lstmkit.errors import LstmkitError

BASIS_POINTS_PER_UNIT = 10_000


def _series(values: ArrayLike, name: str, minimum: int = 1) -> np.ndarray:
    """One finite 1-D float64 array of at least ``minimum`` values."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise LstmkitError(f"{name} must be one-dimensional, got shape {array.shape}")
    if len(array) < minimum:
        raise LstmkitError(f"{name} needs at least {minimum} values, got {len(array)}")
    if not np.all(np.isfinite(array)):
        raise LstmkitError(f"{name} holds NaN or infinite values; drop or fill them first")
    return array


def _pair(
    first: ArrayLike, second: ArrayLike, names: tuple[str, str], minimum: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Two series of the same length, checked as :func:`_series` does."""
    first_array = np.asarray(first, dtype=np.float64)
    second_array = np.asarray(second, dtype=np.float64)
    if first_array.ndim == 1 and second_array.ndim == 1 and len(first_array) != len(
        second_array
    ):
        raise LstmkitError(
            f"{names[0]} ({len(first_array)} values) and {names[1]} "
            f"({len(second_array)} values) must have the same length"
        )
    return _series(first_array, names[0], minimum), _series(second_array, names[1], minimum)


def _panel(values: ArrayLike, name: str) -> np.ndarray:
    """A finite (periods, assets) float64 array; a 1-D input is one asset."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2:
        raise LstmkitError(
            f"{name} must be (periods, assets) or one-dimensional, got shape {array.shape}"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise LstmkitError(f"{name} needs at least one period and one asset, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise LstmkitError(f"{name} holds NaN or infinite values; drop or fill them first")
    return array


def _check_simple_returns(returns: np.ndarray, name: str) -> None:
    # A simple return below -100% would make the equity negative, which no long-only
    # or leveraged position can reach without the data being wrong (log returns, percent).
    if np.any(returns < -1.0):
        raise LstmkitError(
            f"{name} holds a simple return below -1 (-100%); pass simple returns as "
            "fractions, not log returns or percentages"
        )


def directional_accuracy(forecast: np.ndarray, realised: np.ndarray) -> dict[str, float]:
    """Share of correct sign calls, the number of calls and the one-sided binomial p-value
    of beating a coin toss; a zero forecast makes no call and a zero outcome has no sign."""
    forecast, realised = _pair(forecast, realised, ("forecast", "realised"))
    called = (forecast != 0.0) & (realised != 0.0)
    calls = int(np.count_nonzero(called))
    if calls == 0:
        return {"accuracy": math.nan, "calls": 0.0, "p_value": math.nan}
    hits = int(np.count_nonzero(np.sign(forecast[called]) == np.sign(realised[called])))
    p_value = stats.binomtest(hits, calls, p=0.5, alternative="greater").pvalue
    return {"accuracy": hits / calls, "calls": float(calls), "p_value": float(p_value)}


def error_scores(forecast: np.ndarray, realised: np.ndarray) -> dict[str, float]:
    """Mean absolute error and root mean squared error of the forecast."""
    forecast, realised = _pair(forecast, realised, ("forecast", "realised"))
    errors = forecast - realised
    return {
        "mae": float(np.mean(np.abs(errors))),
        "rmse": float(np.sqrt(np.mean(errors**2))),
    }


def _autocovariance(centred: np.ndarray, lag: int) -> float:
    # Denominator n at every lag (not n - lag) keeps the long-run variance estimate the
    # one of Diebold and Mariano (1995) that the HLN correction was derived for.
    count = len(centred)
    return float(np.dot(centred[lag:], centred[: count - lag]) / count)


def diebold_mariano(
    errors_a: np.ndarray, errors_b: np.ndarray, horizon: int = 1, power: int = 2
) -> tuple[float, float]:
    """Diebold-Mariano test on the losses |e|^power of two forecasts' errors (see
    :func:`equal_accuracy_test`); a negative statistic means forecast a has the smaller
    loss."""
    if isinstance(power, bool) or not isinstance(power, (int, np.integer)) or power < 1:
        raise LstmkitError(f"power must be a whole number of at least 1, got {power!r}")
    errors_a, errors_b = _pair(errors_a, errors_b, ("errors_a", "errors_b"), minimum=2)
    return equal_accuracy_test(np.abs(errors_a) ** power, np.abs(errors_b) ** power, horizon)


def equal_accuracy_test(
    losses_a: np.ndarray, losses_b: np.ndarray, horizon: int = 1
) -> tuple[float, float]:
    """Diebold-Mariano statistic of two forecasts' per-period losses (any loss: squared
    error, QLIKE) with the Harvey-Leybourne-Newbold correction, and its two-sided
    p-value; a negative statistic means forecast a has the smaller loss."""
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise LstmkitError(f"horizon must be a whole number of at least 1, got {horizon!r}")
    losses_a, losses_b = _pair(losses_a, losses_b, ("losses_a", "losses_b"), minimum=2)
    count = len(losses_a)
    # At horizon >= n the correction factor is zero or undefined and too few
    # autocovariances exist, so the test cannot be formed.
    if horizon >= count:
        raise LstmkitError(
            f"horizon {horizon} needs more than {horizon} forecast errors, got {count}"
        )
    differential = losses_a - losses_b
    mean_differential = float(np.mean(differential))
    # Exact equality test: the centred values of a constant array may carry rounding
    # noise that would otherwise inflate the statistic without bound. A constant
    # differential is no difference when it is 0, and a certain one otherwise.
    if np.all(differential == differential[0]):
        if mean_differential == 0.0:
            return 0.0, 1.0
        return math.copysign(math.inf, mean_differential), 0.0
    centred = differential - mean_differential
    variance = _autocovariance(centred, 0)
    long_run_variance = variance + 2.0 * sum(
        _autocovariance(centred, lag) for lag in range(1, horizon)
    )
    if long_run_variance <= 0.0:
        # Strong negative autocorrelation can push the truncated sum below zero; the
        # plain variance (positive: the differential is not constant) is then the scale.
        long_run_variance = variance
    correction = math.sqrt((count + 1 - 2 * horizon + horizon * (horizon - 1) / count) / count)
    statistic = mean_differential / math.sqrt(long_run_variance / count) * correction
    p_value = 2.0 * float(stats.t.sf(abs(statistic), df=count - 1))
    return float(statistic), min(p_value, 1.0)


def qlike(variance_forecast: np.ndarray, realised_variance: np.ndarray) -> float:
    """Patton's QLIKE loss, mean(log h + rv / h); lower is better."""
    return float(np.mean(qlike_losses(variance_forecast, realised_variance)))


def qlike_losses(variance_forecast: np.ndarray, realised_variance: np.ndarray) -> np.ndarray:
    """QLIKE's loss of every forecast, log h + rv / h (for a Diebold-Mariano test)."""
    variance_forecast, realised_variance = _pair(
        variance_forecast, realised_variance, ("variance_forecast", "realised_variance")
    )
    if np.any(variance_forecast <= 0.0):
        raise LstmkitError(
            "variance_forecast must be positive everywhere for QLIKE (it takes log h and "
            f"divides by h); smallest value is {variance_forecast.min()!r}"
        )
    if np.any(realised_variance < 0.0):
        raise LstmkitError(
            "realised_variance must not be negative; smallest value is "
            f"{realised_variance.min()!r}"
        )
    return np.log(variance_forecast) + realised_variance / variance_forecast


def variance_mse(variance_forecast: np.ndarray, realised_variance: np.ndarray) -> float:
    """Mean squared difference between realised variance and its forecast."""
    variance_forecast, realised_variance = _pair(
        variance_forecast, realised_variance, ("variance_forecast", "realised_variance")
    )
    return float(np.mean((realised_variance - variance_forecast) ** 2))


def strategy_returns(
    weights: np.ndarray, asset_returns: np.ndarray, cost_bps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Net portfolio returns and turnover of holding ``weights[t]`` over period ``t``, paying
    ``cost_bps`` basis points on every unit of weight traded (entering the first position
    included)."""
    weights = _panel(weights, "weights")
    asset_returns = _panel(asset_returns, "asset_returns")
    if weights.shape != asset_returns.shape:
        raise LstmkitError(
            f"weights {weights.shape} and asset_returns {asset_returns.shape} must have the "
            "same (periods, assets) shape"
        )
    if not math.isfinite(cost_bps) or cost_bps < 0:
        raise LstmkitError(f"cost_bps must be a finite number of at least 0, got {cost_bps!r}")
    _check_simple_returns(asset_returns, "asset_returns")
    previous_weights = np.vstack([np.zeros((1, weights.shape[1])), weights[:-1]])
    turnover = np.sum(np.abs(weights - previous_weights), axis=1)
    gross = np.sum(weights * asset_returns, axis=1)
    net = gross - cost_bps / BASIS_POINTS_PER_UNIT * turnover
    return net, turnover


def buy_and_hold_returns(asset_returns: np.ndarray) -> np.ndarray:
    """Returns of equal money put into every asset at the start and never rebalanced."""
    asset_returns = _panel(asset_returns, "asset_returns")
    _check_simple_returns(asset_returns, "asset_returns")
    growth = np.cumprod(1.0 + asset_returns, axis=0)
    value = np.concatenate([[1.0], growth.mean(axis=1)])
    returns = np.zeros(len(asset_returns))
    # A portfolio whose every asset lost everything has nothing left to gain or lose.
    alive = value[:-1] > 0.0
    returns[alive] = value[1:][alive] / value[:-1][alive] - 1.0
    return returns


def performance(returns: np.ndarray, periods_per_year: int = 252) -> dict[str, float]:
    """Total and annualised return, annualised volatility, Sharpe ratio (risk-free 0) and
    maximum drawdown (a positive fraction) of a series of simple period returns."""
    if (
        isinstance(periods_per_year, bool)
        or not isinstance(periods_per_year, (int, np.integer))
        or periods_per_year < 1
    ):
        raise LstmkitError(
            f"periods_per_year must be a whole number of at least 1, got {periods_per_year!r}"
        )
    returns = _series(returns, "returns", minimum=2)
    _check_simple_returns(returns, "returns")
    count = len(returns)
    equity = np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    final = float(equity[-1])
    annual_scale = math.sqrt(periods_per_year)
    deviation = float(np.std(returns, ddof=1))
    # Constant returns have zero spread in exact arithmetic; rounding would otherwise
    # leave a tiny deviation and an enormous, meaningless Sharpe ratio.
    constant = bool(np.all(returns == returns[0]))
    if constant:
        deviation = 0.0
    sharpe = math.nan if constant else float(np.mean(returns)) / deviation * annual_scale
    running_peak = np.maximum.accumulate(equity)
    drawdown = 1.0 - equity / running_peak
    return {
        "total_return": final - 1.0,
        "annual_return": final ** (periods_per_year / count) - 1.0,
        "annual_volatility": deviation * annual_scale,
        "sharpe": sharpe,
        "max_drawdown": float(np.max(drawdown)),
    }
