"""A walk-forward's forecasts scored beside the baselines, as forecasts and as trades.

Forecast scores (the Evaluation's rows; losses per day are averaged over assets, and
the Diebold-Mariano test compares the model with each baseline row at the horizon h):

    return         MAE, RMSE, directional accuracy (binomial p against 50%)
                   against the random walk (0) and the training window's mean
    direction,     accuracy, Brier score, against a coin (p = 0.5) and the training
    cross_section  window's share of "up"
    volatility     QLIKE and MSE of the h-day variance, against GARCH(1,1), EWMA and the
                   training window's mean

Trading (``details["trading"]``, not for volatility): positions taken at each origin's
close by ``strategy``, held over the next day, after ``cost_bps`` per unit of turnover,
beside the same strategy before costs and buy-and-hold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstmkit.errors import LstmkitError
from lstmkit.tasks.finance import metrics
from lstmkit.tasks.finance.config import FinanceConfig
from lstmkit.tasks.lifecycle import Evaluation

PROBABILITY_TARGETS = ("direction", "cross_section")
SIGNIFICANT = 0.05
SHARPE_MARGIN = 0.05
LABELS = {"model": "LSTM", "random_walk": "random walk (zero return)",
          "historical_mean": "training-window mean", "coin": "coin (p = 0.5)",
          "garch": "GARCH(1,1)", "ewma": "EWMA (RiskMetrics 0.94)",
          "strategy": "LSTM strategy, after costs", "strategy_gross": "LSTM strategy, no costs",
          "buy_and_hold": "buy and hold"}


def panel(frame: pd.DataFrame, column: str, assets: int) -> np.ndarray:
    """A column of the forecast table as (days, assets)."""
    return frame[column].to_numpy(dtype=np.float64).reshape(-1, assets)


def positions(signal: np.ndarray, strategy: str, top_k: int) -> np.ndarray:
    """Portfolio weights (N, A) from forecast signals (N, A), gross exposure at most 1:
    "sign" holds sign(signal) / A of each asset; "long_short" 1 / (2k) long in the k
    highest signals and short in the k lowest."""
    assets = signal.shape[1]
    if strategy == "sign":
        return np.sign(signal) / assets
    check_long_short(assets, top_k)
    order = np.argsort(signal, axis=1, kind="stable")
    weights = np.zeros_like(signal)
    rows = np.arange(len(signal))[:, None]
    weights[rows, order[:, :top_k]] = -1 / (2 * top_k)
    weights[rows, order[:, -top_k:]] = 1 / (2 * top_k)
    return weights


def check_long_short(assets: int, top_k: int) -> None:
    if assets < 2 * top_k:
        raise LstmkitError(f"--strategy long_short with --top-k {top_k} needs at least "
                           f"{2 * top_k} assets, the data has {assets}; use --strategy sign "
                           "or a smaller --top-k")


def score_walk_forward(frame: pd.DataFrame, config: FinanceConfig, folds: int) -> Evaluation:
    """The forecast table of a walk-forward (FinanceModel's forecasts.csv) scored."""
    assets = frame["asset"].nunique()
    days = len(frame) // assets
    span = (f"{days} test days ({str(frame['date'].iloc[0])[:10]} to "
            f"{str(frame['date'].iloc[-1])[:10]}), {assets} asset(s), {folds} refits every "
            f"{config.refit_every} days")
    if config.target == "volatility":
        return _defined(_volatility(frame, config, assets, span))
    scores = _defined(_returns(frame, config, assets, span))
    trading = _defined(Evaluation.from_json(scores.details["trading"]))
    scores.details["trading"] = trading.to_json()
    return scores


def _defined(evaluation: Evaluation) -> Evaluation:
    """Undefined measures left out (an accuracy without calls, a test of equal losses):
    the table shows them blank, and JSON has no NaN."""
    evaluation.rows = {name: {k: v for k, v in row.items() if np.isfinite(v)}
                       for name, row in evaluation.rows.items()}
    return evaluation


def _compare(losses: dict[str, np.ndarray], rows: dict[str, dict[str, float]],
             horizon: int) -> None:
    """Diebold-Mariano of the model against each other row, on per-day losses."""
    for name in rows:
        if name != "model":
            statistic, p_value = metrics.equal_accuracy_test(losses["model"], losses[name],
                                                             horizon)
            rows[name].update(dm=statistic, p_dm=p_value)


def _verdict(rows: dict[str, dict[str, float]], baseline: str) -> str:
    """'beat', 'did not significantly beat' or 'did not beat' the baseline (DM test)."""
    statistic, p_value = rows[baseline]["dm"], rows[baseline]["p_dm"]
    if statistic < 0 and p_value < SIGNIFICANT:
        return "beat"
    return "did not significantly beat" if statistic < 0 else "did not beat"


def _volatility(frame: pd.DataFrame, config: FinanceConfig, assets: int,
                span: str) -> Evaluation:
    realised = panel(frame, "realised", assets)
    names = {"model": "forecast", "garch": "garch", "ewma": "ewma",
             "historical_mean": "historical_mean"}
    rows, losses = {}, {}
    for name, column in names.items():
        forecast = panel(frame, column, assets)
        rows[name] = {"qlike": metrics.qlike(forecast.ravel(), realised.ravel()),
                      "mse": metrics.variance_mse(forecast.ravel(), realised.ravel())}
        losses[name] = metrics.qlike_losses(forecast.ravel(), realised.ravel()
                                            ).reshape(-1, assets).mean(axis=1)
    _compare(losses, rows, config.horizon)
    headline = (
        f"Walk-forward over {span}: the LSTM's {config.horizon}-day variance forecasts "
        f"{_verdict(rows, 'garch')} GARCH(1,1) (QLIKE {rows['model']['qlike']:.4f} vs "
        f"{rows['garch']['qlike']:.4f}, Diebold-Mariano p = {rows['garch']['p_dm']:.3g}) and "
        f"{_verdict(rows, 'ewma')} EWMA (QLIKE {rows['ewma']['qlike']:.4f}, p = "
        f"{rows['ewma']['p_dm']:.3g}).")
    return Evaluation(
        task="finance", data=f"walk-forward, {span}", rows=rows,
        labels={k: LABELS[k] for k in rows}, lower_is_better=["qlike", "mse"],
        notes=[headline, "qlike = mean(log v + RV / v) of the variance forecast v and the "
               "realised variance RV (sum of squared daily log returns); dm < 0: the LSTM "
               "has the lower QLIKE than that row, p_dm its two-sided p-value."])


def _returns(frame: pd.DataFrame, config: FinanceConfig, assets: int, span: str
             ) -> Evaluation:
    realised = panel(frame, "realised", assets)
    forecast = panel(frame, "forecast", assets)
    historical = panel(frame, "historical_mean", assets)
    probability = config.target in PROBABILITY_TARGETS
    centre = 0.5 if probability else 0.0
    forecasts = {"model": forecast, "historical_mean": historical,
                 ("coin" if probability else "random_walk"): np.full_like(forecast, centre)}
    rows, losses = {}, {}
    for name, values in forecasts.items():
        call = metrics.directional_accuracy((values - centre).ravel(), realised.ravel())
        row = {"accuracy": call["accuracy"], "p_accuracy": call["p_value"]}
        if probability:
            loss = (values - (realised > 0)) ** 2  # the Brier score's terms
            row["brier"] = float(loss.mean())
        else:
            loss = (values - realised) ** 2
            row.update(metrics.error_scores(values.ravel(), realised.ravel()))
        rows[name], losses[name] = row, loss.mean(axis=1)
    _compare(losses, rows, config.horizon)
    trading = _trading(frame, config, assets, forecast - centre, span)
    baseline = "coin" if probability else "random_walk"
    measure = "Brier" if probability else "RMSE"
    key = "brier" if probability else "rmse"
    net, hold = trading.rows["strategy"], trading.rows["buy_and_hold"]
    # a Sharpe ratio within 0.05 is no difference (an always-long strategy is buy and hold)
    beats_hold = net["sharpe"] > hold["sharpe"] + SHARPE_MARGIN
    long_share = float((positions(forecast - centre, config.strategy, config.top_k) > 0).mean())
    headline = (
        f"Walk-forward over {span}: the LSTM's {config.horizon}-day {config.target} "
        f"forecasts {_verdict(rows, baseline)} the {LABELS[baseline]} ({measure} "
        f"{rows['model'][key]:.4g} vs {rows[baseline][key]:.4g}, Diebold-Mariano p = "
        f"{rows[baseline]['p_dm']:.3g}); the direction was right "
        f"{100 * rows['model']['accuracy']:.1f}% of the time (binomial p = "
        f"{rows['model']['p_accuracy']:.3g} against 50%; always calling the training "
        f"window's usual direction: {100 * rows['historical_mean']['accuracy']:.1f}%). "
        f"After {config.cost_bps:g} bp costs "
        f"its {config.strategy} strategy (long {100 * long_share:.0f}% of the time) "
        f"{'beat' if beats_hold else 'did not beat'} buy and hold: "
        f"{100 * net['annual_return']:.1f}% a year, Sharpe {net['sharpe']:.2f}, "
        f"against {100 * hold['annual_return']:.1f}% and {hold['sharpe']:.2f}.")
    notes = [headline, "accuracy: the share of right directions (p_accuracy: one-sided "
             "binomial test against 50%); dm < 0: the LSTM's loss (squared error"
             f"{', Brier' if probability else ''}) is lower than that row's, p_dm its "
             "two-sided p-value."]
    return Evaluation(task="finance", data=f"walk-forward, {span}", rows=rows,
                      labels={k: LABELS[k] for k in rows},
                      lower_is_better=["mae", "rmse", "brier"], notes=notes,
                      details={"trading": trading.to_json()})


def _trading(frame: pd.DataFrame, config: FinanceConfig, assets: int, signal: np.ndarray,
             span: str) -> Evaluation:
    next_return = panel(frame, "next_return", assets)
    weights = positions(signal, config.strategy, config.top_k)
    rows = {}
    for name, cost in (("strategy", config.cost_bps), ("strategy_gross", 0.0)):
        returns, turnover = metrics.strategy_returns(weights, next_return, cost)
        rows[name] = {**metrics.performance(returns), "turnover": float(turnover.mean())}
    rows["buy_and_hold"] = {**metrics.performance(metrics.buy_and_hold_returns(next_return)),
                            "turnover": 0.0}
    return Evaluation(
        task="finance", data=f"trading, {span}", rows=rows,
        labels={k: LABELS[k] for k in rows},
        lower_is_better=["annual_volatility", "max_drawdown", "turnover"],
        notes=[f"{config.strategy} strategy rebalanced daily at the close, "
               f"{config.cost_bps:g} bp per unit of turnover; Sharpe with a zero risk-free "
               "rate; turnover per day."])
