"""``lstmkit classify train | predict | evaluate | inspect``: sequence classification.

    lstmkit classify train --data reviews.csv --text-column review --label-column stars \
        --run-dir runs/r
    lstmkit classify predict --run-dir runs/r --text "loved it" --text "never again"
    lstmkit classify evaluate --run-dir runs/r --data test.csv --output-dir runs/r-test
    lstmkit classify inspect --run-dir runs/r --text "loved it" --output-dir runs/r-look

Every option maps onto a field of ClassifierConfig or TrainConfig; one left out keeps
that field's default.
"""

from __future__ import annotations

import argparse
import sys
import time
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
    lstm_options,
    unit_list,
    write_output,
)
from lstmkit.errors import LstmkitError

# option destination -> ClassifierConfig field (the same name but for --kind)
_CONFIG_FIELDS = {"kind": "data"} | {name: name for name in (
    "text_column", "label_column", "value_columns", "id_column", "step_column",
    "frame_length", "tokenizer", "vocab_size", "min_count", "lowercase", "max_length",
    "embedding_dim", "hidden_size", "num_layers", "bidirectional", "pooling", "dropout",
    "lstm_dropout", "proj_size", "class_weights", "val_fraction", "min_epochs", "from_lm",
    "lr_decay", "gradual_unfreeze",
)}


def _columns(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify", help="classify texts (sentiment) or numeric sequences",
        description="Train an LSTM classifier on a CSV/JSONL table of texts or numeric "
                    "sequences with labels, predict, evaluate beside a simple baseline, "
                    "and picture where the model looked.")
    commands = parser.add_subparsers(dest="classify_command", metavar="COMMAND", required=True)
    _add_train(commands)
    _add_predict(commands)
    _add_evaluate(commands)
    _add_inspect(commands)


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--kind", choices=("text", "numbers"),
                       help="what the table holds (default text)")
    group.add_argument("--text-column", help="column of the texts (default text)")
    group.add_argument("--label-column", help="column of the labels (default label)")
    group.add_argument("--value-columns", type=_columns, metavar="A,B",
                       help="numbers: the value column(s) (default value)")
    group.add_argument("--id-column", help="numbers, long layout: the sequence id column "
                                           "(without it: one row per sequence)")
    group.add_argument("--step-column", help="numbers, long layout: column ordering the steps")
    group.add_argument("--frame-length", type=int,
                       help="numbers: stack this many consecutive steps into one LSTM input, "
                            "for long series (default 1)")


def _add_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="train a classifier and write a run directory")
    add_run_dir(parser, writes=True)
    add_fit_options(parser)
    parser.set_defaults(handler=train_command)


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    """What train reads and how it trains (``lstmkit tune classify`` takes them too)."""
    parser.add_argument("--data", type=Path, required=True,
                        help="training table (CSV, TSV or JSONL)")
    parser.add_argument("--val-data", type=Path,
                        help="validation table (default: hold out --val-fraction)")
    parser.add_argument("--val-fraction", type=float,
                        help="stratified share held out for validation (default 0.1)")
    _add_data_options(parser)
    text = parser.add_argument_group("text")
    text.add_argument("--tokenizer", choices=("char", "word", "bpe"), help="(default word)")
    text.add_argument("--vocab-size", type=int, help="most vocabulary entries (default 20000)")
    text.add_argument("--min-count", type=int, help="drop rarer words/characters (default 1)")
    text.add_argument("--lowercase", action=argparse.BooleanOptionalAction,
                      help="fold case (default on)")
    text.add_argument("--max-length", type=int, help="tokens kept per text (default 256)")
    text.add_argument("--from-lm", metavar="RUN_DIR",
                      help="start from this language model's tokenizer, embedding and LSTM "
                           "(ULMFiT fine-tuning)")
    text.add_argument("--lr-decay", type=float,
                      help="with --from-lm: each lower layer's learning rate is divided by "
                           "this (default 2.6)")
    text.add_argument("--gradual-unfreeze", action=argparse.BooleanOptionalAction,
                      help="with --from-lm: unfreeze one layer group per epoch (default on)")
    model = parser.add_argument_group("model")
    model.add_argument("--embedding-dim", type=int, help="(default 100)")
    model.add_argument("--hidden-size", type=int, help="(default 128)")
    model.add_argument("--num-layers", type=int, help="(default 1)")
    model.add_argument("--bidirectional", action=argparse.BooleanOptionalAction,
                       help="(default on)")
    model.add_argument("--pooling", choices=("last", "mean", "max", "attention"),
                       help="(default attention)")
    model.add_argument("--dropout", type=float, help="on embeddings and the pooled summary "
                                                     "(default 0.2)")
    model.add_argument("--lstm-dropout", type=float, help="between LSTM layers (default 0)")
    model.add_argument("--proj-size", type=int, help="LSTM projection size (default 0: none)")
    model.add_argument("--class-weights", action="store_true", default=None,
                       help="weigh the loss by inverse class frequency (imbalanced labels)")
    training = add_training_options(
        parser, "sequences per batch", "validation loss",
        {"epochs": 50, "batch_size": 32, "lr": 0.001, "schedule": "constant",
         "warmup_steps": 0, "grad_clip": 1, "patience": 10, "weight_decay": 0})
    training.add_argument("--min-epochs", type=int, metavar="N",
                          help="early stopping and the best epoch wait until epoch N, so a "
                               "small set's model is not stopped before it learns (default: "
                               "a fifth of --epochs; 0: from epoch 1)")
    add_lstm_options(parser)
    add_threads_option(parser)


