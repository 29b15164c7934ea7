"""``lstmkit demo``: the main job on the bundled data (what ``make demo`` runs).

Trains an ensemble of LSTM forecasters on the airline passengers series with the
last 24 months held out, scores them beside naive and seasonal naive, backtests
over three rolling origins, and writes the report to runs/demo/.
"""

from __future__ import annotations

from pathlib import Path

from lstmkit.cli.options import add_threads_option

DATA = Path(__file__).resolve().parent.parent / "datasets" / "airline_passengers.csv"


def add_parser(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="forecast the bundled airline series (make demo)")
    demo.add_argument("--run-dir", default="runs/demo", help="run directory (replaced each time)")
    demo.add_argument("--ensemble", type=int, default=3)
    add_threads_option(demo)
    demo.set_defaults(handler=_demo)


def _demo(args) -> int:
    from lstmkit.forecast import Evaluation, ForecastConfig, Forecaster

    config = ForecastConfig(target="Passengers", horizon=24, window=36,
                            ensemble=args.ensemble, progress=False)
    print(f"lstmkit demo: forecasting {DATA.name} (monthly, 1949-1960), last 24 months held "
          f"out, an ensemble of {args.ensemble} LSTMs")
    forecaster = Forecaster(config).fit(DATA, args.run_dir, overwrite=True, holdout=24,
                                        backtest_windows=3)
    scores = forecaster.scores
    print(f"\ntrained in {forecaster.fit_seconds:.1f} s\n")
    print(f"{scores.table()}\n")
    backtest = Evaluation.from_json(scores.details["backtest"])
    print(f"models trained at the first origin, forecasting from each "
          f"({', '.join(backtest.details['cutoffs'])}):\n{backtest.table()}\n")
    print(f"report: {Path(args.run_dir) / 'report.html'}")
    return 0
