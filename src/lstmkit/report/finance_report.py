"""The finance report: what a person looks at after a walk-forward backtest.

- equity.png (not for volatility): the growth of 1 of the LSTM strategy after and before
  costs and of buy and hold (log scale), and below it the drawdowns;
- forecast.png: the first asset's forecasts over the test days against what happened;
  for volatility the annualised LSTM, GARCH(1,1) and EWMA forecasts against the realised
  volatility, for the other targets the forecast beside the realised return and a
  scatter of one against the other;
- gates.png: forget, input and output gates and the cell state of the last model over
  the first asset's last input window;
- report.html: the verdict, the score tables (and the trading table) and the pictures.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib import ticker

from lstmkit.report.figures import plt, save_figure
from lstmkit.report.forecast_report import plot_gates, write_report_page
from lstmkit.tasks.finance import metrics
from lstmkit.tasks.finance.scoring import LABELS, PROBABILITY_TARGETS, panel, positions
from lstmkit.tasks.lifecycle import Evaluation

if TYPE_CHECKING:
    from lstmkit.tasks.finance.model import FinanceModel

EQUITY_FILE = "equity.png"
FORECAST_FILE = "forecast.png"
GATES_FILE = "gates.png"
TRADING_DAYS = 252
REALISED_SMOOTHING = 21  # days: one day's realised variance is too noisy to read


def write_report(directory: str | Path, model: FinanceModel) -> Path:
    """The pictures and report.html of ``model``'s last backtest in ``directory``;
    returns the path of report.html."""
    if model.forecasts is None or model.scores is None:
        raise ValueError("the model has no backtest to report: call backtest() first")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config, scores = model.config, model.scores
    images = []
    if config.target != "volatility":
        plot_equity(model, directory / EQUITY_FILE)
        images.append(EQUITY_FILE)
    plot_forecasts(model, directory / FORECAST_FILE)
    images.append(FORECAST_FILE)
    # the first asset's window: one window is what the gate heatmaps can show
    plot_gates(model.net.encoder, model.last_windows[:1], directory / GATES_FILE)
    images.append(GATES_FILE)
    # the verdict goes on top of the page, the tables keep the notes on how to read them
    tables = {scores.data: dataclasses.replace(scores, notes=scores.notes[1:]).table()}
    if "trading" in scores.details:
        trading = Evaluation.from_json(scores.details["trading"])
        tables[trading.data] = trading.table()
    title = (f"lstmkit finance: {config.target} forecasts of "
             f"{', '.join(model.meta['assets'])}")
    return write_report_page(directory, title, tables, images, [scores.notes[0]])


def _dates(frame: pd.DataFrame, assets: int) -> pd.DatetimeIndex:
    """The test origins, one per day (the table repeats each for every asset)."""
    return pd.DatetimeIndex(frame["date"].to_numpy()[::assets])


def _growth(returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equity (growth of 1) after each day and its drawdown from the running peak (<= 0)."""
    equity = np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    # the starting 1 counts as a peak: losing from the first day is a drawdown too
    drawdown = equity / np.maximum.accumulate(equity) - 1.0
    return equity[1:], drawdown[1:]


