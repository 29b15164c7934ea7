"""Rolling-origin evaluation: forecasts from several cutoffs, scored beside the baselines."""

from __future__ import annotations

from typing import Any

import numpy as np

from lstmkit.data.splits import cut_data
from lstmkit.data.time_axis import format_time
from lstmkit.errors import LstmkitError
from lstmkit.tasks.forecast.config import ForecastConfig
from lstmkit.tasks.forecast.forecaster import Forecaster
from lstmkit.tasks.forecast.scoring import forecast_evaluation, score_forecasts
from lstmkit.tasks.lifecycle import Evaluation


def backtest(config: ForecastConfig, data: Any, windows: int = 3, step: int | None = None,
             refit: bool = False) -> Evaluation:
    """Rolling-origin evaluation: ``windows`` forecasts of ``horizon`` steps, each from a
    cutoff ``step`` (default: the horizon) after the previous, the last ending at the end
    of the data. With ``refit`` a new model is trained at every cutoff; without, one
    model trained at the first cutoff forecasts from every later one.

    Returns the mean scores; ``details`` holds each window's, the cutoffs and fit times.
    """
    data = config.load(data)
    horizon = config.horizon
    step = horizon if step is None else step
    for option, value in (("--windows", windows), ("--step", step)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LstmkitError(f"{option} must be a whole number of at least 1, got {value!r}")
    back = [horizon + k * step for k in range(windows - 1, -1, -1)]  # points after each cutoff
    shortest = min(len(s) for s in data.series)
    if shortest - back[0] < config.window + horizon:
        raise LstmkitError(
            f"{windows} backtest windows every {step} steps leave the first training part "
            f"{shortest - back[0]} points, fewer than window + horizon = "
            f"{config.window + horizon}; use fewer windows, a smaller step or window"
        )
    model, scores, cutoffs, fit_seconds = None, [], [], []
    for points_after in back:
        history, rest = cut_data(data, -points_after)
        actual, _ = cut_data(rest, horizon)
        if refit or model is None:
            model = Forecaster(config).fit(history)
            fit_seconds.append(model.fit_seconds)
        forecast, _ = model.forecast_quantiles(history)
        cutoff = format_time(history.series[0].time[-1])
        scores.append(score_forecasts(history, actual, forecast, config.quantiles,
                                      model.meta["season"], f"origin after {cutoff}"))
        cutoffs.append(cutoff)
    mean = {name: {key: float(np.mean([s[name][key] for s in scores])) for key in row}
            for name, row in scores[0].rows.items()}
    evaluation = forecast_evaluation(
        f"backtest: mean of {windows} windows of {horizon} steps from {cutoffs[0]}", mean,
        model.meta["season"], config.quantiles)
    evaluation.details.update({"windows": [s.to_json() for s in scores], "cutoffs": cutoffs,
                               "refit": refit, "horizon": horizon, "step": step,
                               "fit_seconds": fit_seconds})
    return evaluation
