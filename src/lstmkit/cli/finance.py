"""``lstmkit finance train | backtest | predict | report``: price series, forecast honestly.

    lstmkit finance backtest --data arch:sp500 --target volatility --run-dir runs/spx-vol
    lstmkit finance backtest --data prices.csv --target return --cost-bps 10 --run-dir runs/bt
    lstmkit finance report --run-dir runs/spx-vol --output-dir spx-report
    lstmkit finance train --data prices.csv --target direction --run-dir runs/dir
    lstmkit finance predict --run-dir runs/dir --data prices.csv

``--data`` takes price tables (CSV/TSV/Parquet; long with a close column, or wide with
one close column per asset) and ``arch:sp500`` / ``arch:nasdaq`` / ``arch:wti``, the
daily index and oil data the arch package ships. Every option maps onto a field of
FinanceConfig or TrainConfig; one left out keeps its default.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from lstmkit.cli.options import (
    TRAIN_FIELDS,
    add_lstm_options,
    add_run_dir,
    add_threads_option,
    add_training_options,
    check_output_file,
    check_outputs,
    given,
    log_session,
    lstm_options,
    write_output,
)

# option destination -> FinanceConfig field
_CONFIG_FIELDS = (
    "close", "time", "asset_column", "time_format", "target", "horizon", "window", "features",
    "hidden_size", "num_layers", "dropout", "validation_days", "refit_epochs", "train_days",
    "refit_every", "purge", "test_start", "strategy", "top_k", "cost_bps",
)
_DATA_HELP = ("price tables (CSV/TSV/Parquet) and arch:sp500, arch:nasdaq, arch:wti (the "
              "arch package's daily index and oil data); several are aligned on their common "
              "days")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "finance", help="financial forecasting: returns, direction, volatility; walk-forward "
                        "backtests against the random walk, GARCH and buy and hold",
        description="Forecast returns, their direction or their volatility from daily prices, "
                    "and judge it honestly: walk-forward refits with nothing fitted on later "
                    "days, the random walk, GARCH(1,1) and buy and hold beside the model, "
                    "tests of significance, and trading after costs.")
    commands = parser.add_subparsers(dest="finance_command", metavar="COMMAND", required=True)
    _add_fitting(commands.add_parser("train", help="train one model on all the history"),
                 train_command)
    _add_fitting(commands.add_parser("backtest", help="walk forward: refit, forecast, score"),
                 backtest_command)
    _add_predict(commands)
    _add_report(commands)


def _add_fitting(parser: argparse.ArgumentParser, handler) -> None:
    parser.add_argument("--data", nargs="+", required=True, metavar="SOURCE", help=_DATA_HELP)
    add_run_dir(parser, writes=True)
    columns = parser.add_argument_group("columns (found by name when left out)")
    columns.add_argument("--close", help="closing price column (adj close, close, price)")
    columns.add_argument("--time", help="date column (date, time, timestamp)")
    columns.add_argument("--asset-column", help="asset name column of a long table (symbol, "
                                                "ticker, asset)")
    columns.add_argument("--time-format", help="strptime format of the dates, e.g. %%d.%%m.%%Y")
    forecast = parser.add_argument_group("forecast")
    forecast.add_argument("--target", choices=("return", "direction", "volatility",
                                               "cross_section"), help="(default return)")
    forecast.add_argument("--horizon", type=int, help="trading days ahead (default 1)")
    forecast.add_argument("--window", type=int, help="days of features read (default 60)")
    forecast.add_argument("--features", nargs="+", metavar="NAME",
                          help="return range gap volume volatility_5 volatility_21 "
                               "momentum_21 (default: all the prices allow)")
    model = parser.add_argument_group("model")
    model.add_argument("--hidden-size", type=int, help="(default 8)")
    model.add_argument("--num-layers", type=int, help="(default 1)")
    model.add_argument("--dropout", type=float, help="(default 0.3)")
    walk = parser.add_argument_group("walk-forward")
    walk.add_argument("--train-days", type=int, help="training window in trading days "
                                                     "(default 1000; 0: all history)")
    walk.add_argument("--validation-days", type=int,
                      help="the training window's last days, for early stopping (default 250)")
    walk.add_argument("--refit-every", type=int, help="trading days between refits (default 21)")
    walk.add_argument("--refit-epochs", type=int,
                      help="epochs of a refit, from the previous model (default 2)")
    walk.add_argument("--purge", type=int, help="days between the last training target and "
                                                "the test (default: the horizon)")
    walk.add_argument("--test-start", help="first test date (default: after the first full "
                                           "training window)")
    trading = parser.add_argument_group("trading")
    trading.add_argument("--strategy", choices=("sign", "long_short"), help="(default sign)")
    trading.add_argument("--top-k", type=int, help="assets long and short in long_short "
                                                   "(default 1)")
    trading.add_argument("--cost-bps", type=float,
                         help="costs in basis points per unit of turnover (default 5)")
    add_training_options(parser, "windows per batch", "validation loss",
                         {"epochs": 30, "batch_size": 64, "lr": 0.001, "weight_decay": 0.0001,
                          "patience": 5, "grad_clip": 1, "schedule": "constant"})
    add_lstm_options(parser)
    add_threads_option(parser)
    parser.set_defaults(handler=handler)


def _add_predict(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("predict", help="forecast from the last day of the data")
    add_run_dir(parser, writes=False)
    parser.add_argument("--data", nargs="+", required=True, metavar="SOURCE", help=_DATA_HELP)
    parser.add_argument("--output", type=Path, help="write the forecasts as CSV here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    add_threads_option(parser)
    parser.set_defaults(handler=predict_command)


def _add_report(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("report", help="a backtest's tables, and its report drawn "
                                                "again elsewhere")
    add_run_dir(parser, writes=False)
    parser.add_argument("--output-dir", type=Path,
                        help="write report.html and its pictures here (the run holds its own)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output-dir")
    parser.set_defaults(handler=report_command)


# --------------------------------------------------------------------------- commands


def config_from_args(args: argparse.Namespace):
    """The FinanceConfig the train and backtest options describe."""
    from lstmkit.tasks.finance import FinanceConfig
    from lstmkit.train import TrainConfig

    defaults = FinanceConfig().train
    train = TrainConfig(**{**vars(defaults), **given(args, TRAIN_FIELDS),
                           "progress": not args.quiet})
    return FinanceConfig(**given(args, _CONFIG_FIELDS), lstm=lstm_options(args), train=train)


def train_command(args: argparse.Namespace) -> int:
    from lstmkit.tasks.finance import FinanceModel

    with log_session(logging.WARNING if args.quiet else logging.INFO):
        model = FinanceModel(config_from_args(args)).fit(
            args.data, args.run_dir, resume=args.resume, overwrite=args.overwrite)
    print(f"trained a {model.config.target} model of {', '.join(model.meta['assets'])} on "
          f"the days until {model.meta['trained_until']}")
    print(f"run written to {args.run_dir}")
    return 0


def backtest_command(args: argparse.Namespace) -> int:
    from lstmkit.tasks.finance import FinanceModel

    with log_session(logging.WARNING if args.quiet else logging.INFO):
        model = FinanceModel(config_from_args(args))
        model.backtest(args.data, args.run_dir, resume=args.resume, overwrite=args.overwrite)
    _print_scores(model)
    print(f"run written to {args.run_dir} (forecasts.csv, report.html)")
    return 0


def _print_scores(model) -> None:
    from lstmkit.tasks.lifecycle import Evaluation

    print(model.scores.table())
    if "trading" in model.scores.details:
        print()
        print(Evaluation.from_json(model.scores.details["trading"]).table())


def predict_command(args: argparse.Namespace) -> int:
    from lstmkit.tasks.finance import FinanceModel

    check_outputs(args)
    if args.output is not None:
        check_output_file(args.output, args.overwrite)
    with log_session():
        forecasts = FinanceModel.load(args.run_dir).predict(args.data)
    if args.output is None:
        print(forecasts.to_string(index=False))
    else:
        write_output(args.output, forecasts.to_csv(index=False), args.overwrite)
        print(f"wrote {len(forecasts)} forecasts to {args.output}")
    return 0


def report_command(args: argparse.Namespace) -> int:
    from lstmkit.errors import LstmkitError
    from lstmkit.io.rundir import open_run
    from lstmkit.report.finance_report import write_report
    from lstmkit.tasks.finance import FinanceModel

    check_outputs(args)
    with log_session():
        model = FinanceModel.load(args.run_dir)
        if model.scores is None:
            raise LstmkitError(f"{args.run_dir} holds a trained model, not a backtest; run "
                               "lstmkit finance backtest to score one")
        if args.output_dir is not None:
            with open_run(args.output_dir, "finance-report", overwrite=args.overwrite,
                          resumable=False, option="--output-dir") as run:
                if run.writer:
                    write_report(run.work, model)
    _print_scores(model)
    if args.output_dir is not None:
        print(f"wrote report.html to {args.output_dir}")
    return 0
