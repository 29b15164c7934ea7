"""``lstmkit translate corpus | train | translate | evaluate | inspect``: machine translation.

    lstmkit translate corpus --gettext de --output pairs-de.tsv      # this machine's own
    lstmkit translate train --data pairs-de.tsv --run-dir runs/en-de \\
        --source-language en --target-language de --time-budget 1200
    lstmkit translate translate --run-dir runs/en-de --text "Open the file"
    lstmkit translate translate --run-dir runs/en-de < sentences.txt > translations.txt
    lstmkit translate evaluate --run-dir runs/en-de                  # the held-out test part
    lstmkit translate inspect --run-dir runs/en-de --text "Save as" --output-dir runs/look

Parallel text is one TSV/CSV table (columns source and target, or the two it has) or
two line-aligned files. Every option maps onto a field of TranslationConfig or
TrainConfig; one left out keeps its default.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # the CLI imports torch only when a command runs
    from lstmkit.tasks.translate import Translator

_CONFIG_FIELDS = (
    "source_language", "target_language", "max_length", "max_length_ratio",
    "validation_fraction", "test_fraction", "tokenizer", "vocab_size", "shared_vocabulary",
    "lowercase", "embedding_dim", "hidden_size", "encoder_layers", "decoder_layers",
    "attention", "input_feeding", "self_attention_layers", "self_attention_heads", "dropout",
    "label_smoothing", "validation_sentences", "average_checkpoints", "beam_size", "length_penalty",
    "max_output_ratio",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "translate", help="machine translation: sequence-to-sequence LSTMs with attention",
        description="Make a parallel corpus, train an LSTM encoder-decoder with attention, "
                    "translate with beam search, score with sacreBLEU, draw the attention.")
    commands = parser.add_subparsers(dest="translate_command", metavar="COMMAND",
                                     required=True)
    _add_corpus(commands)
    _add_train(commands)
    _add_translate(commands)
    _add_evaluate(commands)
    _add_inspect(commands)


def _add_corpus(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "corpus", help="English -> LANG pairs from this machine's gettext catalogs",
        description="Extract the user-interface translations that installed software ships "
                    "(/usr/share/locale/LANG/LC_MESSAGES/*.mo) as a TSV of sentence pairs.")
    parser.add_argument("--gettext", metavar="LANG", required=True,
                        help="the target language's locale folder, e.g. de, es, pt_BR")
    parser.add_argument("--locale-dir", type=Path, default=Path("/usr/share/locale"),
                        help="where the catalogs are (default /usr/share/locale)")
    parser.add_argument("--max-words", type=int, default=80,
                        help="leave out longer entries (licences, help pages; default 80)")
    parser.add_argument("--output", type=Path, required=True, help="the TSV to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.set_defaults(handler=corpus_command)


def _add_data(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--data", type=Path, nargs="+", required=required, metavar="PATH",
                        help="one TSV/CSV table of pairs, or two line-aligned text files")
    parser.add_argument("--source-column", help="the table's source column (default source)")
    parser.add_argument("--target-column", help="the table's target column (default target)")


def _add_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="train a translation model on parallel text")
    _add_data(parser, required=True)
    add_run_dir(parser, writes=True)
    parser.add_argument("--validation-data", type=Path, nargs="+", metavar="PATH",
                        help="validation pairs (default: split the data by source sentence)")
    data = parser.add_argument_group("data")
    data.add_argument("--source-language", help="code of the source language, e.g. en")
    data.add_argument("--target-language", help="code of the target language, e.g. de")
    data.add_argument("--validation-fraction", type=float, help="(default 0.05)")
    data.add_argument("--test-fraction", type=float, help="(default 0.05)")
    data.add_argument("--max-length", type=int, help="longest pair trained on, tokens "
                                                     "(default 100)")
    data.add_argument("--max-length-ratio", type=float,
                      help="most one side may be longer than the other, times (default 3)")
    tokens = parser.add_argument_group("vocabulary")
    tokens.add_argument("--tokenizer", choices=("bpe", "word", "char"), help="(default bpe)")
    tokens.add_argument("--vocab-size", type=int, help="(default 4000)")
    tokens.add_argument("--shared-vocabulary", action=argparse.BooleanOptionalAction,
                        default=None, help="one vocabulary and embedding for both languages "
                                           "(default on)")
    tokens.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=None)
    model = parser.add_argument_group("model")
    model.add_argument("--embedding-dim", type=int, help="(default 256)")
    model.add_argument("--hidden-size", type=int, help="(default 256)")
    model.add_argument("--encoder-layers", type=int, help="(default 1)")
    model.add_argument("--decoder-layers", type=int, help="(default 1)")
    model.add_argument("--attention", choices=("dot", "general", "additive"),
                       help="Luong dot or general, Bahdanau additive (default general)")
    model.add_argument("--input-feeding", action=argparse.BooleanOptionalAction, default=None,
                       help="feed the attentional state back in (default on)")
    model.add_argument("--self-attention-layers", type=int,
                       help="self-attention blocks over the encoder states (default 0)")
    model.add_argument("--self-attention-heads", type=int, help="(default 4)")
    model.add_argument("--dropout", type=float, help="(default 0.2)")
    model.add_argument("--label-smoothing", type=float, help="(default 0.1)")
    search = parser.add_argument_group("decoding")
    search.add_argument("--beam-size", type=int, help="the model's default beam (default 5)")
    search.add_argument("--length-penalty", type=float, help="GNMT alpha (default 1)")
    search.add_argument("--max-output-ratio", type=float,
                        help="longest output, times the source plus 10 tokens (default 2)")
    train = add_training_options(
        parser, "tokens per batch", "validation BLEU",
        {"epochs": 40, "batch_size": 2000, "lr": 0.002, "schedule": "cosine",
         "warmup_steps": 200, "grad_clip": 1, "patience": 4, "weight_decay": 0})
    train.add_argument("--validation-sentences", type=int,
                       help="validation pairs translated after each epoch (default 500)")
    train.add_argument("--average-checkpoints", type=int,
                       help="average the weights of the last N epochs' ends, kept if better "
                            "on validation (default 3; 0 off)")
    add_lstm_options(parser)
    add_threads_option(parser)
    parser.set_defaults(handler=train_command)


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--beam-size", type=int, help="(default: the model's, 5)")
    parser.add_argument("--ensemble", type=Path, nargs="+", metavar="RUN_DIR",
                        help="more models of the same language pair decoding together")
    parser.add_argument("--source-language", help="check the model translates from this")
    parser.add_argument("--target-language", help="check the model translates into this")
    add_threads_option(parser)


def _add_translate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("translate", help="translate sentences, streamed as they "
                                                   "finish")
    add_run_dir(parser, writes=False)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--text", action="append", help="a sentence (repeatable)")
    source.add_argument("--input", type=Path,
                        help="a UTF-8 file, one sentence per line (default: standard input)")
    parser.add_argument("--output", type=Path,
                        help="write the translations here (default: standard output)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--n-best", type=int, default=1,
                        help="print this many translations per sentence, tab-separated with "
                             "their scores (default 1)")
    _add_search_options(parser)
    parser.set_defaults(handler=translate_command)


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="BLEU and chrF beside copying the source")
    add_run_dir(parser, writes=False)
    _add_data(parser, required=False)
    parser.add_argument("--part", choices=("validation", "test"), default="test",
                        help="held-out part of the training data (default test)")
    parser.add_argument("--limit", type=int, help="the first N pairs only")
    parser.add_argument("--output", type=Path, help="also write the translations here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    _add_search_options(parser)
    parser.set_defaults(handler=evaluate_command)


def _add_inspect(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("inspect", help="draw the attention alignment of a sentence")
    add_run_dir(parser, writes=False)
    parser.add_argument("--text", required=True, help="the source sentence")
    parser.add_argument("--target", help="a translation to align (default: the model's own)")
    parser.add_argument("--output-dir", type=Path, required=True,
                        help="where attention.png and attention.html go")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing "
                                                                 "--output-dir")
    add_threads_option(parser)
    parser.set_defaults(handler=inspect_command)


# --------------------------------------------------------------------------- commands


def corpus_command(args: argparse.Namespace) -> int:
    from lstmkit.data.gettext_catalogs import corpus_summary, gettext_pairs, write_pairs_tsv

    check_output_file(args.output, args.overwrite)
    with log_session():
        pairs = gettext_pairs(args.gettext, args.locale_dir, max_words=args.max_words)
        write_pairs_tsv(pairs, args.output, overwrite=args.overwrite)
    summary = corpus_summary(pairs)
    print(f"wrote {summary['pairs']:,} English -> {args.gettext} pairs "
          f"({summary['source_words']:,} English words) to {args.output}")
    return 0


def train_command(args: argparse.Namespace) -> int:
    from lstmkit.tasks.translate import TranslationConfig, Translator
    from lstmkit.train import TrainConfig, is_main_process

    with log_session(logging.WARNING if args.quiet else logging.INFO):
        defaults = TranslationConfig().train
        train = TrainConfig(**{**vars(defaults), **given(args, TRAIN_FIELDS),
                               "progress": not args.quiet})
        config = TranslationConfig(**given(args, _CONFIG_FIELDS), lstm=lstm_options(args),
                                   train=train)
        report = Translator(config).fit(
            _paths(args.data), args.run_dir, resume=args.resume, overwrite=args.overwrite,
            validation=_paths(args.validation_data), source_column=args.source_column,
            target_column=args.target_column)
    if is_main_process():
        print(report.summary())
        print(f"run written to {args.run_dir}")
    return 0


def _load(args: argparse.Namespace) -> tuple[Translator, list[Translator]]:
    """The model of --run-dir and those of --ensemble."""
    from lstmkit.tasks.translate import Translator

    return Translator.load(args.run_dir), [Translator.load(r) for r in args.ensemble or ()]


def translate_command(args: argparse.Namespace) -> int:
    from lstmkit.data.parallel_text import read_lines
    from lstmkit.tasks.translate.translator import STREAM_CHUNK

    check_outputs(args)
    output = None if args.output is None else check_output_file(args.output, args.overwrite)
    if args.text is not None:
        sentences = args.text
    elif args.input is not None:
        sentences = read_lines(args.input)
    else:
        sentences = (line.rstrip("\n") for line in sys.stdin)
    typing = args.text is None and args.input is None and sys.stdin.isatty()
    lines: list[str] = []
    with log_session():
        model, ensemble = _load(args)
        found = model.stream(sentences, beam_size=args.beam_size, n_best=args.n_best,
                             ensemble=ensemble, source_language=args.source_language,
                             target_language=args.target_language,
                             chunk_size=1 if typing else STREAM_CHUNK)
        for hypotheses in found:
            if args.n_best == 1:
                line = model.decode(hypotheses[0])
            else:
                line = "\t".join(f"{model.decode(h)}\t{h.score:.4f}" for h in hypotheses)
            if output is None:
                print(line, flush=True)  # each sentence as soon as it is done
            lines.append(line)
    if output is not None:
        write_output(output, "".join(line + "\n" for line in lines), args.overwrite)
        print(f"wrote {len(lines)} translations to {output}")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    check_outputs(args)
    if args.output is not None:
        check_output_file(args.output, args.overwrite)
    with log_session():
        model, ensemble = _load(args)
        evaluation = model.evaluate(
            _paths(args.data), part=args.part, beam_size=args.beam_size, ensemble=ensemble,
            source_column=args.source_column, target_column=args.target_column,
            limit=args.limit, source_language=args.source_language,
            target_language=args.target_language)
    print(evaluation.table())
    if args.output is not None:
        translations = evaluation.details["translations"]
        write_output(args.output, "".join(t + "\n" for t in translations), args.overwrite)
        print(f"wrote {len(translations)} translations to {args.output}")
    return 0


def inspect_command(args: argparse.Namespace) -> int:
    from lstmkit.io.rundir import open_run
    from lstmkit.report.attention import write_alignment
    from lstmkit.tasks.translate import Translator

    check_outputs(args)
    with log_session():
        model = Translator.load(args.run_dir)
        alignment = model.align(args.text, args.target)
        with open_run(args.output_dir, "translation-inspection", overwrite=args.overwrite,
                      resumable=False, option="--output-dir") as run:
            if run.writer:
                write_alignment(alignment, run.work)
    print(f"translation: {alignment.translation}")
    print(f"wrote attention.png and attention.html to {args.output_dir}")
    return 0


def _paths(paths: list[Path] | None) -> Path | list[Path] | None:
    """--data's one table as a path, two files as a list."""
    if paths is None:
        return None
    return paths[0] if len(paths) == 1 else paths
