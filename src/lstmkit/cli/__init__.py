"""The command line: ``lstmkit COMMAND ...``, a thin shell over the Python API.

Each command group lives in its own module here and registers itself through
``add_parser(subparsers)``; its handler receives the parsed arguments. User
mistakes (LstmkitError, bad arguments) print one message and exit with status 2,
without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lstmkit.errors import LstmkitError, RunInterrupted

# command group -> module under lstmkit.cli that defines add_parser(subparsers)
COMMAND_MODULES = ("demo", "forecast", "experiment", "classify", "lm", "translate", "speech",
                   "finance", "tune", "serve", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmkit",
        description="LSTM networks from their gate equations, and the jobs they are used for.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"lstmkit.cli.{name}")
        except ModuleNotFoundError as missing:
            if missing.name != f"lstmkit.cli.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    threads = getattr(args, "threads", None)
    try:
        if threads is not None:
            if threads < 1:
                raise LstmkitError(f"--threads must be at least 1, got {threads}")
            import torch

            torch.set_num_threads(threads)
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("lstmkit: interrupted", file=sys.stderr)
        return 130
    except RunInterrupted as interrupted:
        print(f"lstmkit: {interrupted}", file=sys.stderr)
        return 130
    except LstmkitError as error:
        print(f"lstmkit: error: {error}", file=sys.stderr)
        return 2
