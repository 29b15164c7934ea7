"""The Forecaster task: an ensemble of ForecastNets trained on every window of the scaled
series; fit, predict, evaluate, save, load."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from lstmkit.data.scaling import SeriesScaler
from lstmkit.data.splits import cut_data
from lstmkit.data.timeseries import ForecastData
from lstmkit.data.windows import PredictionInput, make_prediction_input, make_windows
from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_json
from lstmkit.io.rundir import FinishedRun, Run, write_config
from lstmkit.io.weights import save_weights
from lstmkit.tasks.forecast import metrics
from lstmkit.tasks.forecast.config import TASK, ForecastConfig
from lstmkit.tasks.forecast.network import ForecastLoss, ForecastNet
from lstmkit.tasks.forecast.scoring import score_forecasts
from lstmkit.tasks.lifecycle import Evaluation, Task, config_from_json
from lstmkit.train import TrainConfig, fit
from lstmkit.train.batches import already_batched

MIN_STEPS_PER_EPOCH = 50  # small data: repeat the windows so checkpoints are not per step
WEIGHTS_FILE = "model.safetensors"
SCALER_FILE = "scaler.json"
METRICS_FILE = "metrics.json"


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
            # backtest trains Forecasters: imported here, as the top would be a cycle
            from lstmkit.tasks.forecast.backtest import backtest

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
            result = fit(net, _Windows(tensors, repeats), ForecastLoss(config.quantiles),
                         dataclasses.replace(train, seed=seed), run_dir=member_dir,
                         resume=run is not None and run.resumed and member_dir.exists(),
                         collate_fn=already_batched)
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

    def forecast_quantiles(self, data: Any) -> tuple[np.ndarray, tuple[pd.DatetimeIndex, ...]]:
        """Quantile forecasts past the end of each series: (S, H, Q) in data units, times."""
        inputs = self.prediction_input(data)
        return self.to_data_units(inputs, self.network_quantiles(inputs.x, inputs.future,
                                                                 inputs.series_id))

    # forecast_quantiles in its three stages: a server batches the middle one across requests

    def prediction_input(self, data: Any) -> PredictionInput:
        """The scaled last window of each series of ``data`` and its horizon's features."""
        self._require_fitted()
        data = self.config.load(data)
        self._check_same_series(data)
        config = self.config
        return make_prediction_input(self.scaler.transform(data), config.window,
                                     config.horizon, window_center=config.window_center,
                                     window_scale=config.window_scale)

    @torch.no_grad()
    def network_quantiles(self, x: torch.Tensor, future: torch.Tensor,
                          series_id: torch.Tensor) -> torch.Tensor:
        """The ensemble on scaled windows: x (N, L, F), future (N, H, Ff), series_id (N,) ->
        (N, H, Q) scaled quantiles, the element-wise median of the members'."""
        per_member = torch.stack([
            self._roll_out(net, x, future, series_id).sort(dim=-1).values
            for net in self.members
        ])  # (M, N, H, Q), each member's quantiles in order (no crossing)
        # the element-wise median of ordered vectors is ordered too
        return per_member.median(dim=0).values

    def to_data_units(self, inputs: PredictionInput, quantiles: torch.Tensor
                      ) -> tuple[np.ndarray, tuple[pd.DatetimeIndex, ...]]:
        """network_quantiles' output for ``inputs`` in data units (S, H, Q), and the times."""
        normalised = inputs.invert(quantiles.double().numpy())
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
        return self.forecast_frame(*self.forecast_quantiles(data))

    def forecast_frame(self, values: np.ndarray, times: tuple[pd.Index, ...]) -> pd.DataFrame:
        """forecast_quantiles' output (S, H, Q) and times as predict's table."""
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
