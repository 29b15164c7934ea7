"""``lstmkit serve RUN [RUN ...]``: answer HTTP requests with trained models.

    lstmkit serve runs/demo                         # http://127.0.0.1:8000/ (the page)
    lstmkit serve air=runs/demo chars=runs/lm --port 8080 --token-file secret.txt

Each RUN is a finished run directory, served under its folder's name or NAME=RUN. The
server binds to 127.0.0.1 unless --host says otherwise; with --token-file (or the
LSTMKIT_TOKEN environment variable) every request but health needs the token.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lstmkit.cli.options import add_threads_option
from lstmkit.errors import LstmkitError

TOKEN_VARIABLE = "LSTMKIT_TOKEN"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from lstmkit.serve.limits import Limits

    parser = subparsers.add_parser(
        "serve", help="serve trained runs over HTTP: forecasts, classes, generated text, "
                      "translations, streaming sessions, the gate explorer page",
        description="Serve finished run directories over HTTP (FastAPI on uvicorn). Open "
                    "http://HOST:PORT/ for the gate explorer and /docs for the API.")
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run directory, or NAME=RUN to serve it under another name")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--token-file", type=Path,
                        help=f"file holding the bearer token clients must send (or set "
                             f"{TOKEN_VARIABLE})")
    defaults = Limits()
    for name, value in vars(defaults).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value,
                            help=f"limit (default {value:g})")
    add_threads_option(parser)
    parser.set_defaults(handler=serve_command)


def model_runs(specs: list[str]) -> dict[str, Path]:
    """NAME=RUN or RUN (named after its folder) -> {name: run directory}."""
    runs: dict[str, Path] = {}
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        run = Path(path)
        name = name or run.resolve().name
        if name in runs:
            raise LstmkitError(f"two runs are named {name!r}; name them apart with NAME=RUN")
        runs[name] = run
    return runs


def read_token(token_file: Path | None) -> str | None:
    if token_file is None:
        return os.environ.get(TOKEN_VARIABLE) or None
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise LstmkitError(f"--token-file {token_file} cannot be read ({error.strerror})") \
            from None
    if not token:
        raise LstmkitError(f"--token-file {token_file} is empty; put the token in it")
    return token


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from lstmkit.serve.app import create_app
    from lstmkit.serve.limits import Limits
    from lstmkit.serve.served import load_served

    limits = Limits(**{name: getattr(args, name) for name in vars(Limits())}).validate()
    token = read_token(args.token_file)
    models = [load_served(name, run, limits) for name, run in model_runs(args.runs).items()]
    app = create_app(models, limits, token)
    for model in models:
        print(f"serving {model.name} ({model.task}, {model.run_dir}): "
              f"{', '.join(model.actions)}")
    print(f"gate explorer: http://{args.host}:{args.port}/   API: "
          f"http://{args.host}:{args.port}/docs", flush=True)
    # no proxy-header rewriting, Server or Date header: nothing here reads them, and each
    # costs time on every streaming step
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                proxy_headers=False, server_header=False, date_header=False)
    return 0
