"""``lstmkit lm train | evaluate | generate | inspect``: language models of text.

    lstmkit lm train --run-dir runs/pylm                     # the Python stdlib's source
    lstmkit lm train --data notes/ book.txt --pattern "*.md" --run-dir runs/notes
    lstmkit lm evaluate --run-dir runs/pylm                  # the corpus's test part
    lstmkit lm generate --run-dir runs/pylm --prompt "def " --temperature 0.7 --seed 1
    lstmkit lm inspect --run-dir runs/pylm --output-dir runs/pylm-cells

Texts are UTF-8 files, or folders read recursively (``--pattern`` picks the files);
with none given, training reads the standard library's ``.py`` files. Every option
maps onto a field of LanguageModelConfig or TrainConfig; one left out keeps its default.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lstmkit.cli.options import (
    TRAIN_FIELDS,
    add_run_dir,
    add_threads_option,
    add_training_options,
    check_outputs,
    given,
    log_session,
    unit_list,
)

# option destination -> LanguageModelConfig field
_CONFIG_FIELDS = (
    "tokenizer", "vocab_size", "min_count", "lowercase", "pattern", "val_fraction",
    "test_fraction", "embedding_dim", "hidden_size", "num_layers", "proj_size", "tie_weights",
    "embedding_dropout", "input_dropout", "hidden_dropout", "output_dropout", "weight_drop",
    "activation_regularisation", "temporal_activation_regularisation", "bptt",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lm", help="language models: train on text, evaluate, generate, inspect cells",
        description="Train an LSTM language model (character, word or BPE tokens) on text "
                    "files, measure perplexity and bits per character, generate text, and "
                    "picture what single cells track.")
    commands = parser.add_subparsers(dest="lm_command", metavar="COMMAND", required=True)
    _add_train(commands)
    _add_evaluate(commands)
    _add_generate(commands)
    _add_inspect(commands)


def _add_common(parser: argparse.ArgumentParser) -> None:
    add_threads_option(parser)
    parser.add_argument("--cache-dir", type=Path, help="where token streams are kept (default "
                                                       "$LSTMKIT_CACHE or ~/.cache/lstmkit)")


def _add_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="train a language model on text files")
    add_run_dir(parser, writes=True)
    add_fit_options(parser)
    parser.set_defaults(handler=train_command)


def add_fit_options(parser: argparse.ArgumentParser) -> None:
    """What train reads and how it trains (``lstmkit tune lm`` takes them too)."""
    parser.add_argument("--data", nargs="+", default=["stdlib"], metavar="PATH",
                        help="text files or folders (default: stdlib, the Python standard "
                             "library's .py files)")
    parser.add_argument("--pattern", help="files to read inside folders (default *)")
    parser.add_argument("--val-fraction", type=float,
                        help="share of the text, after training's, for validation (default 0.05)")
    parser.add_argument("--test-fraction", type=float,
                        help="share of the text at the end for the test (default 0.05)")
    _add_common(parser)
    tokens = parser.add_argument_group("tokens")
    tokens.add_argument("--tokenizer", choices=("char", "word", "bpe"), help="(default char)")
    tokens.add_argument("--vocab-size", type=int, help="most vocabulary entries")
    tokens.add_argument("--min-count", type=int, help="drop rarer pieces (default 1)")
    tokens.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None)
    model = parser.add_argument_group("model")
    model.add_argument("--embedding-dim", type=int, help="(default 256)")
    model.add_argument("--hidden-size", type=int, help="(default 512)")
    model.add_argument("--num-layers", type=int, help="(default 2)")
    model.add_argument("--proj-size", type=int, help="LSTM projection size (default 0, off)")
    model.add_argument("--tie-weights", action=argparse.BooleanOptionalAction, default=None,
                       help="output layer = embedding matrix (default on)")
    model.add_argument("--embedding-dropout", type=float, help="whole words (default 0)")
    model.add_argument("--input-dropout", type=float, help="locked, on embeddings (default 0.1)")
    model.add_argument("--hidden-dropout", type=float, help="locked, between layers (default 0.1)")
    model.add_argument("--output-dropout", type=float, help="locked, on the output (default 0.1)")
    model.add_argument("--weight-drop", type=float, help="DropConnect on W_hh (default 0.2)")
    model.add_argument("--ar", dest="activation_regularisation", type=float,
                       help="activation regularisation alpha (default 1)")
    model.add_argument("--tar", dest="temporal_activation_regularisation", type=float,
                       help="temporal activation regularisation beta (default 1)")
    model.add_argument("--bptt", type=int, help="tokens per backpropagation window (default 100)")
    add_training_options(parser, "streams read side by side", "validation loss",
                         {"epochs": 20, "batch_size": 32, "lr": 0.003, "schedule": "cosine",
                          "warmup_steps": 100, "grad_clip": 1, "patience": 3,
                          "weight_decay": 0})


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="perplexity and bits per character")
    add_run_dir(parser, writes=False)
    parser.add_argument("--data", nargs="+", metavar="PATH",
                        help="files or folders to evaluate on, all of them (default: the "
                             "held-out part of the training corpus)")
    parser.add_argument("--part", choices=("val", "test"), default="test",
                        help="held-out part of the training corpus (default test)")
    parser.add_argument("--batch-size", type=int, default=16, help="streams read side by side")
    _add_common(parser)
    parser.set_defaults(handler=evaluate_command)


def _add_generate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("generate", help="generate text after a prompt, streamed")
    add_run_dir(parser, writes=False)
    parser.add_argument("--prompt", default="\n", help="text to start from (default a line break)")
    parser.add_argument("--max-tokens", type=int, default=500, help="most tokens (default 500)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="below 1 safer, above 1 wilder (default 1)")
    parser.add_argument("--top-k", type=int, help="sample among the k likeliest (1: greedy)")
    parser.add_argument("--top-p", type=float, help="sample among the likeliest tokens holding "
                                                    "this much probability (nucleus)")
    parser.add_argument("--seed", type=int, help="the same seed gives the same text")
    parser.add_argument("--stop", help="stop before this string appears")
    _add_common(parser)
    parser.set_defaults(handler=generate_command)


def _add_inspect(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("inspect", help="cell activations coloured over a text "
                                                 "(Karpathy et al. 2015)")
    add_run_dir(parser, writes=False)
    parser.add_argument("--output-dir", type=Path, required=True,
                        help="where cell_activations.html and .png go")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--text", help="the text to look at")
    source.add_argument("--file", type=Path, help="a UTF-8 file to look at")
    parser.add_argument("--characters", type=int, default=2000,
                        help="first characters of the text or file (default 2000; without "
                             "--text or --file, of the training corpus's test part)")
    parser.add_argument("--units", type=unit_list, metavar="3,17",
                        help="units to show (default: found by correlation with quotes, "
                             "comments, brackets, line position, indentation)")
    parser.add_argument("--layer", type=int, default=-1, help="LSTM layer (default -1, the top)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output-dir")
    _add_common(parser)
    parser.set_defaults(handler=inspect_command)


# --------------------------------------------------------------------------- commands


def config_from_args(args: argparse.Namespace):
    """The LanguageModelConfig the options describe (add_fit_options)."""
    from lstmkit.tasks.language_model import LanguageModelConfig
    from lstmkit.train import TrainConfig

    defaults = LanguageModelConfig().train
    train = TrainConfig(**{**vars(defaults), **given(args, TRAIN_FIELDS),
                           "progress": not args.quiet})
    return LanguageModelConfig(**given(args, _CONFIG_FIELDS), train=train)


def fit_options(args: argparse.Namespace) -> dict:
    """fit()'s own arguments beside the data."""
    return {"cache_dir": args.cache_dir}


