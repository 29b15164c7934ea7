"""``lstmkit.forecast``: time-series forecasting on your own data.

    from lstmkit.forecast import ForecastConfig, Forecaster

    config = ForecastConfig(target="Passengers", horizon=24, window=36)
    forecaster = Forecaster(config).fit("airline.csv", "runs/air", holdout=24)
    print(forecaster.scores.table())
    Forecaster.load("runs/air").predict("airline.csv")

``Forecaster`` is the model (fit, predict, evaluate, save, load); ``backtest`` is
rolling-origin evaluation; ``write_report`` draws a forecaster's report.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lstmkit.data.splits import cut_data
from lstmkit.data.timeseries import ForecastData
from lstmkit.data.windows import make_prediction_input
from lstmkit.tasks.forecast import ForecastConfig, Forecaster, backtest, score_forecasts
from lstmkit.tasks.lifecycle import Evaluation

__all__ = ["Evaluation", "ForecastConfig", "Forecaster", "backtest", "score_forecasts",
           "write_report"]


def write_report(run_dir: str | Path, forecaster: Forecaster, data: ForecastData,
                 holdout: int | None = None, scores: Evaluation | None = None) -> Path:
    """forecast.png, training.png (after training), gates.png and report.html in ``run_dir``."""
    # imported here: matplotlib costs a second at import, and forecasting alone needs none
    from lstmkit.report.forecast_report import (
        plot_forecast,
        plot_gates,
        plot_training,
        series_frame,
        write_report_page,
    )

    run_dir = Path(run_dir)
    if holdout:
        history, actual = cut_data(data, -holdout)
        actual_frame = series_frame(actual)
    else:
        history, actual_frame = data, None
    forecast = forecaster.predict(history)
    images = [plot_forecast(series_frame(history), forecast, run_dir / "forecast.png",
                            actual_frame).name]
    if forecaster.histories:
        images.append(plot_training(forecaster.histories, run_dir / "training.png").name)
    images.append(plot_gates(*_first_window(forecaster, history), run_dir / "gates.png").name)
    tables = {}
    if scores is not None:
        tables[scores.data] = scores.table()
        if "backtest" in scores.details:
            backtest_scores = Evaluation.from_json(scores.details["backtest"])
            tables[backtest_scores.data] = backtest_scores.table()
    notes = [f"{len(forecaster.members)} member(s); window {forecaster.config.window}, "
             f"horizon {forecaster.config.horizon}, strategy {forecaster.config.strategy}; "
             f"gates of layer 1 over the last input window of series "
             f"'{forecaster.meta['series'][0]}'."]
    return write_report_page(run_dir, "lstmkit forecast", tables, images, notes)


def _first_window(forecaster: Forecaster, history: ForecastData):
    """The first member's encoder and its input for the first series' last window."""
    config = forecaster.config
    inputs = make_prediction_input(forecaster.scaler.transform(history), config.window,
                                   config.horizon, window_center=config.window_center,
                                   window_scale=config.window_scale)
    net = forecaster.members[0]
    return net.encoder, net.encoder_input(inputs.x[:1], inputs.series_id[:1])


def forecast_frame_to_csv(frame: pd.DataFrame) -> str:
    """predict()'s frame as CSV text (times as ISO dates)."""
    return frame.to_csv(index=False, date_format="%Y-%m-%d %H:%M:%S")