def plot_equity(model: FinanceModel, path: str | Path) -> Path:
    """Growth of 1 (log scale) of the strategy after and before costs and of buy and hold,
    and the drawdowns of the strategy after costs and of buy and hold below it."""
    config, frame = model.config, model.forecasts
    assets = len(model.meta["assets"])
    centre = 0.5 if config.target in PROBABILITY_TARGETS else 0.0
    signal = panel(frame, "forecast", assets) - centre
    next_return = panel(frame, "next_return", assets)
    weights = positions(signal, config.strategy, config.top_k)
    series = {
        "strategy": metrics.strategy_returns(weights, next_return, config.cost_bps)[0],
        "strategy_gross": metrics.strategy_returns(weights, next_return, 0.0)[0],
        "buy_and_hold": metrics.buy_and_hold_returns(next_return),
    }
    # buy and hold first, the strategy last: a strategy that is always long lies right on
    # buy and hold, and it is the strategy's line that must stay visible
    order = ("buy_and_hold", "strategy_gross", "strategy")
    styles = {"strategy": {"color": "tab:blue", "linewidth": 1.4},
              "strategy_gross": {"color": "tab:cyan", "linewidth": 1.0, "linestyle": "--"},
              "buy_and_hold": {"color": "black", "linewidth": 1.2}}
    labels = {name: LABELS[name] for name in order}
    if config.strategy == "sign":
        # a sign strategy that never goes short is buy and hold in disguise: say how often
        long = 100 * float(np.mean(weights > 0)) if weights.size else 0.0
        labels["strategy"] += f", long {long:.0f}% of asset-days"
    # a position taken at an origin's close earns the next day's return: each value is
    # plotted at its origin's date, one trading day early, invisible at this scale
    dates = _dates(frame, assets)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True,
                                         gridspec_kw={"height_ratios": [2, 1]})
    for name in order:
        equity, drawdown = _growth(series[name])
        sharpe = metrics.performance(series[name])["sharpe"]
        top.plot(dates, equity, label=f"{labels[name]} (Sharpe {sharpe:.2f})", **styles[name])
        if name != "strategy_gross":
            bottom.plot(dates, 100 * drawdown, label=labels[name], **styles[name])
    top.set_yscale("log")
    _plain_log_ticks(top)
    top.axhline(1.0, color="grey", linewidth=0.8)
    top.set_ylabel("growth of 1 (log scale)")
    top.set_title(f"{config.strategy} strategy on the {config.target} forecasts of "
                  f"{', '.join(model.meta['assets'])}, {config.cost_bps:g} bp per unit "
                  "of turnover")
    handles, names = top.get_legend_handles_labels()
    # the legend in the order of the metrics table: the strategy first
    top.legend(handles[::-1], names[::-1], loc="best", fontsize=8)
    bottom.set_ylabel("drawdown (%)")
    bottom.set_xlabel("test origin date")
    handles, names = bottom.get_legend_handles_labels()
    bottom.legend(handles[::-1], names[::-1], loc="lower left", fontsize=8)
    for axis in (top, bottom):
        axis.grid(True, alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)


def _plain_log_ticks(axis: plt.Axes) -> None:
    """Ticks of a log axis as plain numbers (0.8, 1, 1.2): a backtest rarely spans a
    factor of 10, where the default would label one tick, or none."""
    low, high = axis.get_ylim()
    if high / low < 20:
        axis.yaxis.set_major_locator(ticker.MaxNLocator(nbins=7, steps=[1, 2, 2.5, 5, 10]))
    else:
        axis.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.yaxis.set_minor_formatter(ticker.NullFormatter())


def plot_forecasts(model: FinanceModel, path: str | Path) -> Path:
    """The first asset's forecasts over the test days against the realised values."""
    if model.config.target == "volatility":
        return _plot_volatility(model, path)
    return _plot_signal(model, path)


def _first_asset(model: FinanceModel) -> tuple[str, pd.DataFrame]:
    asset = model.meta["assets"][0]
    # as text: a loaded forecasts.csv reads asset names such as "1" back as numbers
    rows = model.forecasts[model.forecasts["asset"].astype(str) == str(asset)]
    return asset, rows.set_index(pd.DatetimeIndex(rows["date"]))


