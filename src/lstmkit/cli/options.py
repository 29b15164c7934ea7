"""The CLI's one vocabulary: options every command group spells the same way.

    --run-dir DIR     the run directory a command writes (train) or reads (the others)
    --data PATH       the data: a table, or text files and folders
    --hidden-size N, --num-layers N                 model size
    --steps N, --epochs N, --time-budget S          training length
    --seed N, --threads N, --quiet
    --overwrite, --resume                           replace a run / continue a killed one
    --output FILE, --output-dir DIR                 results outside any run directory

Also the LSTM's variants, and safe output files.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lstmkit.errors import LstmkitError
from lstmkit.io.files import atomic_write_text


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """--threads: torch's CPU threads for the command (main() applies it)."""
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: small networks and busy machines "
                             "run fastest on one; raise it for large models)")


def add_run_dir(parser: argparse.ArgumentParser, writes: bool) -> None:
    """--run-dir: the run directory; with ``writes`` also --overwrite and --resume."""
    if writes:
        parser.add_argument("--run-dir", type=Path, required=True,
                            help="the run directory to write (visible while it trains)")
        parser.add_argument("--overwrite", action="store_true",
                            help="replace a finished run (the old one stays until the new one "
                                 "has finished)")
        parser.add_argument("--resume", action="store_true",
                            help="continue a run that was interrupted (killed or Ctrl-C)")
        parser.add_argument("--quiet", action="store_true", help="no progress output")
    else:
        parser.add_argument("--run-dir", type=Path, required=True,
                            help="run directory of a trained model")


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse --output / --output-dir inside the model's --run-dir."""
    from lstmkit.io.rundir import check_outside_runs

    runs = [args.run_dir] if getattr(args, "run_dir", None) is not None else []
    for option in ("output", "output_dir"):
        value = getattr(args, option, None)
        if value is not None:
            check_outside_runs(value, "--" + option.replace("_", "-"), runs)


def unit_list(text: str) -> list[int]:
    """argparse type for --units 3,17: cell units to picture."""
    try:
        return [int(unit) for unit in text.split(",") if unit.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"units must be integers separated by commas, "
                                         f"got {text!r}") from None


TRAIN_FIELDS = ("epochs", "batch_size", "lr", "weight_decay", "schedule", "warmup_steps",
                "grad_clip", "patience", "seed", "max_steps", "time_budget_s", "device")
"""The option destinations of add_training_options: TrainConfig's fields."""


def add_training_options(parser: argparse.ArgumentParser, batch: str, criterion: str,
                         defaults: dict[str, object]) -> argparse._ArgumentGroup:
    """The training loop's options (TrainConfig), spelt alike for every task: ``batch``
    says what --batch-size counts, ``criterion`` what early stopping watches, ``defaults``
    the task's own defaults for the help. Returns the group for the task's further
    training options."""

    def default(name: str) -> str:
        return f" (default {defaults[name]})" if name in defaults else ""

    group = parser.add_argument_group("training")
    group.add_argument("--epochs", type=int, help="passes over the training data" +
                       default("epochs"))
    group.add_argument("--batch-size", type=int, help=batch + default("batch_size"))
    group.add_argument("--lr", type=float, help="learning rate" + default("lr"))
    group.add_argument("--weight-decay", type=float, help="AdamW's" + default("weight_decay"))
    group.add_argument("--schedule", help="constant, cosine, linear, onecycle, plateau" +
                       default("schedule"))
    group.add_argument("--warmup-steps", type=int, help="linear warmup" + default("warmup_steps"))
    group.add_argument("--grad-clip", type=float, help="largest gradient norm" +
                       default("grad_clip"))
    group.add_argument("--patience", type=int, help="early stopping after this many epochs "
                       f"without a better {criterion}" + default("patience"))
    group.add_argument("--seed", type=int)
    group.add_argument("--steps", dest="max_steps", type=int,
                       help="stop after this many optimizer steps")
    group.add_argument("--time-budget", dest="time_budget_s", type=float, metavar="S",
                       help="stop training after S seconds (the whole command's)")
    group.add_argument("--device", help="cpu or cuda")
    return group


