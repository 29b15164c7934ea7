"""The peer libraries' side of benchmarks/forecast_vs_peers.py.

Runs inside the peers' own virtualenv (darts, neuralforecast and torch 2.13.0; never
lstmkit's), on series the main benchmark exported, and writes one JSON file:

    results/peers-venv/bin/python benchmarks/peers/run_peers.py --spec spec.json \\
        --seed 0 --out peers-seed0.json

spec.json: {"threads": 1, "steps": 300, "warmup_steps": 10, "batch_size": 32, "hidden": 32,
"auto_ets": true,
"datasets": [{"name", "csv" (columns time, value), "freq", "horizon", "window",
"season"}]}. For every dataset the last ``horizon`` points are held out; every tool
trains on the rest and forecasts them. Scores use the same MASE as lstmkit (M4: MAE
over the in-sample seasonal-naive MAE of the training part), reimplemented here so
this script needs nothing from lstmkit; the main benchmark checks that the seasonal
naive MASE computed here equals lstmkit's.

Per tool, a warm-up fit of ``warmup_steps`` optimizer steps on the first dataset comes
first, timed apart as "warm-up" (the one-time set-up a fresh process pays: lazy imports,
Lightning start-up, plus those few steps); the fits timed after it are warm. Only the
library's fit call is timed.

This file imports numpy and pandas at the top and the peer libraries lazily, so the
main benchmark can import its metrics and AutoETS without them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PREDICT_CALLS = 5  # peers' predict takes tens of ms (a Lightning trainer per call)


# --------------------------------------------------------------------------- metrics


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat the last ``season`` values: step h takes history[T - m + (h mod m)]."""
    return history[len(history) - season:][np.arange(horizon) % season]


def mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, season: int) -> float:
    """MAE over the in-sample MAE of the seasonal-naive forecast on ``history`` (M4)."""
    scale = np.mean(np.abs(history[season:] - history[:-season]))
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(forecast))) / scale)


