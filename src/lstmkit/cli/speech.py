"""``lstmkit speech corpus | train | transcribe | evaluate | stream``: speech recognition.

    lstmkit speech corpus --output-dir corpus --utterances 600      # espeak-ng voices
    lstmkit speech train --data corpus/train.csv --validation-data corpus/validation.csv \\
        --run-dir runs/asr --time-budget 600
    lstmkit speech transcribe --run-dir runs/asr hello.wav more.flac
    lstmkit speech evaluate --run-dir runs/asr --data corpus/test.csv
    lstmkit speech stream --run-dir runs/asr-streaming --input hello.wav
    arecord -f S16_LE -r 16000 -c 1 -t raw | lstmkit speech stream --run-dir runs/asr-streaming

Recordings are a manifest (CSV/TSV with audio and transcript columns) or a folder of
audio files with same-named .txt transcripts. Every option maps onto a field of
SpeechConfig or TrainConfig; one left out keeps its default.
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
    from lstmkit.tasks.speech import Recogniser
    from lstmkit.tasks.speech.decoding import LanguageScorer

_CONFIG_FIELDS = (
    "alphabet", "stack", "hidden_size", "num_layers", "dropout", "frequency_masks",
    "frequency_mask_width", "time_masks", "time_mask_fraction", "speeds", "noise_snr_db",
    "validation_fraction", "test_fraction", "validation_utterances", "beam_size",
)
_FEATURE_FIELDS = ("n_mels",)
CHUNK_MS = 100
"""Audio read per step of ``speech stream`` by default (milliseconds)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "speech", help="speech recognition: LSTM-CTC acoustic models, offline and streaming",
        description="Synthesise a corpus, train an LSTM acoustic model with CTC, transcribe "
                    "files or a live stream, score WER and CER.")
    commands = parser.add_subparsers(dest="speech_command", metavar="COMMAND", required=True)
    _add_corpus(commands)
    _add_train(commands)
    _add_transcribe(commands)
    _add_evaluate(commands)
    _add_stream(commands)


def _add_corpus(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "corpus", help="a multi-speaker English corpus synthesised with espeak-ng",
        description="Speak English sentences found on this machine (Debian package "
                    "descriptions, Python's documentation) or given in a file with many "
                    "espeak-ng voices, speeds and pitches, some with noise; split by "
                    "sentence and by voice into train, validation and test manifests.")
    parser.add_argument("--output-dir", type=Path, required=True, help="the corpus folder")
    parser.add_argument("--utterances", type=int, default=600, help="(default 600)")
    parser.add_argument("--sentences", type=Path,
                        help="a UTF-8 text file of sentences to speak (default: found here)")
    parser.add_argument("--noise-fraction", type=float, default=0.3,
                        help="share of recordings with white noise added (default 0.3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="espeak-ng processes at once")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --output-dir (once the new one is complete)")
    parser.set_defaults(handler=corpus_command)