def train_command(args: argparse.Namespace) -> int:
    from lstmkit.tasks.language_model import LanguageModel

    with log_session(logging.WARNING if args.quiet else logging.INFO):
        report = LanguageModel(config_from_args(args)).fit(
            args.data, args.run_dir, resume=args.resume, overwrite=args.overwrite,
            **fit_options(args))
    print(report.summary())
    print(f"run written to {args.run_dir}")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    from lstmkit.tasks.language_model import LanguageModel

    with log_session():
        model = LanguageModel.load(args.run_dir)
        evaluation = model.evaluate(args.data, part=args.part,
                                    batch_size=args.batch_size, cache_dir=args.cache_dir)
    print(evaluation.table())
    return 0


def generate_command(args: argparse.Namespace) -> int:
    from lstmkit.tasks.language_model import LanguageModel

    def show(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    with log_session():
        model = LanguageModel.load(args.run_dir)
        pieces = model.stream(args.prompt, args.max_tokens, args.temperature, args.top_k,
                              args.top_p, args.seed, args.stop)
        first = next(pieces, "")  # checks the options and the prompt before printing anything
        show(args.prompt + first)
        for piece in pieces:
            show(piece)
    show("\n")
    return 0


def inspect_command(args: argparse.Namespace) -> int:
    from lstmkit.data.token_stream import read_text
    from lstmkit.errors import LstmkitError
    from lstmkit.io.rundir import open_run
    from lstmkit.report.cell_activations import write_cell_activations
    from lstmkit.tasks.language_model import LanguageModel

    check_outputs(args)
    if args.characters < 1:
        raise LstmkitError(f"--characters must be at least 1, got {args.characters}")
    with log_session():
        model = LanguageModel.load(args.run_dir)
        if args.text is not None:
            text = args.text[:args.characters]
        elif args.file is not None:
            text = read_text(args.file, args.characters)
        else:
            text = model.held_out_text(args.characters)
        pieces, activations = model.cell_activations(text, args.layer)
        with open_run(args.output_dir, "lm-inspection", overwrite=args.overwrite,
                      resumable=False, option="--output-dir") as run:
            write_cell_activations(pieces, activations, run.work, args.units,
                                   title=f"{args.run_dir}: tanh(c) of LSTM layer "
                                         f"{args.layer % model.config.num_layers}")
    print(f"wrote cell_activations.html and cell_activations.png to {args.output_dir}")
    return 0
