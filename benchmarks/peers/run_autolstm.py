"""neuralforecast's default LSTM and its AutoLSTM (Optuna backend) on one series, in the
peers' own virtualenv (neuralforecast, optuna, torch 2.13.0; never lstmkit's).

    results/tune-peers-venv/bin/python benchmarks/peers/run_autolstm.py \\
        --data airline.csv --time Month --target Passengers --horizon 24 --trials 10 \\
        --output result.json

AutoLSTM searches its default space with inputs capped at 4 horizons (its default
draws up to 64, and one such trial ran for most of an hour on airline) and stops at
``--trials`` or at ``--search-time`` seconds (its ``time_budget``), whichever comes
first. The last ``horizon`` points
are the test part: both models are fitted on the rest;
AutoLSTM chooses among its trials by the last ``horizon`` points of that rest
(``val_size``), so the test part is never seen while tuning. Writes, per model, the
test MASE (M4's: over the in-sample seasonal naive's MAE, m = 12) and the wall time of
fit (with AutoLSTM's whole search) and predict. One torch thread, as for lstmkit.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

SEASON = 12


def mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray) -> float:
    scale = np.mean(np.abs(history[SEASON:] - history[:-SEASON]))
    return float(np.mean(np.abs(actual - forecast)) / scale)


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--data", "--time", "--target", "--output"):
        parser.add_argument(name, required=True)
    parser.add_argument("--horizon", type=int, required=True)
    parser.add_argument("--trials", type=int, required=True)
    parser.add_argument("--search-time", type=float, default=None,
                        help="AutoLSTM's time budget in seconds (its time_budget)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    from neuralforecast import NeuralForecast
    from neuralforecast.auto import AutoLSTM
    from neuralforecast.models import LSTM

    frame = pd.read_csv(args.data)
    series = pd.DataFrame({"unique_id": "series", "ds": pd.to_datetime(frame[args.time]),
                           "y": frame[args.target].astype("float64")})
    train, test = series.iloc[: -args.horizon], series.iloc[-args.horizon:]
    results = {}
    models = {
        # its defaults reading 36 months, as benchmarks/forecast_vs_peers.py's "default"
        "neuralforecast LSTM (default, input 36)": lambda: LSTM(
            h=args.horizon, input_size=36, random_seed=args.seed, enable_progress_bar=False),
        "neuralforecast AutoLSTM (optuna)": lambda: AutoLSTM(
            h=args.horizon, num_samples=args.trials, backend="optuna",
            time_budget=args.search_time,
            config=_quiet(AutoLSTM.get_default_config(h=args.horizon, backend="optuna"),
                          args.horizon)),
    }
    for name, build in models.items():
        started = time.perf_counter()
        forecaster = NeuralForecast(models=[build()], freq="MS")
        validation = args.horizon if "Auto" in name else 0
        forecaster.fit(train, val_size=validation)
        fitted = time.perf_counter() - started
        prediction = forecaster.predict()
        column = [c for c in prediction.columns if c not in ("unique_id", "ds")][0]
        search = getattr(forecaster.models[0], "results", None)  # AutoLSTM's Optuna study
        results[name] = {
            "test_mase": mase(test["y"].to_numpy(), prediction[column].to_numpy(),
                              train["y"].to_numpy()),
            "seconds": fitted,
            "trials": None if search is None else len(search.trials)}
        print(name, results[name], flush=True)
    Path(args.output).write_text(json.dumps(results, indent=1))


def _quiet(config, horizon: int):
    """AutoLSTM's default Optuna space, with Lightning's progress bar off in every trial,
    start padding on (neuralforecast's own error message asks for it when an input is
    longer than the series) and inputs capped at 4 horizons."""

    def with_options(trial):
        options = config(trial)
        options.update(enable_progress_bar=False, enable_model_summary=False,
                       start_padding_enabled=True)
        # inputs of at most 4 horizons: the default's 16 and 64 (384 and 1,536 months of
        # a 120-month series, all padding) make a trial run for most of an hour here
        if isinstance(options.get("input_size"), int):  # (a mock trial sees the lists)
            options["input_size"] = min(options["input_size"], 4 * horizon)
        return options

    return with_options


if __name__ == "__main__":
    main()