def _add_predict(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("predict", help="class probabilities for a table or texts")
    add_run_dir(parser, writes=False)
    parser.add_argument("--data", type=Path, help="table to classify")
    parser.add_argument("--text", action="append", help="a text to classify (repeatable)")
    parser.add_argument("--output", type=Path, help="write CSV here (default: standard output)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    add_threads_option(parser)
    parser.set_defaults(handler=predict_command)


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="scores on a labelled table, beside the "
                                                  "baseline")
    add_run_dir(parser, writes=False)
    parser.add_argument("--data", type=Path, required=True, help="labelled table")
    parser.add_argument("--output-dir", type=Path,
                        help="write metrics.json and confusion_matrix.png here")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output-dir")
    add_threads_option(parser)
    parser.set_defaults(handler=evaluate_command)


def _add_inspect(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("inspect", help="attention and cell pictures for one text")
    add_run_dir(parser, writes=False)
    parser.add_argument("--text", required=True, help="the text to look at")
    parser.add_argument("--output-dir", type=Path, required=True,
                        help="where attention.png, cells.png and inspection.html go")
    parser.add_argument("--units", type=unit_list, metavar="3,17",
                        help="cell units to show (default: the 8 that vary most)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output-dir")
    add_threads_option(parser)
    parser.set_defaults(handler=inspect_command)


def config_from_args(args: argparse.Namespace):
    """The ClassifierConfig the options describe (add_fit_options)."""
    from lstmkit.tasks.classify import ClassifierConfig
    from lstmkit.train import TrainConfig

    train = TrainConfig(**given(args, TRAIN_FIELDS), progress=not args.quiet)
    return ClassifierConfig(**given(args, _CONFIG_FIELDS), lstm_options=lstm_options(args),
                            train=train)


def fit_options(args: argparse.Namespace) -> dict:
    """fit()'s own arguments beside the data."""
    return {"val_data": args.val_data}


def train_command(args: argparse.Namespace) -> int:
    started = time.monotonic()  # --time-budget covers the imports below (torch's) too
    from lstmkit.tasks.classify import Classifier
    from lstmkit.train import is_main_process

    report = Classifier(config_from_args(args)).fit(
        args.data, args.run_dir, resume=args.resume, overwrite=args.overwrite,
        budget_from=started, **fit_options(args))
    if not is_main_process():
        return 0
    result = report.train
    print(f"trained {result.epochs_run} epochs ({result.stop_reason}), best epoch "
          f"{result.best_epoch}, {report.sequences_per_second:.1f} sequences/s")
    if report.validation is not None:
        print(report.validation.table())
    print(f"run written to {args.run_dir}")
    return 0


def predict_command(args: argparse.Namespace) -> int:
    from lstmkit.tasks.classify import Classifier

    if (args.data is None) == (args.text is None):
        raise LstmkitError("give --data (a table to classify) or --text, not both and not "
                           "neither")
    check_outputs(args)
    if args.output is not None:
        check_output_file(args.output, args.overwrite)
    classifier = Classifier.load(args.run_dir)
    predictions = classifier.predict(args.text if args.text is not None else args.data)
    table = predictions.to_csv(index=False)
    if args.output is None:
        sys.stdout.write(table)
    else:
        write_output(args.output, table, args.overwrite)
        print(f"{len(predictions)} predictions written to {args.output}")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    from lstmkit.io.files import atomic_write_json
    from lstmkit.io.rundir import open_run
    from lstmkit.report.classify_report import plot_confusion_matrix
    from lstmkit.tasks.classify import CONFUSION_FILE, METRICS_FILE, Classifier

    check_outputs(args)
    classifier = Classifier.load(args.run_dir)
    evaluation = classifier.evaluate(args.data)
    print(evaluation.table())
    if args.output_dir is not None:
        with open_run(args.output_dir, "classify-evaluation", overwrite=args.overwrite,
                      resumable=False, option="--output-dir") as run:
            atomic_write_json(run.work / METRICS_FILE, evaluation.to_json())
            plot_confusion_matrix(evaluation, run.work / CONFUSION_FILE, title=str(args.data))
        print(f"metrics and confusion matrix written to {args.output_dir}")
    return 0


def inspect_command(args: argparse.Namespace) -> int:
    from lstmkit.io.rundir import open_run
    from lstmkit.report.classify_report import write_inspection
    from lstmkit.tasks.classify import Classifier

    check_outputs(args)
    classifier = Classifier.load(args.run_dir)
    explanation = classifier.explain(args.text, units=args.units)
    with open_run(args.output_dir, "classify-inspection", overwrite=args.overwrite,
                  resumable=False, option="--output-dir") as run:
        written = write_inspection(explanation, run.work)
    best = max(explanation.probabilities, key=explanation.probabilities.get)
    print(f"predicted {best!r} ({explanation.probabilities[best]:.3f}); wrote "
          f"{', '.join(p.name for p in written)} to {args.output_dir}")
    return 0