def _add_train(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="train a recogniser on transcribed audio")
    parser.add_argument("--data", type=Path, required=True, metavar="PATH",
                        help="a manifest (CSV/TSV: audio, transcript) or a folder of audio "
                             "files with .txt transcripts")
    parser.add_argument("--validation-data", type=Path, metavar="PATH",
                        help="validation recordings (default: split --data by sentence)")
    add_run_dir(parser, writes=True)
    parser.add_argument("--cache-dir", type=Path,
                        help="where features are kept between runs (default $LSTMKIT_CACHE "
                             "or ~/.cache/lstmkit)")
    data = parser.add_argument_group("data")
    data.add_argument("--alphabet", help="the characters transcripts use (default: space, "
                                         "apostrophe, a-z)")
    data.add_argument("--validation-fraction", type=float, help="(default 0.1)")
    data.add_argument("--test-fraction", type=float, help="(default 0.1)")
    data.add_argument("--n-mels", type=int, help="log-mel bins (default 80)")
    model = parser.add_argument_group("model")
    model.add_argument("--streaming", action="store_true",
                       help="a forward-only LSTM that can transcribe as audio arrives "
                            "(default: bidirectional, whole recordings)")
    model.add_argument("--stack", type=int, help="10 ms frames per LSTM step (default 4)")
    model.add_argument("--hidden-size", type=int, help="units per direction (default 256)")
    model.add_argument("--num-layers", type=int, help="(default 3)")
    model.add_argument("--dropout", type=float, help="(default 0.1)")
    augment = parser.add_argument_group("augmentation")
    augment.add_argument("--frequency-masks", type=int, help="SpecAugment (default 1)")
    augment.add_argument("--frequency-mask-width", type=int, help="bins (default 15)")
    augment.add_argument("--time-masks", type=int, help="SpecAugment (default 1)")
    augment.add_argument("--time-mask-fraction", type=float,
                         help="longest time mask, share of the recording (default 0.05)")
    augment.add_argument("--speeds", type=float, nargs="+", metavar="FACTOR",
                         help="add copies played this many times faster, e.g. 0.9 1.1")
    augment.add_argument("--noise-snr", dest="noise_snr_db", type=float, metavar="DB",
                         help="add a copy with white noise at this signal-to-noise ratio")
    parser.add_argument("--beam-size", type=int, help="the model's default beam (default 8)")
    train = add_training_options(
        parser, "feature frames (10 ms) per batch", "validation character error rate",
        {"epochs": 30, "batch_size": 4000, "lr": 0.003, "schedule": "cosine",
         "warmup_steps": 100, "grad_clip": 5, "patience": 6, "weight_decay": 0})
    train.add_argument("--validation-utterances", type=int,
                       help="validation recordings transcribed after each epoch (default 300)")
    add_lstm_options(parser)
    add_threads_option(parser)
    parser.set_defaults(handler=train_command)


def _add_decoding_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--beam-size", type=int,
                        help="prefix beam search width, 1 for greedy (default: the model's)")
    parser.add_argument("--lm", type=Path, metavar="RUN_DIR",
                        help="a character language model (lstmkit lm train --tokenizer char) "
                             "fused into the beam")
    parser.add_argument("--lm-weight", type=float, default=0.5,
                        help="the language model's weight in the beam (default 0.5)")
    add_threads_option(parser)


