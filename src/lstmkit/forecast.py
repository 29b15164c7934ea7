"""``lstmkit.forecast``: time-series forecasting on your own data.

    from lstmkit.forecast import ForecastConfig, Forecaster, train_run

    config = ForecastConfig(target="Passengers", horizon=24, window=36)
    forecaster, scores = train_run(config, "airline.csv", "runs/air", holdout=24)
    print(metrics_table(scores))
    Forecaster.load("runs/air").predict("airline.csv")

``Forecaster`` is the model (fit, predict, evaluate, save, load); ``backtest`` is
rolling-origin evaluation; ``train_run`` is what ``lstmkit forecast train`` does:
train, score on a held-out tail, save the run directory and write its report.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pandas as pd

from lstmkit.data.splits import cut_data
from lstmkit.data.timeseries import ForecastData
from lstmkit.data.windows import make_prediction_input
from lstmkit.errors import LstmkitError
from lstmkit.rundir import prepare_run_dir, staged_run_dir
from lstmkit.tasks.forecast import (
    ForecastConfig,
    Forecaster,
    backtest,
    metrics_table,
    score_forecasts,
)
from lstmkit.train import is_main_process

__all__ = ["ForecastConfig", "Forecaster", "backtest", "metrics_table", "score_forecasts",
           "train_run", "write_report"]


def train_run(config: ForecastConfig, data: Any, run_dir: str | Path, holdout: int | None = None,
              overwrite: bool = False, resume: bool = False, backtest_windows: int = 0
              ) -> tuple[Forecaster, dict[str, Any] | None]:
    """Train on ``data`` less its last ``holdout`` points, score the held-out tail against
    the baselines (and a rolling-origin backtest when ``backtest_windows``), save the run
    directory with its report. Returns the forecaster and the scores.

    A new directory is written in place, so an interrupted run leaves its checkpoints
    for ``resume``; an existing one is replaced (``overwrite``) only when the new run
    has finished, so a failed run loses nothing.
    """
    data = config.load(data)  # bad data fails here, before any file is touched
    training = cut_data(data, -holdout)[0] if holdout else data
    # the report forecasts from the end of the training part: check that it can
    make_prediction_input(training, config.window, config.horizon)
    run_dir = Path(run_dir)
    if resume:
        if not run_dir.is_dir():
            raise LstmkitError(f"nothing to resume: {run_dir} does not exist")
        place = contextlib.nullcontext(run_dir)
    elif prepare_run_dir(run_dir, overwrite).is_dir() and any(run_dir.iterdir()):
        place = staged_run_dir(run_dir, overwrite)
    else:
        place = contextlib.nullcontext(run_dir)
    with place as directory:
        forecaster = Forecaster(config).fit(training, run_dir=directory, resume=resume)
        scores = forecaster.evaluate(data, holdout) if holdout else None
        if backtest_windows:
            report = backtest(config, data, windows=backtest_windows)
            scores = {**(scores or {}), "backtest": report}
        forecaster.save(directory, scores)
        if is_main_process():
            write_report(directory, forecaster, data, holdout, scores)
    return forecaster, scores


def write_report(run_dir: str | Path, forecaster: Forecaster, data: ForecastData,
                 holdout: int | None = None, scores: dict[str, Any] | None = None) -> Path:
    """forecast.png, training.png, gates.png and report.html in ``run_dir``."""
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
    if scores and "model" in scores:
        tables[f"held-out last {holdout} points"] = metrics_table(scores)
    if scores and "backtest" in scores:
        bt = scores["backtest"]
        tables[f"backtest: {len(bt['windows'])} windows from {bt['cutoffs'][0]}"] = \
            metrics_table(bt["mean"])
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
