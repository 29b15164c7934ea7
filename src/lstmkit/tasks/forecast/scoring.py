"""A forecast's scores beside the naive and seasonal naive forecasts on the same points,
as one Evaluation."""

from __future__ import annotations

import numpy as np

from lstmkit.data.timeseries import ForecastData
from lstmkit.tasks.forecast import metrics
from lstmkit.tasks.forecast.config import TASK
from lstmkit.tasks.lifecycle import Evaluation


def score_forecasts(history: ForecastData, actual: ForecastData, forecast: np.ndarray,
                    quantiles: list[float], season: int, data: str) -> Evaluation:
    """Metrics of a quantile forecast (S, H, Q) and of the baselines, on the same points.

    Rows "model", "naive", "seasonal_naive", each with MAE, RMSE, sMAPE, MASE (means
    over series) and, for the model, the coverage and width of the widest interval.
    """
    median = quantiles.index(0.5)
    lower, upper = 0, len(quantiles) - 1
    rows: dict[str, list[dict[str, float]]] = {"model": [], "naive": [], "seasonal_naive": []}
    for k, (past, future) in enumerate(zip(history.series, actual.series)):
        y = future.target
        horizon = len(y)
        candidates = {
            "model": forecast[k, :horizon, median],
            "naive": metrics.naive_forecast(past.target, horizon),
            "seasonal_naive": metrics.seasonal_naive_forecast(past.target, horizon, season),
        }
        for name, prediction in candidates.items():
            row = {
                "MAE": metrics.mae(y, prediction),
                "RMSE": metrics.rmse(y, prediction),
                "sMAPE": metrics.smape(y, prediction),
                "MASE": metrics.mase(y, prediction, past.target, season),
            }
            if name == "model" and upper > lower:
                row["coverage"] = metrics.interval_coverage(y, forecast[k, :horizon, lower],
                                                            forecast[k, :horizon, upper])
                row["width"] = metrics.interval_width(forecast[k, :horizon, lower],
                                                      forecast[k, :horizon, upper])
            rows[name].append(row)
    means = {name: {key: float(np.mean([r[key] for r in per_series])) for key in per_series[0]}
             for name, per_series in rows.items()}
    return forecast_evaluation(data, means, season, quantiles)


def forecast_evaluation(data: str, rows: dict[str, dict[str, float]], season: int,
                         quantiles: list[float]) -> Evaluation:
    notes = [f"MASE: mean absolute error over that of the in-sample seasonal naive forecast "
             f"with period m={season}"]
    if len(quantiles) > 1:
        notes.append(f"coverage: share of actual values inside the {quantiles[0]:g}-"
                     f"{quantiles[-1]:g} quantile interval")
    return Evaluation(
        task=TASK, data=data, rows=rows,
        labels={"model": "lstmkit LSTM", "naive": "naive",
                "seasonal_naive": f"seasonal naive (m={season})"},
        lower_is_better=["MAE", "RMSE", "sMAPE", "MASE", "width"], notes=notes,
        details={"season": season})
