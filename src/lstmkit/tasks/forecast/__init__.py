"""Time-series forecasting: the Python API behind ``lstmkit forecast``.

    from lstmkit.forecast import ForecastConfig, Forecaster

    config = ForecastConfig(target="Passengers", horizon=24, window=36)
    model = Forecaster(config).fit("airline.csv")
    model.predict("airline.csv")                # the next 24 months, with intervals
    model.evaluate("airline.csv", holdout=24)    # against naive and seasonal naive
    model.save("runs/air"); Forecaster.load("runs/air")

The recipe (what made LSTM forecasters accurate on these data): per-series
scaling fitted on the training part, per-window normalisation (the window's last
value and mean absolute deviation), training on every window including trailing
ones whose target runs past the data (masked in the loss), a head over the last
hidden state plus a linear skip (see forecast.network), quantile outputs, and an
ensemble of seeds combined by the median.

One module per concept: ``config`` (ForecastConfig), ``network`` (ForecastNet, the
pinball loss), ``metrics`` (accuracy metrics and baseline forecasts), ``scoring`` (a
forecast beside the baselines, as an Evaluation), ``forecaster`` (the Forecaster
task), ``backtest`` (rolling-origin evaluation).
"""

from lstmkit.tasks.forecast.backtest import backtest
from lstmkit.tasks.forecast.config import ForecastConfig
from lstmkit.tasks.forecast.forecaster import Forecaster
from lstmkit.tasks.forecast.scoring import score_forecasts

__all__ = ["ForecastConfig", "Forecaster", "backtest", "score_forecasts"]
