"""``lstmkit tune forecast | classify | lm | report``: search a task's options with Optuna.

    lstmkit tune forecast --data airline.csv --target Passengers --horizon 24 \
        --study-dir studies/air --trials 30
    lstmkit tune classify --data reviews.csv --study-dir studies/reviews \
        --param hidden_size=32:256 --param lr=1e-4:1e-2:log --fix pooling=attention
    lstmkit tune lm --data notes/ --study-dir /shared/lm --storage postgresql://u:p@db/optuna
    lstmkit tune report --study-dir studies/air

Each task takes its own train options (they fix what the search does not vary) and the
search's: where the study lives, how many trials, which options vary and over what.
Run the same command on another machine with the same --storage and --study-name to add
a worker; run it again after a kill to go on.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path

from lstmkit.cli.options import add_threads_option, log_session

TASK_CLIS = {"forecast": "lstmkit.cli.forecast", "classify": "lstmkit.cli.classify",
             "lm": "lstmkit.cli.lm"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune", help="search a task's options with Optuna (one machine or many)",
        description="Search a task's options with Optuna: TPE sampling, pruning on the "
                    "per-epoch validation loss, an SQLite study that resumes after a kill, "
                    "PostgreSQL or a journal file for several workers. The best "
                    "configuration is written as a normal run directory (STUDY/best).")
    commands = parser.add_subparsers(dest="tune_task", metavar="TASK", required=True)
    for task, module in TASK_CLIS.items():
        task_parser = commands.add_parser(task, help=f"tune {task} (takes {task} train's "
                                                     "options)")
        importlib.import_module(module).add_fit_options(task_parser)
        _add_search_options(task_parser)
        task_parser.set_defaults(handler=tune_command)
    report = commands.add_parser("report", help="a study's best configuration, beside the "
                                                "untuned default (its study.json)")
    report.add_argument("--study-dir", type=Path, required=True)
    report.set_defaults(handler=report_command)


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    search = parser.add_argument_group("search")
    search.add_argument("--study-dir", type=Path, required=True,
                        help="the study's folder: trials/, best (the best run), report.html, "
                             "and study.db unless --storage names another")
    search.add_argument("--trials", type=int, default=20,
                        help="trials in the study, all workers together (default 20)")
    search.add_argument("--search-time", type=float, metavar="S",
                        help="this worker stops starting trials after S seconds")
    search.add_argument("--storage", help="postgresql://user:password@host/db, sqlite:///PATH "
                                          "or journal:PATH (default: STUDY_DIR/study.db)")
    search.add_argument("--study-name", help="(default: the study dir's name)")
    search.add_argument("--param", action="append", default=[], metavar="NAME=SPEC",
                        help="search NAME over LOW:HIGH, LOW:HIGH:log or A,B,C; or fix it: "
                             "NAME=VALUE (repeatable; replaces the default range)")
    search.add_argument("--space", type=Path, metavar="FILE",
                        help="ranges, choices and fixed values in a YAML/JSON file")
    search.add_argument("--sampler", choices=("tpe", "random"), default="tpe")
    search.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median",
                        help="stop poor trials early on their validation loss (classify, lm)")
    search.add_argument("--search-seed", type=int, default=0, help="the sampler's seed")
    given = {action.dest for action in parser._actions}
    if "quiet" not in given:
        search.add_argument("--quiet", action="store_true", help="no progress output")
    if "threads" not in given:
        add_threads_option(parser)


def tune_command(args: argparse.Namespace) -> int:
    from lstmkit.train.progress import held_back
    from lstmkit.tuning import Tuner, parse_param, read_space_file

    cli = importlib.import_module(TASK_CLIS[args.tune_task])
    space = read_space_file(args.space) if args.space is not None else {}
    space.update(dict(parse_param(text) for text in args.param))
    with log_session(logging.WARNING if args.quiet else logging.INFO):
        config = cli.config_from_args(args)
        tuner = Tuner(args.tune_task, config, args.data, cli.fit_options(args), space=space,
                      sampler=args.sampler, pruner=args.pruner, seed=args.search_seed)
        with held_back("lstmkit.train", "lstmkit.data"):  # the study logs a line per trial
            result = tuner.run(args.study_dir, trials=args.trials, time_budget=args.search_time,
                               storage=args.storage, study_name=args.study_name)
    _print_result(result.task, result.metric, result.best_trial, result.best_value,
                  result.untuned_value, result.best_options, result.states, result.note)
    print(f"best run: {result.best_run}; report: {result.report}")
    return 0


def _print_result(task: str, metric: str, best_trial: int, best_value: float,
                  untuned: float | None, options: dict, states: dict, note: str) -> None:
    counts = ", ".join(f"{count} {state.lower()}" for state, count in sorted(states.items()))
    print(f"{task} study: {counts}")
    versus = "" if untuned is None else f" (untuned default: {untuned:.4g})"
    print(f"best: trial {best_trial}, {metric} {best_value:.4g}{versus}")
    for name, value in sorted(options.items()):
        print(f"  {name} = {value:.4g}" if isinstance(value, float) else f"  {name} = {value}")
    print(f"best run: {note}")


def report_command(args: argparse.Namespace) -> int:
    from lstmkit.errors import LstmkitError
    from lstmkit.io.files import read_json

    summary_path = args.study_dir / "study.json"
    if not summary_path.is_file():
        raise LstmkitError(f"{args.study_dir} holds no finished study (no study.json); run "
                           "lstmkit tune TASK --study-dir there first")
    summary = read_json(summary_path)
    _print_result(summary["task"], summary["metric"], summary["best_trial"],
                  summary["best_value"], summary["untuned_value"], summary["best_options"],
                  summary["states"], summary["best_run"])
    print(f"chosen on {summary['chosen_on']}")
    print(f"report: {args.study_dir / 'report.html'}")
    return 0