def _add_transcribe(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("transcribe", help="transcribe audio files")
    add_run_dir(parser, writes=False)
    parser.add_argument("audio", type=Path, nargs="+", help="WAV, FLAC or OGG files")
    parser.add_argument("--timestamps", action="store_true",
                        help="also print each word with its start and end (seconds)")
    parser.add_argument("--output", type=Path,
                        help="write the transcripts here, tab-separated after each file's "
                             "name (default: standard output)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    _add_decoding_options(parser)
    parser.set_defaults(handler=transcribe_command)


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="WER and CER beside greedy decoding")
    add_run_dir(parser, writes=False)
    parser.add_argument("--data", type=Path, metavar="PATH",
                        help="recordings to score (default: the held-out part of the "
                             "training data)")
    parser.add_argument("--part", choices=("validation", "test"), default="test",
                        help="held-out part of the training data (default test)")
    parser.add_argument("--limit", type=int, help="the first N recordings only")
    parser.add_argument("--cache-dir", type=Path, help="where features are kept")
    parser.add_argument("--output", type=Path, help="also write the transcripts here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    _add_decoding_options(parser)
    parser.set_defaults(handler=evaluate_command)


def _add_stream(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "stream", help="transcribe audio as it arrives, printing the partial transcript",
        description="Read audio chunk by chunk from a file or standard input (raw 16-bit "
                    "little-endian mono PCM at the model's sample rate, e.g. from `arecord "
                    "-f S16_LE -r 16000 -c 1 -t raw`), carry the LSTM state between chunks "
                    "and print the transcript whenever it changes; at the end, the final "
                    "transcript and the compute per chunk and real-time factor.")
    add_run_dir(parser, writes=False)
    parser.add_argument("--input", type=Path,
                        help="an audio file (default: raw PCM on standard input)")
    parser.add_argument("--chunk-ms", type=int, default=CHUNK_MS,
                        help=f"audio per chunk, milliseconds (default {CHUNK_MS})")
    _add_decoding_options(parser)
    parser.set_defaults(handler=stream_command)


# --------------------------------------------------------------------------- commands


def corpus_command(args: argparse.Namespace) -> int:
    from lstmkit.data.speech_corpus import find_sentences, synthesise_corpus

    with log_session():
        sentences = None if args.sentences is None else find_sentences(args.sentences)
        summary = synthesise_corpus(args.output_dir, utterances=args.utterances,
                                    seed=args.seed, sentences=sentences,
                                    noise_fraction=args.noise_fraction, jobs=args.jobs,
                                    overwrite=args.overwrite)
    for part, manifest in summary.manifests.items():
        print(f"{part}: {summary.utterances[part]:,} recordings of "
              f"{summary.sentences[part]:,} sentences by {summary.speakers[part]} voices, "
              f"{summary.seconds[part] / 60:.1f} min -> {manifest}")
    print(f"synthesised in {summary.synthesis_seconds:.0f} s")
    return 0


def train_command(args: argparse.Namespace) -> int:
    from lstmkit.tasks.speech import Recogniser, SpeechConfig
    from lstmkit.train import TrainConfig, is_main_process

    with log_session(logging.WARNING if args.quiet else logging.INFO):
        defaults = SpeechConfig()
        train = TrainConfig(**{**vars(defaults.train), **given(args, TRAIN_FIELDS),
                               "progress": not args.quiet})
        config = SpeechConfig(**given(args, _CONFIG_FIELDS),
                              features={**defaults.features, **given(args, _FEATURE_FIELDS)},
                              bidirectional=not args.streaming, lstm=lstm_options(args),
                              train=train)
        report = Recogniser(config).fit(args.data, args.run_dir, resume=args.resume,
                                        overwrite=args.overwrite,
                                        validation=args.validation_data,
                                        cache_dir=args.cache_dir)
    if is_main_process():
        print(report.summary())
        print(f"run written to {args.run_dir}")
    return 0


def _load(args: argparse.Namespace) -> tuple[Recogniser, LanguageScorer | None]:
    """The model of --run-dir, and the language model of --lm over its alphabet."""
    from lstmkit.tasks.speech import CharacterLanguageModel, Recogniser

    model = Recogniser.load(args.run_dir)
    scorer = (None if args.lm is None else
              CharacterLanguageModel.load(args.lm, model.config.alphabet))
    return model, scorer


def transcribe_command(args: argparse.Namespace) -> int:
    check_outputs(args)
    output = None if args.output is None else check_output_file(args.output, args.overwrite)
    lines = []
    with log_session():
        model, scorer = _load(args)
        for path in args.audio:
            transcript = model.transcribe(path, beam_size=args.beam_size,
                                          language_model=scorer, lm_weight=args.lm_weight)
            line = f"{path}\t{transcript.text}"
            if args.timestamps:
                line += "\t" + " ".join(f"{w.text}[{w.start:.2f}-{w.end:.2f}]"
                                        for w in transcript.words)
            if output is None:
                print(line, flush=True)
            lines.append(line)
    if output is not None:
        write_output(output, "".join(line + "\n" for line in lines), args.overwrite)
        print(f"wrote {len(lines)} transcripts to {output}")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    check_outputs(args)
    output = None if args.output is None else check_output_file(args.output, args.overwrite)
    with log_session():
        model, scorer = _load(args)
        evaluation = model.evaluate(args.data, part=args.part, beam_size=args.beam_size,
                                    language_model=scorer, lm_weight=args.lm_weight,
                                    limit=args.limit, cache_dir=args.cache_dir)
    print(evaluation.table())
    if output is not None:
        transcripts = evaluation.details["transcripts"]
        write_output(output, "".join(t + "\n" for t in transcripts), args.overwrite)
        print(f"wrote {len(transcripts)} transcripts to {output}")
    return 0


def stream_command(args: argparse.Namespace) -> int:
    from lstmkit.tasks.speech.streaming import audio_chunks, stream_report

    with log_session():
        model, scorer = _load(args)
        stream = model.stream()
        chunks = audio_chunks(args.input, sys.stdin.buffer,
                              model.config.feature_config.sample_rate, args.chunk_ms)
        for text in stream.partials(chunks):
            print(f"[{stream.audio_seconds:6.2f} s] {text}", flush=True)
        final = stream.finish(args.beam_size, scorer, args.lm_weight)
    print(final.text)
    print(stream_report(stream, final), file=sys.stderr)
    return 0