def auto_ets(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """AutoETS with statsmodels: every additive/multiplicative error, none/additive/damped
    trend and none/additive/multiplicative season model, the lowest AICc forecasts."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    positive = bool(np.all(history > 0))
    best: tuple[float, np.ndarray] | None = None
    for error in ("add", "mul"):
        for trend, damped in ((None, False), ("add", False), ("add", True)):
            for seasonal in (None, "add", "mul"):
                if not positive and "mul" in (error, seasonal):
                    continue
                model = ETSModel(history, error=error, trend=trend, damped_trend=damped,
                                 seasonal=seasonal,
                                 seasonal_periods=season if seasonal else None)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        fitted = model.fit(disp=False)
                    except (ValueError, np.linalg.LinAlgError):
                        continue
                forecast = np.asarray(fitted.forecast(horizon), dtype="float64")
                if np.isfinite(fitted.aicc) and np.all(np.isfinite(forecast)) and (
                        best is None or fitted.aicc < best[0]):
                    best = (float(fitted.aicc), forecast)
    if best is None:
        raise RuntimeError("no ETS model could be fitted")
    return best[1]


# --------------------------------------------------------------------------- data


@dataclass
class Dataset:
    name: str
    times: pd.DatetimeIndex
    values: np.ndarray  # float64, the whole series
    freq: str
    horizon: int
    window: int
    season: int

    @property
    def train(self) -> np.ndarray:
        return self.values[:-self.horizon]

    @property
    def train_times(self) -> pd.DatetimeIndex:
        return self.times[:-self.horizon]

    @property
    def actual(self) -> np.ndarray:
        return self.values[-self.horizon:]


def read_dataset(entry: dict[str, Any]) -> Dataset:
    frame = pd.read_csv(entry["csv"], parse_dates=["time"])
    return Dataset(entry["name"], pd.DatetimeIndex(frame["time"]),
                   frame["value"].to_numpy(dtype="float64"), entry["freq"],
                   int(entry["horizon"]), int(entry["window"]), int(entry["season"]))


# --------------------------------------------------------------------------- peers

# A fitted model's forecast of the held-out points: () -> (H,) in data units.
Predictor = Callable[[], np.ndarray]


def _trainer_kwargs() -> dict[str, Any]:
    """Lightning settings for a quiet CPU run with nothing written to disk."""
    return {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False,
            "logger": False, "enable_checkpointing": False}


def fit_darts(data: Dataset, seed: int, spec: dict[str, Any], block: bool
              ) -> tuple[float, Predictor]:
    """darts RNNModel(model="LSTM") (recurrent, one step at a time) or BlockRNNModel
    (whole horizon at once) on min-max scaled data; ``steps`` optimizer steps."""
    from darts import TimeSeries
    from darts.dataprocessing.transformers import Scaler
    from darts.models import BlockRNNModel, RNNModel

    series = TimeSeries.from_times_and_values(data.train_times,
                                              data.train.astype("float32"), freq=data.freq)
    scaler = Scaler()
    scaled = scaler.fit_transform(series)
    common = dict(model="LSTM", input_chunk_length=data.window, hidden_dim=spec["hidden"],
                  n_rnn_layers=1, batch_size=spec["batch_size"], n_epochs=1_000_000,
                  random_state=seed,
                  pl_trainer_kwargs={**_trainer_kwargs(), "max_steps": spec["steps"]})
    if block:
        model = BlockRNNModel(output_chunk_length=data.horizon, **common)
    else:
        model = RNNModel(training_length=data.window + data.horizon, **common)
    started = time.perf_counter()
    model.fit(scaled, verbose=False)
    seconds = time.perf_counter() - started

    def predict() -> np.ndarray:
        forecast = model.predict(n=data.horizon, series=scaled, verbose=False)
        return scaler.inverse_transform(forecast).values().ravel().astype("float64")

    return seconds, predict


def fit_neuralforecast(data: Dataset, seed: int, spec: dict[str, Any], default: bool
                       ) -> tuple[float, Predictor]:
    """neuralforecast LSTM: its defaults (hidden 128, 2 layers, 1000 steps of 128
    windows) or hidden 32 with the benchmark's steps and windows per batch."""
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM

    if default:  # its defaults; a warm-up run keeps only the warm-up's steps
        options: dict[str, Any] = {"max_steps": spec["steps"]} if spec.get("warmup") else {}
    else:
        options = dict(encoder_hidden_size=spec["hidden"], decoder_hidden_size=spec["hidden"],
                       max_steps=spec["steps"], windows_batch_size=spec["batch_size"])
    model = LSTM(h=data.horizon, input_size=data.window, random_seed=seed, **options,
                 **_trainer_kwargs())
    forecaster = NeuralForecast(models=[model], freq=data.freq)
    frame = pd.DataFrame({"unique_id": "series", "ds": data.train_times, "y": data.train})
    started = time.perf_counter()
    forecaster.fit(frame)
    seconds = time.perf_counter() - started

    def predict() -> np.ndarray:
        return forecaster.predict()["LSTM"].to_numpy(dtype="float64")

    return seconds, predict


TOOLS: dict[str, Callable[[Dataset, int, dict[str, Any]], tuple[float, Predictor]]] = {
    "darts RNNModel(LSTM)": lambda d, s, spec: fit_darts(d, s, spec, block=False),
    "darts BlockRNNModel(LSTM)": lambda d, s, spec: fit_darts(d, s, spec, block=True),
    "neuralforecast LSTM (hidden 32)": lambda d, s, spec: fit_neuralforecast(
        d, s, spec, default=False),
    "neuralforecast LSTM (default)": lambda d, s, spec: fit_neuralforecast(
        d, s, spec, default=True),
}
LIBRARY = {name: name.split()[0] for name in TOOLS}


def warm_up(name: str, data: Dataset, seed: int, spec: dict[str, Any]) -> float | None:
    """Seconds of a first, short fit (``warmup_steps``); None when it fails."""
    try:
        return TOOLS[name](data, seed, {**spec, "steps": spec["warmup_steps"], "warmup": True})[0]
    except Exception:
        return None


def run_tool(name: str, data: Dataset, seed: int, spec: dict[str, Any]) -> dict[str, Any]:
    """Fit, forecast the held-out points, time predict; an error becomes the record."""
    try:
        fit_seconds, predict = TOOLS[name](data, seed, spec)
        forecast = predict()
        timings = []
        for _ in range(PREDICT_CALLS):
            started = time.perf_counter()
            predict()
            timings.append(time.perf_counter() - started)
        return {"fit_s": fit_seconds, "predict_ms": 1e3 * statistics.median(timings),
                "MASE": mase(data.actual, forecast, data.train, data.season)}
    except Exception as error:  # a peer failing is a result to report, not a crash
        return {"error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(limit=3)}


def run(spec: dict[str, Any], seed: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(spec["threads"]))
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    datasets = [read_dataset(entry) for entry in spec["datasets"]]
    results: dict[str, Any] = {"seed": seed, "torch": torch.__version__,
                               "threads": torch.get_num_threads(), "datasets": {}}
    first = datasets[0]
    warmup = {name: warm_up(name, first, seed, spec) for name in TOOLS}
    for data in datasets:
        rows: dict[str, Any] = {
            "naive": {"MASE": mase(data.actual, np.repeat(data.train[-1], data.horizon),
                                   data.train, data.season)},
            "seasonal naive": {"MASE": mase(
                data.actual, seasonal_naive(data.train, data.horizon, data.season),
                data.train, data.season)},
        }
        if spec.get("auto_ets"):
            started = time.perf_counter()
            try:
                forecast = auto_ets(data.train, data.horizon, data.season)
                rows["AutoETS (statsmodels)"] = {
                    "fit_s": time.perf_counter() - started,
                    "MASE": mase(data.actual, forecast, data.train, data.season)}
            except Exception as error:
                rows["AutoETS (statsmodels)"] = {"error": f"{type(error).__name__}: {error}"}
        for name in TOOLS:
            rows[name] = run_tool(name, data, seed, spec)
            if data is first:
                rows[name]["warmup_s"] = warmup[name]
            print(f"seed {seed} {data.name} {name}: {rows[name]}", flush=True)
        results["datasets"][data.name] = rows
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault("PYTORCH_LIGHTNING_DISABLE_TIPS", "1")
    warnings.filterwarnings("ignore")
    spec = json.loads(args.spec.read_text())
    args.out.write_text(json.dumps(run(spec, args.seed), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
