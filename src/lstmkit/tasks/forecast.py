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
from lstmkit.io.files import atomic_write_json
from lstmkit.io.rundir import FinishedRun, Run, write_config
from lstmkit.io.weights import save_weights
from lstmkit.tasks import forecast_metrics as metrics
from lstmkit.tasks.forecast_model import ForecastNet, pinball_loss
from lstmkit.tasks.lifecycle import Evaluation, Task, config_from_json
from lstmkit.train import TrainConfig, fit

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


class Forecaster(Task):
    """Build from a ForecastConfig, then fit, predict, evaluate, backtest, save, load."""

    task = TASK

    def __init__(self, config: ForecastConfig) -> None:
        config.validate()
        self.config = config
        self.members: list[ForecastNet] = []
        self.scaler: SeriesScaler | None = None
        self.meta: dict[str, Any] = {}
        self.histories: list[list[dict]] = []
        self.fit_seconds: float | None = None
        self.scores: Evaluation | None = None  # of the held-out tail, when fit held one out

    # --- training ------------------------------------------------------------------------

    def fit(self, data: Any, run_dir: str | Path | None = None, *, resume: bool = False,
            overwrite: bool = False, holdout: int | None = None, backtest_windows: int = 0,
            report: bool = True) -> Forecaster:
        """Train the ensemble on ``data`` less its last ``holdout`` points, and score the
        held-out tail beside the baselines (``self.scores``; with ``backtest_windows``
        also a rolling-origin backtest). With ``run_dir`` the run directory is written
        by the lifecycle's rules (see lstmkit.tasks.lifecycle), with a report unless
        ``report`` is False."""
        super().fit(data, run_dir, resume=resume, overwrite=overwrite, holdout=holdout,
                    backtest_windows=backtest_windows, report=report)
        return self

    def _fit(self, data: Any, run: Run | None, started: float, holdout: int | None = None,
             backtest_windows: int = 0, report: bool = True) -> None:
        data = self.config.load(data)
        if holdout is not None:
            self._check_holdout(holdout)
        training = cut_data(data, -holdout)[0] if holdout else data
        # the report forecasts from the end of the training part: check that it can
        make_prediction_input(training, self.config.window, self.config.horizon)
        self._train(training, run)
        self.scores = self.evaluate(data, holdout) if holdout else None
        if backtest_windows:
            windows = backtest(self.config, data, windows=backtest_windows)
            if self.scores is None:
                self.scores = windows
            else:
                self.scores.details["backtest"] = windows.to_json()
        if run is not None and run.writer and report:
            from lstmkit.forecast import write_report  # matplotlib only when a report is made

            write_report(run.work, self, data, holdout, self.scores)

    def _train(self, data: ForecastData, run: Run | None) -> None:
        """The members, each trained by the shared loop (checkpoints in members/<k>)."""
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
            # the loop's epoch is one pass over the repeated windows, in whole batches
            epochs=math.ceil(config.steps / math.ceil(len(windows) * repeats
                                                      / config.batch_size)),
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
            member_dir = None if run is None else run.work / "members" / str(member)
            result = fit(net, _Windows(tensors, repeats), _ForecastLoss(config.quantiles),
                         dataclasses.replace(train, seed=seed), run_dir=member_dir,
                         resume=run is not None and run.resumed and member_dir.exists(),
                         collate_fn=_already_batched)
            self.members.append(net.eval())
            self.histories.append(result.history)
        self.fit_seconds = time.perf_counter() - started

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

    def evaluate(self, data: Any, holdout: int | None = None) -> Evaluation:
        """Forecast the last ``holdout`` points (default: the horizon) of each series from
        the rest, and score it beside naive and seasonal naive on the same points."""
        self._require_fitted()
        data = self.config.load(data)
        holdout = holdout or self.config.horizon
        self._check_holdout(holdout)
        history, actual = cut_data(data, -holdout)
        forecast, _ = self.forecast_quantiles(history)
        return score_forecasts(history, actual, forecast[:, :holdout], self.config.quantiles,
                               self.meta["season"], f"held-out last {holdout} points")

    def _check_holdout(self, holdout: int) -> None:
        if isinstance(holdout, bool) or not isinstance(holdout, int) or not (
                1 <= holdout <= self.config.horizon):
            raise LstmkitError(f"--holdout must be a whole number from 1 to the horizon "
                               f"({self.config.horizon}), got {holdout!r}; the model forecasts "
                               "at most --horizon steps")

    # --- files ---------------------------------------------------------------------------

    def _ensemble(self) -> torch.nn.Module:
        """The members as one module: its state dict is model.safetensors' layout."""
        ensemble = torch.nn.Module()
        ensemble.members = torch.nn.ModuleList(self.members)
        return ensemble

    def _write(self, directory: Path) -> None:
        """config.json, model.safetensors, scaler.json and metrics.json (with scores)."""
        self._require_fitted()
        save_weights(directory / WEIGHTS_FILE, self._ensemble().state_dict())
        atomic_write_json(directory / SCALER_FILE, self.scaler.to_dict())
        if self.scores is not None:
            atomic_write_json(directory / METRICS_FILE, self.scores.to_json())
        write_config(directory, TASK, {"config": dataclasses.asdict(self.config),
                                       "meta": self.meta, "members": len(self.members)})

    @classmethod
    def _read(cls, run: FinishedRun) -> Forecaster:
        saved = run.config
        forecaster = cls(config_from_json(ForecastConfig, saved["config"]))
        forecaster.meta = dict(saved["meta"])
        member_count = int(saved["members"])
        if member_count < 1:
            raise LstmkitError(f"{run.path}/config.json names {member_count} members; the "
                               "file was edited or is damaged: train again")
        forecaster.scaler = SeriesScaler.from_dict(run.json(SCALER_FILE))

        def build() -> torch.nn.Module:
            forecaster.members = [forecaster._build() for _ in range(member_count)]
            return forecaster._ensemble()

        weights = run.weights(WEIGHTS_FILE, build)
        build().load_state_dict(weights)
        forecaster.members = [net.eval() for net in forecaster.members]
        if run.has(METRICS_FILE):
            forecaster.scores = Evaluation.from_json(run.json(METRICS_FILE))
        return forecaster


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
    return _forecast_evaluation(data, means, season, quantiles)


def _forecast_evaluation(data: str, rows: dict[str, dict[str, float]], season: int,
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
        cutoff = str(history.series[0].time[-1].date())
        scores.append(score_forecasts(history, actual, forecast, config.quantiles,
                                      model.meta["season"], f"origin after {cutoff}"))
        cutoffs.append(cutoff)
    mean = {name: {key: float(np.mean([s[name][key] for s in scores])) for key in row}
            for name, row in scores[0].rows.items()}
    evaluation = _forecast_evaluation(
        f"backtest: mean of {windows} windows of {horizon} steps from {cutoffs[0]}", mean,
        model.meta["season"], config.quantiles)
    evaluation.details.update({"windows": [s.to_json() for s in scores], "cutoffs": cutoffs,
                               "refit": refit, "horizon": horizon, "step": step,
                               "fit_seconds": fit_seconds})
    return evaluation