def add_lstm_options(parser: argparse.ArgumentParser) -> None:
    """The variants of lstmkit.nn.LSTM, as options (see its docstring)."""
    group = parser.add_argument_group("LSTM variants")
    group.add_argument("--peephole", action="store_true", help="peephole connections")
    group.add_argument("--layer-norm", action="store_true", help="LayerNorm LSTM")
    group.add_argument("--zoneout", type=float, nargs="+", metavar="P",
                       help="zoneout probability p, or p_c p_h")
    group.add_argument("--recurrent-dropout", type=float, default=0.0, metavar="P")
    group.add_argument("--weight-drop", type=float, default=0.0, metavar="P",
                       help="DropConnect on the hidden-to-hidden weights")
    group.add_argument("--forget-bias", type=float, help="initial forget-gate bias (default 1)")
    group.add_argument("--backend", default="auto",
                       choices=["auto", "reference", "fused", "native"])


def lstm_options(args: argparse.Namespace) -> dict:
    """The keyword arguments for lstmkit.nn.LSTM that differ from its defaults."""
    options: dict = {}
    if args.peephole:
        options["peephole"] = True
    if args.layer_norm:
        options["layer_norm"] = True
    if args.zoneout:
        if len(args.zoneout) > 2:
            raise LstmkitError("--zoneout takes one probability, or two (p_c p_h)")
        options["zoneout"] = args.zoneout[0] if len(args.zoneout) == 1 else list(args.zoneout)
    if args.recurrent_dropout:
        options["recurrent_dropout"] = args.recurrent_dropout
    if args.weight_drop:
        options["weight_drop"] = args.weight_drop
    if args.forget_bias is not None:
        options["forget_bias"] = args.forget_bias
    if args.backend != "auto":
        options["backend"] = args.backend
    for name, value in options.items():
        probabilities = value if isinstance(value, list) else [value]
        if name in ("zoneout", "recurrent_dropout", "weight_drop") and not all(
            0 <= p < 1 for p in probabilities
        ):
            raise LstmkitError(f"--{name.replace('_', '-')} must lie in [0, 1), got {value}")
    return options


def check_output_file(path: str | Path, overwrite: bool) -> Path:
    """Refuse an --output that cannot be written, before any work is done."""
    from lstmkit.io.rundir import check_writable

    path = check_writable(path, "--output")
    if path.is_dir():
        raise LstmkitError(f"--output {path} is a folder; name a file")
    if path.exists() and not overwrite:
        raise LstmkitError(f"{path} already exists; pass --overwrite to replace it or choose "
                           "another file")
    return path


def write_output(path: str | Path, text: str, overwrite: bool) -> None:
    """Write a result file atomically; an existing file is replaced only with --overwrite."""
    path = check_output_file(path, overwrite)
    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise LstmkitError(f"cannot write {path}: {error.strerror}; choose another "
                           "--output") from None


def given(args: argparse.Namespace, names: dict[str, str] | tuple[str, ...]) -> dict[str, Any]:
    """The options the user gave, as config fields: ``names`` are option destinations
    that equal their field's name, or a map destination -> field. Options left out keep
    the config's defaults."""
    pairs = names.items() if isinstance(names, dict) else ((n, n) for n in names)
    return {field: getattr(args, dest) for dest, field in pairs
            if getattr(args, dest, None) is not None}


class _LogFormatter(logging.Formatter):
    """``lstmkit: message`` for progress, ``lstmkit: warning: message`` above it."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        return f"lstmkit: {level}{record.getMessage()}"


@contextlib.contextmanager
def log_session(level: int = logging.WARNING) -> Iterator[None]:
    """lstmkit's log lines on stderr for the length of one command."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter())
    package = logging.getLogger("lstmkit")
    previous = package.level
    package.addHandler(handler)
    package.setLevel(level)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(previous)