def _plot_volatility(model: FinanceModel, path: str | Path) -> Path:
    """Annualised volatility sqrt(252 v / h) of the LSTM, GARCH(1,1) and EWMA forecasts
    and of the realised variance (smoothed over 21 days)."""
    horizon = model.config.horizon
    asset, rows = _first_asset(model)

    def annualised(variance: pd.Series) -> pd.Series:
        return 100 * np.sqrt(TRADING_DAYS * variance / horizon)

    # centred: the realised variance at an origin is of the days after it, and a trailing
    # mean would make it lag the forecasts made at the same origin
    smoothed = rows["realised"].rolling(REALISED_SMOOTHING, center=True,
                                        min_periods=REALISED_SMOOTHING // 2).mean()
    figure, axis = plt.subplots(figsize=(10, 4.5))
    axis.plot(rows.index, annualised(smoothed), color="grey", linewidth=0.8,
              label=f"realised ({REALISED_SMOOTHING}-day mean)")
    for column, name, color in (("garch", "garch", "tab:orange"), ("ewma", "ewma", "tab:green"),
                                ("forecast", "model", "tab:blue")):
        axis.plot(rows.index, annualised(rows[column]), color=color,
                  linewidth=1.5 if name == "model" else 1.0, label=LABELS[name])
    axis.set_title(f"{asset}: {horizon}-day volatility forecasts, annualised")
    axis.set_xlabel("forecast origin date")
    axis.set_ylabel("annualised volatility (%)")
    axis.set_ylim(bottom=0)
    axis.grid(True, alpha=0.3)
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def _plot_signal(model: FinanceModel, path: str | Path) -> Path:
    """Left, the forecast (right axis) over the realised return (left axis) through time;
    right, forecast against realised, one point per day."""
    config = model.config
    asset, rows = _first_asset(model)
    probability = config.target in PROBABILITY_TARGETS
    centre = 0.5 if probability else 0.0
    relative = config.target == "cross_section"
    if probability:
        forecast_label = ("forecast probability of\nbeating the median" if relative
                          else "forecast probability of up")
    else:
        forecast_label = f"forecast {config.horizon}-day log return"
    # two lines where long: the axis labels must fit beside a panel 4.5 inches high
    realised_label = (f"realised {config.horizon}-day log return"
                      + ("\nminus the assets' median" if relative else ""))
    figure, (series, scatter) = plt.subplots(1, 2, figsize=(13, 4.5),
                                             gridspec_kw={"width_ratios": [3, 1]})
    series.plot(rows.index, rows["realised"], color="grey", linewidth=0.6, alpha=0.8,
                label=realised_label)
    series.axhline(0.0, color="grey", linewidth=0.8)
    series.set_ylabel(realised_label, color="dimgrey")
    series.set_xlabel("forecast origin date")
    # a twin axis: the forecasts of returns are far smaller than the returns themselves
    # (and a probability has no common unit with them), so each gets its own scale
    twin = series.twinx()
    twin.plot(rows.index, rows["forecast"], color="tab:blue", linewidth=1.2,
              label=forecast_label)
    twin.axhline(centre, color="tab:blue", linewidth=0.8, linestyle=":")
    twin.set_ylabel(forecast_label, color="tab:blue")
    twin.tick_params(axis="y", colors="tab:blue")
    _align_centres(series, 0.0, twin, centre)
    handles = [line for axis in (series, twin) for line in axis.get_lines()
               if not line.get_label().startswith("_")]
    series.legend(handles, [h.get_label().replace("\n", " ") for h in handles],
                  loc="upper left", fontsize=8)
    series.set_title(f"{asset}: {config.target} forecasts and what happened")
    series.grid(True, alpha=0.3)

    right = (np.sign(rows["forecast"] - centre) == np.sign(rows["realised"])).mean()
    correlation = rows["forecast"].corr(rows["realised"])
    scatter.scatter(rows["forecast"], rows["realised"], s=5, alpha=0.4, color="tab:blue")
    scatter.axvline(centre, color="grey", linewidth=0.8)
    scatter.axhline(0.0, color="grey", linewidth=0.8)
    scatter.set_xlabel(forecast_label)
    scatter.set_ylabel(realised_label)
    scatter.set_title(f"direction right {100 * right:.1f}%, correlation {correlation:.2f}",
                      fontsize=9)
    scatter.grid(True, alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)


def _align_centres(left: plt.Axes, left_centre: float, right: plt.Axes,
                   right_centre: float) -> None:
    """Put both axes' centres (zero return, the undecided forecast) at the same height,
    so that a forecast above its line reads as a call for a rise on the left axis too."""
    low, high = left.get_ylim()
    span = max(high - left_centre, left_centre - low)
    left.set_ylim(left_centre - span, left_centre + span)
    low, high = right.get_ylim()
    span = max(high - right_centre, right_centre - low)
    right.set_ylim(right_centre - span, right_centre + span)
