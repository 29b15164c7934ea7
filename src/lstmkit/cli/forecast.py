"""``lstmkit forecast train | predict | backtest | evaluate | plot``."""

from __future__ import annotations

import argparse
import sys

from lstmkit.cli.options import add_lstm_options, add_threads_option, lstm_options, write_output
from lstmkit.errors import LstmkitError


def add_parser(subparsers) -> None:
    forecast = subparsers.add_parser(
        "forecast", help="time-series forecasting on your own CSV/Parquet data",
        description="Train LSTM forecasters on CSV or Parquet data and use them.")
    commands = forecast.add_subparsers(dest="forecast_command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", help="train a forecaster and write its run directory")
    _add_data_options(train)
    _add_model_options(train)
    train.add_argument("--out", required=True, help="run directory to write")
    train.add_argument("--holdout", type=int, default=None,
                       help="hold out the last N points of each series and score them "
                            "against naive and seasonal naive (N <= horizon)")
    train.add_argument("--backtest", type=int, default=0, metavar="WINDOWS",
                       help="also run a rolling-origin backtest over this many windows")
    train.add_argument("--overwrite", action="store_true",
                       help="replace an existing run directory (only once the run succeeds)")
    train.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from its last checkpoint")
    add_threads_option(train, default=1)  # its networks are small: one thread is faster
    train.set_defaults(handler=_train)

    backtest = commands.add_parser("backtest", help="rolling-origin evaluation")
    _add_data_options(backtest)
    _add_model_options(backtest)
    backtest.add_argument("--windows", type=int, default=3, help="number of forecast origins")
    backtest.add_argument("--step", type=int, default=None,
                          help="points between origins (default: the horizon)")
    backtest.add_argument("--refit", action="store_true",
                          help="train a new model at every origin (default: train once)")
    backtest.add_argument("--output", help="write the per-window scores here (JSON)")
    backtest.add_argument("--overwrite", action="store_true")
    add_threads_option(backtest, default=1)  # its networks are small: one thread is faster
    backtest.set_defaults(handler=_backtest)

    predict = commands.add_parser("predict", help="forecast past the end of each series")
    predict.add_argument("--model", required=True, help="run directory of a trained forecaster")
    predict.add_argument("--data", required=True, help="history to forecast from (CSV/Parquet)")
    predict.add_argument("--output", help="write the forecast here (CSV) instead of printing")
    predict.add_argument("--overwrite", action="store_true")
    add_threads_option(predict, default=1)  # its networks are small: one thread is faster
    predict.set_defaults(handler=_predict)

    evaluate = commands.add_parser("evaluate",
                                   help="score a trained forecaster on the tail of a file")
    evaluate.add_argument("--model", required=True)
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--holdout", type=int, default=None,
                          help="points at the end of each series to forecast (default: horizon)")
    add_threads_option(evaluate, default=1)  # its networks are small: one thread is faster
    evaluate.set_defaults(handler=_evaluate)

    plot = commands.add_parser("plot", help="write the report (PNG + HTML) for a trained model")
    plot.add_argument("--model", required=True)
    plot.add_argument("--data", required=True)
    plot.add_argument("--holdout", type=int, default=None)
    plot.add_argument("--out", required=True, help="folder for the pictures and report.html")
    add_threads_option(plot, default=1)  # its networks are small: one thread is faster
    plot.set_defaults(handler=_plot)


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", required=True, help="CSV or Parquet file")
    group.add_argument("--target", nargs="+", help="target column (wide layout: several)")
    group.add_argument("--time", nargs="+",
                       help="time column, or calendar-part columns such as: year quarter")
    group.add_argument("--series-id", help="column naming the series (long layout)")
    group.add_argument("--layout", choices=["long", "wide"], default="long")
    group.add_argument("--past-covariates", nargs="+", default=[], metavar="COLUMN")
    group.add_argument("--future-covariates", nargs="+", default=[], metavar="COLUMN")
    group.add_argument("--calendar", action="store_true",
                       help="add calendar features of the time index (month, weekday, ...)")
    group.add_argument("--missing", choices=["interpolate", "refuse"], default="interpolate")
    group.add_argument("--freq", help="pandas frequency (default: inferred)")
    group.add_argument("--resample", help="aggregate to this frequency first, e.g. MS")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("forecast and model")
    group.add_argument("--horizon", type=int, required=True, help="steps to forecast")
    group.add_argument("--window", type=int, default=36, help="input steps per forecast")
    group.add_argument("--strategy", choices=["direct", "recursive"], default="direct")
    group.add_argument("--quantiles", type=float, nargs="+", default=[0.1, 0.5, 0.9])
    group.add_argument("--season", type=int, help="season length (default: from frequency)")
    group.add_argument("--scaler", default="standard",
                       choices=["standard", "robust", "meanabs", "none"])
    group.add_argument("--window-center", default="last", choices=["none", "last", "mean"])
    group.add_argument("--window-scale", default="std", choices=["none", "std", "meanabs"])
    group.add_argument("--hidden", type=int, default=32)
    group.add_argument("--layers", type=int, default=1)
    group.add_argument("--dropout", type=float, default=0.0)
    group.add_argument("--no-skip", action="store_true", help="no linear skip to the output")
    add_lstm_options(parser)
    group = parser.add_argument_group("training")
    group.add_argument("--steps", type=int, default=300, help="optimizer steps per model")
    group.add_argument("--batch-size", type=int, default=32)
    group.add_argument("--lr", type=float, default=5e-3)
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--ensemble", type=int, default=1,
                       help="train N models on seeds seed..seed+N-1, combine by the median")
    group.add_argument("--no-progress", action="store_true")


