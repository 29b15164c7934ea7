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
hidden state plus a linear skip (see forecast_model), quantile outputs, and an
ensemble of seeds combined by the median.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from lstmkit.data.scaling import SCALER_METHODS, WINDOW_CENTERS, WINDOW_SCALES, SeriesScaler
from lstmkit.data.splits import cut_data
from lstmkit.data.timeseries import ForecastData, load_series
from lstmkit.data.windows import check_window_horizon, make_prediction_input, make_windows
from lstmkit.errors import LstmkitError
from lstmkit.rundir import (
    atomic_write_json,
    load_weights,
    read_config,
    read_json,
    save_weights,
    write_config,
)
from lstmkit.tasks import forecast_metrics as metrics
from lstmkit.tasks.forecast_model import ForecastNet, pinball_loss
from lstmkit.train import TrainConfig, fit, is_main_process

TASK = "forecast"
STRATEGIES = ("direct", "recursive")
MIN_STEPS_PER_EPOCH = 50  # small data: repeat the windows so checkpoints are not per step
WEIGHTS_FILE = "model.safetensors"
SCALER_FILE = "scaler.json"
METRICS_FILE = "metrics.json"


@dataclass
class ForecastConfig:
    """Everything that rebuilds a forecaster and its data pipeline (saved in config.json)."""

    # data (see lstmkit.data.timeseries.load_series)
    target: str | list[str] | None = None
    time: str | list[str] | None = None
    series_id: str | None = None
    layout: str = "long"
    past_covariates: list[str] = field(default_factory=list)
    future_covariates: list[str] = field(default_factory=list)
    calendar: bool | list[str] = False
    missing: str = "interpolate"
    freq: str | None = None
    resample: str | None = None
    # the forecast
    horizon: int = 12
    window: int = 36
    strategy: str = "direct"
    quantiles: list[float] = field(default_factory=lambda: [0.1, 0.5, 0.9])
    season: int | None = None  # for MASE and seasonal naive; None: from the frequency
    # scaling
    scaler: str = "standard"
    window_center: str = "last"
    window_scale: str = "std"
    # model
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    skip: bool = True
    series_embedding: int | None = None  # None: 4 when there are several series, else 0
    lstm_options: dict[str, Any] = field(default_factory=dict)  # peephole, layer_norm, ...
    # training
    steps: int = 300
    batch_size: int = 32
    lr: float = 5e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    seed: int = 0
    ensemble: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_window_horizon(self.window, self.horizon)
        if self.strategy not in STRATEGIES:
            raise LstmkitError(f"strategy must be one of {', '.join(STRATEGIES)}, "
                               f"got {self.strategy!r}")
        if self.strategy == "recursive" and self.past_covariates:
            raise LstmkitError("the recursive strategy cannot forecast past covariates; use "
                               "--strategy direct or give them as future covariates")
        quantiles = sorted(float(q) for q in self.quantiles)
        if 0.5 not in quantiles or not all(0 < q < 1 for q in quantiles):
            raise LstmkitError(f"quantiles must lie strictly between 0 and 1 and include the "
                               f"median 0.5 (the point forecast); got {self.quantiles}")
        self.quantiles = quantiles
        for name, value, allowed in (("scaler", self.scaler, SCALER_METHODS),
                                     ("window_center", self.window_center, WINDOW_CENTERS),
                                     ("window_scale", self.window_scale, WINDOW_SCALES)):
            if value not in allowed:
                raise LstmkitError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        for name in ("hidden_size", "num_layers", "steps", "batch_size", "ensemble"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LstmkitError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= self.dropout < 1:
            raise LstmkitError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise LstmkitError(f"lr must be positive, got {self.lr}")

    def data_options(self) -> dict[str, Any]:
        return dict(target=self.target, time=self.time, series_id=self.series_id,
                    layout=self.layout, past_covariates=self.past_covariates,
                    future_covariates=self.future_covariates, calendar=self.calendar,
                    missing=self.missing, freq=self.freq, resample=self.resample)

    def load(self, source: Any) -> ForecastData:
        """A CSV/Parquet path or DataFrame as validated series; ForecastData passes through."""
        if isinstance(source, ForecastData):
            return source
        return load_series(source, **self.data_options())


class _ForecastLoss:
    """loss_fn for the training engine: pinball loss over observed targets."""

    def __init__(self, quantiles: list[float]) -> None:
        self.quantiles = torch.tensor(quantiles)

    def __call__(self, model: ForecastNet, batch: tuple) -> torch.Tensor:
        x, future, y, y_mask, series_id = batch[:5]
        prediction = model(x, future, series_id)
        return pinball_loss(prediction, y, y_mask, self.quantiles.to(prediction))


class _Windows(Dataset):
    """The training windows, repeated ``times`` times so one epoch is a useful number of
    steps; batches are gathered by tensor indexing rather than item by item."""

    def __init__(self, tensors: tuple[torch.Tensor, ...], times: int) -> None:
        self.tensors, self.times = tensors, times
        self.count = len(tensors[0])

    def __len__(self) -> int:
        return self.count * self.times

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[index % self.count] for t in self.tensors)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        rows = torch.as_tensor(indices) % self.count
        return tuple(t[rows] for t in self.tensors)


