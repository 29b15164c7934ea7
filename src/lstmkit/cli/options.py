"""Options several commands share: the LSTM's variants, and safe output files."""

from __future__ import annotations

import argparse
from pathlib import Path

from lstmkit.errors import LstmkitError
from lstmkit.rundir import atomic_write_text


def add_threads_option(parser: argparse.ArgumentParser, default: int | None = None) -> None:
    """--threads: torch's CPU threads for the command (main() applies it)."""
    shown = "torch's choice" if default is None else str(default)
    parser.add_argument("--threads", type=int, default=default,
                        help=f"torch CPU threads (default: {shown}; small networks and busy "
                             "machines run faster on 1)")


def unit_list(text: str) -> list[int]:
    """argparse type for --units 3,17: cell units to picture."""
    try:
        return [int(unit) for unit in text.split(",") if unit.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"units must be integers separated by commas, "
                                         f"got {text!r}") from None


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


def write_output(path: str | Path, text: str, overwrite: bool) -> None:
    """Write a result file atomically; an existing file is replaced only with --overwrite."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise LstmkitError(f"{path} already exists; pass --overwrite to replace it or choose "
                           "another file")
    atomic_write_text(path, text)