def _config(args):
    from lstmkit.forecast import ForecastConfig

    target = args.target[0] if args.target and len(args.target) == 1 else args.target
    time = args.time[0] if args.time and len(args.time) == 1 else args.time
    return ForecastConfig(
        target=target, time=time, series_id=args.series_id, layout=args.layout,
        past_covariates=args.past_covariates, future_covariates=args.future_covariates,
        calendar=args.calendar, missing=args.missing, freq=args.freq, resample=args.resample,
        horizon=args.horizon, window=args.window, strategy=args.strategy,
        quantiles=args.quantiles, season=args.season, scaler=args.scaler,
        window_center=args.window_center, window_scale=args.window_scale,
        hidden_size=args.hidden, num_layers=args.layers, dropout=args.dropout,
        skip=not args.no_skip, lstm_options=lstm_options(args), steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, ensemble=args.ensemble,
        progress=not args.no_progress,
    )


def _train(args) -> int:
    from lstmkit.forecast import metrics_table, train_run
    from lstmkit.train import is_main_process

    forecaster, scores = train_run(_config(args), args.data, args.out, holdout=args.holdout,
                                   overwrite=args.overwrite, resume=args.resume,
                                   backtest_windows=args.backtest)
    if not is_main_process():  # under torchrun, one report is enough
        return 0
    print(f"trained {len(forecaster.members)} model(s) in {forecaster.fit_seconds:.1f} s; "
          f"run directory {args.out} (report.html)")
    if scores and "model" in scores:
        print(f"\nheld-out last {args.holdout} points:\n{metrics_table(scores)}")
    if scores and "backtest" in scores:
        print(f"\nbacktest ({len(scores['backtest']['windows'])} windows):\n"
              f"{metrics_table(scores['backtest']['mean'])}")
    return 0


def _backtest(args) -> int:
    import json

    from lstmkit.forecast import backtest, metrics_table

    report = backtest(_config(args), args.data, windows=args.windows, step=args.step,
                      refit=args.refit)
    for cutoff, scores in zip(report["cutoffs"], report["windows"]):
        print(f"origin after {cutoff}:\n{metrics_table(scores)}\n")
    print(f"mean over {len(report['windows'])} windows "
          f"({'refit at every origin' if args.refit else 'one model'}):\n"
          f"{metrics_table(report['mean'])}")
    if args.output:
        write_output(args.output, json.dumps(report, indent=2), args.overwrite)
    return 0


def _predict(args) -> int:
    from lstmkit.forecast import Forecaster
    from lstmkit.forecast import forecast_frame_to_csv as to_csv

    forecaster = Forecaster.load(args.model)
    frame = forecaster.predict(args.data)
    if args.output:
        write_output(args.output, to_csv(frame), args.overwrite)
        print(f"wrote {len(frame)} rows to {args.output}")
    else:
        sys.stdout.write(to_csv(frame))
    return 0


def _evaluate(args) -> int:
    from lstmkit.forecast import Forecaster, metrics_table

    forecaster = Forecaster.load(args.model)
    scores = forecaster.evaluate(args.data, args.holdout)
    print(metrics_table(scores))
    return 0


def _plot(args) -> int:
    from lstmkit.forecast import Forecaster, write_report

    forecaster = Forecaster.load(args.model)
    data = forecaster.config.load(args.data)
    if args.holdout is not None and not 1 <= args.holdout <= forecaster.config.horizon:
        raise LstmkitError(f"--holdout must lie between 1 and the horizon "
                           f"({forecaster.config.horizon})")
    scores = forecaster.evaluate(data, args.holdout) if args.holdout else None
    page = write_report(args.out, forecaster, data, args.holdout, scores)
    print(f"wrote {page}")
    return 0