def _already_batched(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return batch


class Forecaster:
    """Build from a ForecastConfig, then fit, predict, evaluate, backtest, save, load."""

    def __init__(self, config: ForecastConfig) -> None:
        config.validate()
        self.config = config
        self.members: list[ForecastNet] = []
        self.scaler: SeriesScaler | None = None
        self.meta: dict[str, Any] = {}
        self.histories: list[list[dict]] = []
        self.fit_seconds: float | None = None

    # --- training ------------------------------------------------------------------------

    def fit(self, data: Any, run_dir: str | Path | None = None, resume: bool = False
            ) -> Forecaster:
        """Train the ensemble on all of ``data`` (hold out by cutting it first)."""
        config = self.config
        data = config.load(data)
        self.scaler = SeriesScaler(config.scaler).fit(data)
        self._remember(data)
        windows = make_windows(self.scaler.transform(data), config.window, self._steps_out(),
                               window_center=config.window_center,
                               window_scale=config.window_scale)
        tensors = windows.tensors()[:5]  # x, future, y, y_mask, series_id
        steps_per_pass = math.ceil(len(windows) / config.batch_size)
        repeats = math.ceil(MIN_STEPS_PER_EPOCH / steps_per_pass)
        train = TrainConfig(
            epochs=math.ceil(config.steps / (steps_per_pass * repeats)),
            max_steps=config.steps,
            batch_size=config.batch_size,
            lr=config.lr,
            weight_decay=config.weight_decay,
            schedule="onecycle",
            grad_clip=config.grad_clip,
            patience=None,
            progress=config.progress,
        )
        started = time.perf_counter()
        self.members, self.histories = [], []
        for member in range(config.ensemble):
            seed = config.seed + member
            torch.manual_seed(seed)
            net = self._build()
            member_dir = None if run_dir is None else Path(run_dir) / "members" / str(member)
            result = fit(net, _Windows(tensors, repeats), _ForecastLoss(config.quantiles),
                         dataclasses.replace(train, seed=seed), run_dir=member_dir,
                         resume=resume and member_dir is not None and member_dir.exists(),
                         collate_fn=_already_batched)
            self.members.append(net.eval())
            self.histories.append(result.history)
        self.fit_seconds = time.perf_counter() - started
        return self

    def _steps_out(self) -> int:
        return self.config.horizon if self.config.strategy == "direct" else 1

    def _remember(self, data: ForecastData) -> None:
        """What the network's shape and the predictions depend on, beyond the config."""
        self.meta = {
            "freq": data.freq,
            "series": data.series_names,
            "target": data.target,
            "features": data.feature_names,
            "future_features": data.future_feature_names,
            "calendar": list(data.calendar),
            "season": self.config.season or metrics.seasonality(data.freq),
        }

    def _build(self) -> ForecastNet:
        config, meta = self.config, self.meta
        num_series = len(meta["series"])
        embedding = config.series_embedding
        if embedding is None:
            embedding = 4 if num_series > 1 else 0
        try:
            return self._network(num_series, embedding)
        except ValueError as error:  # an LSTM option out of range, from lstm_options
            raise LstmkitError(f"bad model option: {error}") from None

    def _network(self, num_series: int, embedding: int) -> ForecastNet:
        config, meta = self.config, self.meta
        return ForecastNet(
            num_features=len(meta["features"]),
            num_future_features=len(meta["future_features"]),
            window=config.window,
            steps_out=self._steps_out(),
            num_quantiles=len(config.quantiles),
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout,
            num_series=num_series,
            series_embedding=embedding,
            skip=config.skip,
            lstm_options=config.lstm_options,
        )

    # --- forecasting ---------------------------------------------------------------------

    def _require_fitted(self) -> None:
        if not self.members:
            raise LstmkitError("the forecaster is not trained: call fit() or load a run first")

    def _check_same_series(self, data: ForecastData) -> None:
        if data.series_names != self.meta["series"]:
            raise LstmkitError(
                f"the model was trained on series {self.meta['series'][:5]} but the data has "
                f"{data.series_names[:5]}; forecast the series the model knows"
            )
        if data.feature_names != self.meta["features"]:
            raise LstmkitError(
                f"the model was trained on features {self.meta['features']} but the data has "
                f"{data.feature_names}; use the same columns as in training"
            )

    @torch.no_grad()
    def forecast_quantiles(self, data: Any) -> tuple[np.ndarray, tuple[pd.DatetimeIndex, ...]]:
        """Quantile forecasts past the end of each series: (S, H, Q) in data units, times."""
        self._require_fitted()
        data = self.config.load(data)
        self._check_same_series(data)
        config = self.config
        inputs = make_prediction_input(self.scaler.transform(data), config.window,
                                       config.horizon, window_center=config.window_center,
                                       window_scale=config.window_scale)
        per_member = torch.stack([
            self._roll_out(net, inputs.x, inputs.future, inputs.series_id).sort(dim=-1).values
            for net in self.members
        ])  # (M, S, H, Q), each member's quantiles in order (no crossing)
        # the element-wise median of ordered vectors is ordered too
        combined = per_member.median(dim=0).values
        normalised = inputs.invert(combined.double().numpy())
        ids = inputs.series_id.numpy()
        return self.scaler.inverse_target(normalised, ids), inputs.times

    def _roll_out(self, net: ForecastNet, x: torch.Tensor, future: torch.Tensor,
                  series_id: torch.Tensor) -> torch.Tensor:
        """All H steps: at once (direct), or one at a time feeding the median back (recursive)."""
        if self.config.strategy == "direct":
            return net(x, future, series_id)
        median = self.config.quantiles.index(0.5)
        steps = []
        for k in range(self.config.horizon):
            step = net(x, future[:, k : k + 1], series_id)  # (S, 1, Q)
            steps.append(step)
            # the next input step: the forecast target, then that step's known features
            next_step = torch.cat([step[:, :, median], future[:, k]], dim=-1)  # (S, F)
            x = torch.cat([x[:, 1:], next_step.unsqueeze(1)], dim=1)
        return torch.cat(steps, dim=1)  # (S, H, Q)

    def predict(self, data: Any) -> pd.DataFrame:
        """The next ``horizon`` steps of every series: columns series, time, forecast and
        one column per quantile (q0.1, q0.5, ...); ``forecast`` is the median."""
        values, times = self.forecast_quantiles(data)  # (S, H, Q)
        S, H, Q = values.shape
        columns: dict[str, Any] = {
            "series": np.repeat(np.asarray(self.meta["series"], dtype=object), H),
            "time": np.concatenate([t.values for t in times]),
            "forecast": values[:, :, self.config.quantiles.index(0.5)].reshape(S * H),
        }
        for q, column in zip(self.config.quantiles, values.reshape(S * H, Q).T):
            columns[f"q{q:g}"] = column
        return pd.DataFrame(columns)

    # --- measuring -----------------------------------------------------------------------

    def evaluate(self, data: Any, holdout: int | None = None) -> dict[str, Any]:
        """Forecast the last ``holdout`` points (default: the horizon) of each series from
        the rest, and score it beside naive and seasonal naive on the same points."""
        data = self.config.load(data)
        holdout = holdout or self.config.horizon
        if not 1 <= holdout <= self.config.horizon:
            raise LstmkitError(f"holdout must lie between 1 and the horizon "
                               f"({self.config.horizon}), got {holdout}")
        history, actual = cut_data(data, -holdout)
        forecast, _ = self.forecast_quantiles(history)
        return score_forecasts(history, actual, forecast[:, :holdout], self.config.quantiles,
                               self.meta["season"])

    # --- files ---------------------------------------------------------------------------

    def save(self, run_dir: str | Path, metrics_report: dict | None = None) -> None:
        """Write config.json, model.safetensors, scaler.json (and metrics.json) to run_dir."""
        self._require_fitted()
        if not is_main_process():
            return
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        weights = {f"members.{k}.{name}": tensor
                   for k, net in enumerate(self.members)
                   for name, tensor in net.state_dict().items()}
        save_weights(run_dir / WEIGHTS_FILE, weights)
        atomic_write_json(run_dir / SCALER_FILE, self.scaler.to_dict())
        if metrics_report is not None:
            atomic_write_json(run_dir / METRICS_FILE, metrics_report)
        write_config(run_dir, TASK, {"config": dataclasses.asdict(self.config),
                                     "meta": self.meta, "members": len(self.members)})

    @classmethod
    def load(cls, run_dir: str | Path) -> Forecaster:
        """A forecaster saved by :meth:`save`; loading reads JSON and safetensors only."""
        run_dir = Path(run_dir)
        saved = read_config(run_dir, TASK, required=(WEIGHTS_FILE, SCALER_FILE))
        try:
            config = ForecastConfig(**saved["config"])
            forecaster = cls(config)
            forecaster.meta = dict(saved["meta"])
            member_count = int(saved["members"])
        except (KeyError, TypeError) as error:
            raise LstmkitError(f"{run_dir}/config.json does not describe a forecaster this "
                               f"version can load ({error}); train the model again") from None
        forecaster.scaler = SeriesScaler.from_dict(read_json(run_dir / SCALER_FILE))
        weights = load_weights(run_dir / WEIGHTS_FILE)
        for k in range(member_count):
            net = forecaster._build()
            prefix = f"members.{k}."
            state = {name[len(prefix):]: t for name, t in weights.items()
                     if name.startswith(prefix)}
            try:
                net.load_state_dict(state)
            except RuntimeError as error:
                raise LstmkitError(f"{run_dir}/{WEIGHTS_FILE} does not fit the network its "
                                   f"config describes ({str(error)[:200]}); the directory is "
                                   "incomplete or from an incompatible version") from None
            forecaster.members.append(net.eval())
            log = run_dir / "members" / str(k) / "log.csv"
            if log.is_file():
                forecaster.histories.append(pd.read_csv(log).to_dict("records"))
        return forecaster


def score_forecasts(history: ForecastData, actual: ForecastData, forecast: np.ndarray,
                    quantiles: list[float], season: int) -> dict[str, Any]:
    """Metrics of a quantile forecast (S, H, Q) and of the baselines, on the same points.

    Returns {"model": {...}, "naive": {...}, "seasonal_naive": {...}, "series": [...]},
    each with MAE, RMSE, sMAPE, MASE (means over series) and, for the model, the
    coverage and width of the widest interval.
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
    report: dict[str, Any] = {
        name: {key: float(np.mean([r[key] for r in per_series])) for key in per_series[0]}
        for name, per_series in rows.items()
    }
    if upper > lower:
        report["interval"] = f"{quantiles[lower]:g}-{quantiles[upper]:g}"
    report["season"] = season
    return report



def backtest(config: ForecastConfig, data: Any, windows: int = 3, step: int | None = None,
             refit: bool = False) -> dict[str, Any]:
    """Rolling-origin evaluation: ``windows`` forecasts of ``horizon`` steps, each from a
    cutoff ``step`` (default: the horizon) after the previous, the last ending at the end
    of the data. With ``refit`` a new model is trained at every cutoff; without, one
    model trained at the first cutoff forecasts from every later one.

    Returns {"windows": [score per window], "mean": mean scores, "cutoffs": [...], ...}.
    """
    data = config.load(data)
    horizon = config.horizon
    step = step or horizon
    if isinstance(windows, bool) or not isinstance(windows, int) or windows < 1:
        raise LstmkitError(f"windows must be a positive integer, got {windows!r}")
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
        scores.append(score_forecasts(history, actual, forecast, config.quantiles,
                                      model.meta["season"]))
        cutoffs.append(str(history.series[0].time[-1].date()))
    mean = {
        name: {key: float(np.mean([s[name][key] for s in scores])) for key in scores[0][name]}
        for name in ("model", "naive", "seasonal_naive")
    }
    mean.update({key: scores[0][key] for key in ("season", "interval") if key in scores[0]})
    return {"windows": scores, "mean": mean, "cutoffs": cutoffs, "refit": refit,
            "horizon": horizon, "step": step, "fit_seconds": fit_seconds}


def metrics_table(report: dict[str, Any]) -> str:
    """The scores of a report as a text table: one row per forecaster."""
    names = {"model": "lstmkit LSTM", "naive": "naive", "seasonal_naive":
             f"seasonal naive (m={report['season']})"}
    columns = ["MAE", "RMSE", "sMAPE", "MASE"]
    has_interval = "coverage" in report["model"]
    header = f"{'forecaster':<24}" + "".join(f"{c:>10}" for c in columns)
    if has_interval:
        header += f"{'coverage ' + report['interval']:>18}"
    lines = [header, "-" * len(header)]
    for key, label in names.items():
        row = report[key]
        line = f"{label:<24}" + "".join(f"{row[c]:>10.3f}" for c in columns)
        if has_interval and "coverage" in row:
            line += f"{row['coverage']:>18.2f}"
        lines.append(line)
    return "\n".join(lines)
