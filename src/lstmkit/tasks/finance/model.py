"""The FinanceModel task: train on price history, walk forward, predict, save, load.

``fit`` trains one model on all history (for ``predict``); ``backtest`` walks forward
(see walk_forward.py): every ``refit_every`` days a model is refitted on the training
window that ends before the test block (starting from the previous block's model) and
forecasts the block's origins, beside the baselines (baselines.py); the forecasts are
scored as forecasts and as a trading strategy (scoring.py). A killed backtest resumes
from its last finished block to the same result.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lstmkit.data.market_features import (
    FEATURES,
    available_features,
    market_features,
    targets,
)
from lstmkit.data.prices import PricePanel, read_prices
from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_json, atomic_write_text, read_json
from lstmkit.io.rundir import FinishedRun, Run, write_config
from lstmkit.io.weights import load_weights, save_weights
from lstmkit.tasks.finance.baselines import ewma_forecast, garch_variance
from lstmkit.tasks.finance.config import TASK, FinanceConfig
from lstmkit.tasks.finance.network import FinanceLoss, FinanceNet, forecast_value
from lstmkit.tasks.finance.scoring import check_long_short, score_walk_forward
from lstmkit.tasks.finance.walk_forward import (
    MIN_FIT_ORIGINS,
    Fold,
    OriginWindows,
    WindowScaler,
    first_origin,
    input_windows,
    plan_folds,
    training_origins,
)
from lstmkit.tasks.lifecycle import Evaluation, Task, config_from_json
from lstmkit.train import fit
from lstmkit.train.batches import already_batched
from lstmkit.train.progress import held_back

WEIGHTS_FILE = "model.safetensors"
SCALER_FILE = "scaler.json"
METRICS_FILE = "metrics.json"
FORECASTS_FILE = "forecasts.csv"
WINDOWS_FILE = "last_windows.safetensors"  # the last input windows, for the gates picture
PROGRESS = "walk_forward"  # the backtest's per-block checkpoint, inside the run's work

logger = logging.getLogger("lstmkit.finance")


class FinanceModel(Task):
    """Build from a FinanceConfig, then fit or backtest, predict, save, load."""

    task = TASK

    def __init__(self, config: FinanceConfig) -> None:
        config.validate()
        self.config = config
        self.net: FinanceNet | None = None
        self.scaler: WindowScaler | None = None
        self.meta: dict[str, Any] = {}
        self.forecasts: pd.DataFrame | None = None  # of the last backtest
        self.scores: Evaluation | None = None
        self.last_windows: torch.Tensor | None = None  # (A, L, F) scaled

    # --- data ----------------------------------------------------------------------------

    def prices(self, data: Any) -> PricePanel:
        """``data`` as a checked PricePanel: a panel, or sources for read_prices."""
        if isinstance(data, PricePanel):
            return data
        config = self.config
        return read_prices(data, close=config.close, time=config.time,
                           asset_column=config.asset_column, time_format=config.time_format)

    def _inputs(self, panel: PricePanel) -> tuple[np.ndarray, list[str]]:
        """The features (T, A, F) the config names (or the prices allow) and their names."""
        names = self.meta.get("features") or self.config.features or available_features(panel)
        for name in names:
            missing = [f for f in FEATURES[name][0] if f not in panel.fields]
            if missing:
                raise LstmkitError(f"feature '{name}' needs the {' and '.join(missing)} "
                                   "prices, which the data lacks; add those columns or leave "
                                   "the feature out of --features")
        return market_features(panel, names), names

    # --- training ------------------------------------------------------------------------

    def fit(self, data: Any, run_dir: str | Path | None = None, *, resume: bool = False,
            overwrite: bool = False) -> FinanceModel:
        """Train one model on all of ``data``'s history (its last ``validation_days``
        origins choose the epoch)."""
        super().fit(data, run_dir, resume=resume, overwrite=overwrite, walk_forward=False)
        return self

    def backtest(self, data: Any, run_dir: str | Path | None = None, *, resume: bool = False,
                 overwrite: bool = False, report: bool = True) -> Evaluation:
        """Walk forward over ``data`` and score the test days beside the baselines; the
        model left is the last block's. With ``run_dir``, its forecasts.csv, metrics.json
        and (with ``report``) report.html go there too."""
        super().fit(data, run_dir, resume=resume, overwrite=overwrite, walk_forward=True,
                    report=report)
        return self.scores

    def _fit(self, data: Any, run: Run | None, started: float, walk_forward: bool,
             report: bool = False) -> None:
        panel = self.prices(data)
        self.meta = {}
        features, names = self._inputs(panel)
        self.meta = {"assets": list(panel.assets), "features": names}
        outcome = targets(panel, self.config.target, self.config.horizon)
        first = first_origin(features, self.config.window)
        baseline = ewma_forecast(panel.log_returns(), self.config.horizon)
        if walk_forward:
            if self.config.strategy == "long_short":
                check_long_short(len(panel.assets), self.config.top_k)
            self._walk_forward(panel, features, outcome, baseline, first, run)
            if run is not None and run.writer and report:
                from lstmkit.report.finance_report import write_report

                write_report(run.work, self)
            return
        last = len(panel.dates) - 1 - self.config.horizon
        fold_fit, validation = training_origins(first, last, self.config.train_days,
                                                self.config.validation_days,
                                                self.config.horizon)
        if len(fold_fit) < MIN_FIT_ORIGINS:
            raise LstmkitError(
                f"too little history: {max(len(fold_fit), 0)} training days after the "
                f"{first} days the first input window needs and {self.config.validation_days}"
                f" validation days (needed {MIN_FIT_ORIGINS}); give more history or fewer "
                "--validation-days / a shorter --window")
        # the "test" origin is the last day: its window is what a forecast now would read
        self._train_fold(features, outcome, baseline,
                         Fold(fold_fit, validation, np.array([len(panel.dates) - 1])),
                         None, 0, run, started)
        self.meta["trained_until"] = str(panel.dates[last].date())

    def _train_fold(self, features: np.ndarray, outcome: np.ndarray, baseline: np.ndarray,
                    fold: Fold, start_from: dict[str, torch.Tensor] | None, index: int,
                    run: Run | None = None, started: float | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fit the scaler and the network on the fold's training window; returns what the
        network reads: the scaled features (T, A, F) and its prior (T, A) from the
        ``baseline`` variance forecasts."""
        config = self.config
        known = np.concatenate([fold.fit, fold.validation])
        self.scaler = WindowScaler.fit(features, outcome, known, config.window, config.target)
        scaled = torch.from_numpy(self.scaler.transform(features))
        prior = self.scaler.prior(config.target, baseline)
        scaled_targets = torch.from_numpy(
            np.nan_to_num(outcome / self.scaler.target_scale).astype(np.float32))
        torch.manual_seed(config.train.seed + index)
        net = self._build(features.shape[-1])
        if start_from is not None:
            net.load_state_dict(start_from)
        train = dataclasses.replace(
            config.train, seed=config.train.seed + index,
            epochs=config.refit_epochs if start_from is not None else config.train.epochs,
            progress=config.train.progress and run is not None)
        fit(net, OriginWindows(scaled, prior, scaled_targets, fold.fit, config.window),
            FinanceLoss(config.target), train,
            val_data=OriginWindows(scaled, prior, scaled_targets, fold.validation,
                                   config.window),
            run_dir=None if run is None else run.work / "training",
            resume=run is not None and run.resumed, collate_fn=already_batched,
            started=started)
        self.net = net.eval()
        self.last_windows = self._windows(scaled, fold.test[-1])
        return scaled, prior

    def _build(self, num_features: int) -> FinanceNet:
        config = self.config
        try:
            return FinanceNet(num_features, config.hidden_size, config.num_layers,
                              config.dropout, config.lstm)
        except ValueError as error:  # an LSTM option out of range
            raise LstmkitError(f"bad model option: {error}") from None

    def _windows(self, scaled: torch.Tensor, origin: int) -> torch.Tensor:
        """Every asset's input window ending at ``origin``: (A, L, F)."""
        assets = torch.arange(scaled.shape[1])
        return input_windows(scaled, torch.full_like(assets, int(origin)), assets,
                             self.config.window)

    @torch.no_grad()
    def _forecast(self, scaled: torch.Tensor, prior: torch.Tensor, origins: np.ndarray
                  ) -> np.ndarray:
        """The network's forecasts at ``origins`` for every asset: (N, A)."""
        assets = scaled.shape[1]
        origin_rows = torch.as_tensor(np.repeat(origins, assets))
        asset_rows = torch.arange(assets).repeat(len(origins))
        y = self.net(input_windows(scaled, origin_rows, asset_rows, self.config.window),
                     prior[origin_rows, asset_rows])
        values = forecast_value(self.config.target, y, self.scaler.target_scale)
        return values.double().numpy().reshape(len(origins), assets)

    # --- walking forward -----------------------------------------------------------------

    def _walk_forward(self, panel: PricePanel, features: np.ndarray, outcome: np.ndarray,
                      ewma: np.ndarray, first: int, run: Run | None) -> None:
        config = self.config
        folds = plan_folds(panel.dates.values, first, config.horizon, config.purge_days,
                           config.train_days, config.validation_days, config.refit_every,
                           config.test_start)
        returns = panel.log_returns()
        done, blocks, weights, garch = self._restore(run, len(panel.assets))
        for index in range(done, len(folds)):
            fold = folds[index]
            with held_back():  # a line per block instead of per epoch
                scaled, prior = self._train_fold(features, outcome, ewma, fold, weights, index)
            logger.info("block %d/%d: refitted on %s to %s, tested %s to %s", index + 1,
                        len(folds), *(str(panel.dates[int(day)].date()) for day in (
                            fold.fit[0], fold.validation[-1], fold.test[0], fold.test[-1])))
            known = np.concatenate([fold.fit, fold.validation])
            reference = outcome[known]  # the training window's targets
            if config.target in ("direction", "cross_section"):
                reference = (reference > 0).astype(np.float64)  # the share of "up"
            block = {
                "forecast": self._forecast(scaled, prior, fold.test),
                "realised": outcome[fold.test],
                "historical_mean": np.broadcast_to(reference.mean(axis=0),
                                                   (len(fold.test), len(panel.assets))),
                "ewma": ewma[fold.test],
            }
            if config.target == "volatility":
                fit_days = np.arange(int(fold.fit[0]), int(known[-1]) + config.horizon + 1)
                columns = [garch_variance(returns[:, a], fit_days, fold.test, config.horizon,
                                          None if garch is None else garch[a])
                           for a in range(len(panel.assets))]
                block["garch"] = np.column_stack([variance for variance, _ in columns])
                garch = [params for _, params in columns]
            blocks.append({"origin": fold.test, **block})
            weights = {k: v.clone() for k, v in self.net.state_dict().items()}
            if run is not None and run.writer:
                self._save_progress(run.work / PROGRESS, index + 1, blocks, weights, garch)
        self.forecasts = self._forecast_table(panel, blocks)
        self.scores = score_walk_forward(self.forecasts, config, len(folds))
        self.meta.update({"folds": len(folds),
                          "test_start": str(panel.dates[int(folds[0].test[0])].date()),
                          "test_end": str(panel.dates[int(folds[-1].test[-1])].date()),
                          "trained_until": str(panel.dates[int(folds[-1].fit[-1])].date())})

    def _forecast_table(self, panel: PricePanel, blocks: list[dict]) -> pd.DataFrame:
        """One row per (test origin, asset): forecasts, realised target, baselines, and the
        asset's simple return on the next day (what a position taken at the origin earns)."""
        origins = np.concatenate([b["origin"] for b in blocks])
        assets = len(panel.assets)
        next_return = np.expm1(panel.log_returns()[origins + 1])  # (N, A)
        columns = {"date": np.repeat(panel.dates.values[origins], assets),
                   "asset": np.tile(np.asarray(panel.assets, dtype=object), len(origins))}
        for name in blocks[0]:
            if name != "origin":
                columns[name] = np.concatenate([b[name] for b in blocks]).reshape(-1)
        columns["next_return"] = next_return.reshape(-1)
        return pd.DataFrame(columns)

    def _save_progress(self, folder: Path, done: int, blocks: list[dict],
                       weights: dict[str, torch.Tensor], garch: list | None) -> None:
        """The finished blocks and the model after them; the weights file is named by its
        block so that a kill between the two writes leaves a consistent pair."""
        folder.mkdir(parents=True, exist_ok=True)
        save_weights(folder / f"model-{done}.safetensors", weights)
        state = {"done": done, "weights": f"model-{done}.safetensors",
                 "garch": None if garch is None else [np.asarray(p).tolist() for p in garch],
                 "blocks": [{k: np.asarray(v).tolist() for k, v in b.items()} for b in blocks]}
        atomic_write_json(folder / "progress.json", state)
        for old in folder.glob("model-*.safetensors"):
            if old.name != state["weights"]:
                old.unlink()

    def _restore(self, run: Run | None, assets: int
                 ) -> tuple[int, list[dict], dict[str, torch.Tensor] | None, list | None]:
        """(blocks done, their columns, the model after them, GARCH parameters) of an
        interrupted backtest; nothing done for a new one."""
        progress = None if run is None else run.work / PROGRESS / "progress.json"
        if progress is None or not run.resumed or not progress.exists():
            return 0, [], None, None
        state = read_json(progress)
        blocks = [{k: np.asarray(v) if k == "origin" else np.asarray(v, dtype=np.float64)
                   .reshape(len(b["origin"]), assets) for k, v in b.items()}
                  for b in state["blocks"]]
        weights = load_weights(progress.parent / state["weights"])
        garch = None if state["garch"] is None else [np.asarray(p) for p in state["garch"]]
        return int(state["done"]), blocks, weights, garch

    # --- forecasting ---------------------------------------------------------------------

    def _require_fitted(self) -> None:
        if self.net is None:
            raise LstmkitError("the model is not trained: call fit() or backtest(), or load "
                               "a run first")

    def predict(self, data: Any) -> pd.DataFrame:
        """The forecast made at the last day of ``data`` for each asset: columns asset,
        date (the origin), horizon, target, forecast; for volatility also the
        annualised volatility, for direction targets the probability of "up"."""
        self._require_fitted()
        panel = self.prices(data)
        features, _ = self._inputs(panel)
        first_origin(features, self.config.window)  # enough history for one window
        scaled = torch.from_numpy(self.scaler.transform(features))
        baseline = ewma_forecast(panel.log_returns(), self.config.horizon)
        prior = self.scaler.prior(self.config.target, baseline)
        forecast = self._forecast(scaled, prior, np.array([len(panel.dates) - 1]))[0]
        frame = pd.DataFrame({"asset": panel.assets, "date": panel.dates[-1],
                              "horizon": self.config.horizon, "target": self.config.target,
                              "forecast": forecast})
        if self.config.target == "volatility":
            frame["annualised_volatility"] = np.sqrt(forecast * 252 / self.config.horizon)
        return frame

    # --- files ---------------------------------------------------------------------------

    def _write(self, directory: Path) -> None:
        """config.json, model.safetensors, scaler.json, last_windows.safetensors; after a
        backtest also forecasts.csv and metrics.json."""
        self._require_fitted()
        save_weights(directory / WEIGHTS_FILE, self.net.state_dict())
        save_weights(directory / WINDOWS_FILE, {"windows": self.last_windows})
        atomic_write_json(directory / SCALER_FILE, self.scaler.to_dict())
        if self.forecasts is not None:
            atomic_write_text(directory / FORECASTS_FILE,
                              self.forecasts.to_csv(index=False, float_format="%.10g"))
            atomic_write_json(directory / METRICS_FILE, self.scores.to_json())
        write_config(directory, TASK, {"config": dataclasses.asdict(self.config),
                                       "meta": self.meta})

    @classmethod
    def _read(cls, run: FinishedRun) -> FinanceModel:
        saved = run.config
        model = cls(config_from_json(FinanceConfig, saved["config"]))
        model.meta = dict(saved["meta"])
        model.scaler = WindowScaler.from_dict(run.json(SCALER_FILE))

        def build() -> FinanceNet:
            return model._build(len(model.meta["features"]))

        net = build()
        net.load_state_dict(run.weights(WEIGHTS_FILE, build))
        model.net = net.eval()
        model.last_windows = run.weights(WINDOWS_FILE)["windows"]
        if run.has(METRICS_FILE):
            model.scores = Evaluation.from_json(run.json(METRICS_FILE))
            model.forecasts = pd.read_csv(io.StringIO(run.text(FORECASTS_FILE)),
                                          parse_dates=["date"])
        return model

