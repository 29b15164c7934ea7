"""``lstmkit forecast train | predict | backtest | evaluate | plot``."""

from __future__ import annotations

import argparse
import sys

from lstmkit.cli.options import (
    add_lstm_options,
    add_run_dir,
    add_threads_option,
    check_output_file,
    check_outputs,
    lstm_options,
    write_output,
)


def add_parser(subparsers) -> None:
    forecast = subparsers.add_parser(
        "forecast", help="time-series forecasting on your own CSV/Parquet data",
        description="Train LSTM forecasters on CSV or Parquet data and use them.")
    commands = forecast.add_subparsers(dest="forecast_command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", help="train a forecaster and write its run directory")
    add_fit_options(train)
    add_run_dir(train, writes=True)
    train.add_argument("--backtest", type=int, default=0, metavar="WINDOWS",
                       help="also run a rolling-origin backtest over this many windows")
    train.add_argument("--no-report", action="store_true",
                       help="skip the report (PNGs and report.html): faster")
    add_threads_option(train)
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
    backtest.add_argument("--overwrite", action="store_true", help="replace --output")
    backtest.add_argument("--quiet", action="store_true", help="no progress output")
    add_threads_option(backtest)
    backtest.set_defaults(handler=_backtest)

    predict = commands.add_parser("predict", help="forecast past the end of each series")
    add_run_dir(predict, writes=False)
    predict.add_argument("--data", required=True, help="history to forecast from (CSV/Parquet)")
    predict.add_argument("--output", help="write the forecast here (CSV) instead of printing")
    predict.add_argument("--overwrite", action="store_true", help="replace --output")
    add_threads_option(predict)
    predict.set_defaults(handler=_predict)

    evaluate = commands.add_parser("evaluate",
                                   help="score a trained forecaster on the tail of a file")
    add_run_dir(evaluate, writes=False)
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--holdout", type=int, default=None,
                          help="points at the end of each series to forecast (default: horizon)")
    evaluate.add_argument("--output", help="write the scores here (JSON)")
    evaluate.add_argument("--overwrite", action="store_true", help="replace --output")
    add_threads_option(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    plot = commands.add_parser("plot", help="write the report (PNG + HTML) for a trained model")
    add_run_dir(plot, writes=False)
    plot.add_argument("--data", required=True)
    plot.add_argument("--holdout", type=int, default=None)
    plot.add_argument("--output-dir", required=True,
                      help="folder for the pictures and report.html (not inside --run-dir)")
    plot.add_argument("--overwrite", action="store_true", help="replace --output-dir")
    add_threads_option(plot)
    plot.set_defaults(handler=_plot)


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    """What train reads and how it trains (``lstmkit tune forecast`` takes them too)."""
    _add_data_options(parser)
    _add_model_options(parser)
    parser.add_argument("--holdout", type=int, default=None,
                        help="hold out the last N points of each series and score them "
                             "against naive and seasonal naive (N <= horizon)")


def fit_options(args: argparse.Namespace) -> dict:
    """fit()'s own arguments beside the data."""
    return {"holdout": args.holdout}


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", required=True, help="CSV or Parquet file")
    group.add_argument("--target", nargs="+", help="target column (wide layout: several)")
    group.add_argument("--time", nargs="+",
                       help="time column, or calendar-part columns such as: year quarter")
    group.add_argument("--time-format", metavar="FORMAT",
                       help="strftime format of the time column (e.g. %%d.%%m.%%Y), for dates "
                            "pandas cannot read by itself")
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
    group.add_argument("--hidden-size", type=int, default=32)
    group.add_argument("--num-layers", type=int, default=1)
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


def config_from_args(args: argparse.Namespace):
    """The ForecastConfig the options describe (add_fit_options)."""
    from lstmkit.forecast import ForecastConfig

    target = args.target[0] if args.target and len(args.target) == 1 else args.target
    time = args.time[0] if args.time and len(args.time) == 1 else args.time
    return ForecastConfig(
        target=target, time=time, time_format=args.time_format, series_id=args.series_id,
        layout=args.layout,
        past_covariates=args.past_covariates, future_covariates=args.future_covariates,
        calendar=args.calendar, missing=args.missing, freq=args.freq, resample=args.resample,
        horizon=args.horizon, window=args.window, strategy=args.strategy,
        quantiles=args.quantiles, season=args.season, scaler=args.scaler,
        window_center=args.window_center, window_scale=args.window_scale,
        hidden_size=args.hidden_size, num_layers=args.num_layers, dropout=args.dropout,
        skip=not args.no_skip, lstm_options=lstm_options(args), steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, ensemble=args.ensemble,
        progress=not args.quiet,
    )


def _train(args) -> int:
    from lstmkit.forecast import Forecaster
    from lstmkit.train import is_main_process

    config = config_from_args(args)
    forecaster = Forecaster(config).fit(args.data, args.run_dir, resume=args.resume,
                                        overwrite=args.overwrite, holdout=args.holdout,
                                        backtest_windows=args.backtest,
                                        report=not args.no_report)
    if not is_main_process():  # under torchrun, one report is enough
        return 0
    print(f"trained {len(forecaster.members)} model(s) in {forecaster.fit_seconds:.1f} s; "
          f"run directory {args.run_dir}")
    scores = forecaster.scores
    if scores is not None:
        print(f"\n{scores.table()}")
        if "backtest" in scores.details:
            from lstmkit.forecast import Evaluation

            print(f"\n{Evaluation.from_json(scores.details['backtest']).table()}")
    return 0


def _backtest(args) -> int:
    import json

    from lstmkit.forecast import Evaluation, backtest

    if args.output:
        check_output_file(args.output, args.overwrite)
    report = backtest(config_from_args(args), args.data, windows=args.windows, step=args.step,
                      refit=args.refit)
    for window in report.details["windows"]:
        print(f"{Evaluation.from_json(window).table()}\n")
    print(f"{'refit at every origin' if args.refit else 'one model'}: {report.table()}")
    if args.output:
        write_output(args.output, json.dumps(report.to_json(), indent=2), args.overwrite)
    return 0


def _predict(args) -> int:
    from lstmkit.forecast import Forecaster
    from lstmkit.forecast import forecast_frame_to_csv as to_csv

    check_outputs(args)
    if args.output:
        check_output_file(args.output, args.overwrite)
    forecaster = Forecaster.load(args.run_dir)
    frame = forecaster.predict(args.data)
    if args.output:
        write_output(args.output, to_csv(frame), args.overwrite)
        print(f"wrote {len(frame)} rows to {args.output}")
    else:
        sys.stdout.write(to_csv(frame))
    return 0


def _evaluate(args) -> int:
    import json

    from lstmkit.forecast import Forecaster

    check_outputs(args)
    if args.output:
        check_output_file(args.output, args.overwrite)
    scores = Forecaster.load(args.run_dir).evaluate(args.data, args.holdout)
    print(scores.table())
    if args.output:
        write_output(args.output, json.dumps(scores.to_json(), indent=2), args.overwrite)
    return 0


def _plot(args) -> int:
    from lstmkit.forecast import Forecaster, write_report
    from lstmkit.io.rundir import open_run

    check_outputs(args)
    forecaster = Forecaster.load(args.run_dir)
    data = forecaster.config.load(args.data)
    scores = forecaster.evaluate(data, args.holdout) if args.holdout else None
    with open_run(args.output_dir, "forecast-report", overwrite=args.overwrite,
                  resumable=False, option="--output-dir") as run:
        write_report(run.work, forecaster, data, args.holdout, scores)
    print(f"wrote {args.output_dir}/report.html")
    return 0
