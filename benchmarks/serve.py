"""Serving: lstmkit's server under load on loopback, beside a plain FastAPI endpoint.

Goals (issue 13), side by side in one run on this machine:

- streaming-session step over HTTP (a character language model, one character per
  push): p50 under 2 ms at 8 concurrent clients;
- forecast requests (the demo's airline forecaster, the whole history posted as CSV):
  at least 3x the throughput of a plain FastAPI endpoint that calls the same model's
  ``predict`` per request without batching, at 32 clients;
- ONNX Runtime on the exported forecaster at least as fast as lstmkit eager at batch 1.

Both servers run as their own processes with one torch thread (the CLI's default), one
uvicorn worker each, on 127.0.0.1. The load comes from ``wrk`` (Debian's package: a C
client; a Python client saturates first on this 2-core machine: an httpx client made
at most ~900 requests/s against an endpoint that answers ~4,000), closed loop: each
connection sends its next request when the answer arrives. Every level runs for
--seconds and stops by itself; wrk's latency percentiles are read from its report.

    .venv/bin/python benchmarks/serve.py               # about 3 minutes
    .venv/bin/python benchmarks/serve.py --seconds 3   # quicker, noisier

Writes results/serve.md and results/serve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
WORK = RESULTS / "serve-bench"
AIRLINE = ROOT / "src" / "lstmkit" / "datasets" / "airline_passengers.csv"
CLIENTS = (1, 8, 32)

PLAIN_SERVER = '''
"""The plain way to serve a model: one FastAPI endpoint calling predict per request."""
import io, os
import pandas as pd
import torch
from fastapi import FastAPI
from lstmkit.forecast import Forecaster

torch.set_num_threads(1)
forecaster = Forecaster.load(os.environ["PLAIN_RUN"])
app = FastAPI()

@app.post("/forecast")
def forecast(body: dict) -> dict:
    frame = forecaster.predict(pd.read_csv(io.StringIO(body["csv"])))
    return {"forecast": frame.to_dict(orient="records")}
'''

WRK_POST = '''
local bodies = {}
local paths = {}
function init(args)
  local file = io.open(args[1]); local lines = {}
  for line in file:lines() do lines[#lines + 1] = line end
  file:close()
  -- lines: path, body, path, body, ... (sessions: one path per session)
  for k = 1, #lines, 2 do paths[#paths + 1] = lines[k]; bodies[#bodies + 1] = lines[k + 1] end
  counter = math.random(#paths)
end
function request()
  counter = counter % #paths + 1
  return wrk.format("POST", paths[counter], {["Content-Type"] = "application/json"},
                    bodies[counter])
end
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_runs() -> dict[str, Path]:
    """The demo's forecaster and a character language model, trained once into WORK."""
    import torch

    from lstmkit.forecast import ForecastConfig, Forecaster
    from lstmkit.io.rundir import is_finished
    from lstmkit.lm import LanguageModel, LanguageModelConfig
    from lstmkit.train import TrainConfig

    torch.set_num_threads(1)
    runs = {"air": WORK / "air", "chars": WORK / "chars"}
    if not is_finished(runs["air"]):
        config = ForecastConfig(target="Passengers", horizon=24, window=36, ensemble=3,
                                progress=False)
        Forecaster(config).fit(AIRLINE, runs["air"], overwrite=True)
    if not is_finished(runs["chars"]):
        # the README's tour model's size; a short training: speed does not depend on it
        config = LanguageModelConfig(embedding_dim=128, hidden_size=128, pattern="json/*.py",
                                     train=TrainConfig(epochs=1, max_steps=30, shuffle=False,
                                                     progress=False))
        LanguageModel(config).fit(run_dir=runs["chars"], overwrite=True,
                                  cache_dir=WORK / "cache")
    return runs


class Server:
    """A server process on a free loopback port, stopped on exit."""

    def __init__(self, command: list[str], environment: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([*command, "--port", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        env={**os.environ, **(environment or {})})

    def __enter__(self) -> Server:
        for _ in range(600):
            if self.process.poll() is not None:
                raise SystemExit(f"server failed: {self.process.stderr.read().decode()}")
            try:
                urllib.request.urlopen(self.url + "/docs", timeout=1)
                return self
            except OSError:
                time.sleep(0.1)
        raise SystemExit("server did not start")

    def __exit__(self, *exc: Any) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(self.url + path, json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        return json.load(urllib.request.urlopen(request, timeout=60))


def load(server: Server, requests: list[tuple[str, dict]], clients: int, seconds: float
         ) -> dict[str, float]:
    """wrk at ``clients`` connections for ``seconds``: requests/s, p50 and p99 in ms."""
    with tempfile.TemporaryDirectory() as folder:
        script, bodies = Path(folder) / "post.lua", Path(folder) / "bodies.txt"
        script.write_text(WRK_POST)
        bodies.write_text("".join(f"{path}\n{json.dumps(body)}\n" for path, body in requests))
        report = subprocess.run(
            ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--latency", "-s", str(script),
             server.url, "--", str(bodies)], capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    if errors or "Latency Distribution" not in report:
        raise SystemExit(f"requests failed:\n{report}")
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1)),
            "p50_ms": _milliseconds(re.search(r"^\s+50%\s+(\S+)", report, re.M).group(1)),
            "p99_ms": _milliseconds(re.search(r"^\s+99%\s+(\S+)", report, re.M).group(1))}


def _milliseconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def onnx_against_eager(run: Path) -> dict[str, float]:
    """Median time of one forecast at batch 1: the exported graph in ONNX Runtime and
    lstmkit's ensemble in eager torch (both one thread)."""
    import numpy as np
    import onnxruntime
    import torch

    from lstmkit.forecast import Forecaster
    from lstmkit.serve.export import export_run

    torch.set_num_threads(1)
    out = WORK / "air-onnx"
    export_run(run, out, overwrite=True)
    forecaster = Forecaster.load(run)
    inputs = forecaster.prediction_input(AIRLINE)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    graph = sorted(out.glob("*.onnx"))[0]
    session = onnxruntime.InferenceSession(str(graph), options)
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(),
                                                (inputs.x, inputs.future, inputs.series_id))}

    def median_ms(call, repeats: int = 300) -> float:
        for _ in range(20):
            call()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return float(np.median(times) * 1e3)

    eager = median_ms(lambda: forecaster.network_quantiles(inputs.x, inputs.future,
                                                           inputs.series_id))
    onnx = median_ms(lambda: session.run(None, feeds))
    return {"eager_ms": eager, "onnx_runtime_ms": onnx, "ratio": onnx / eager}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per load level")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark needs wrk: apt-get install wrk")
    WORK.mkdir(parents=True, exist_ok=True)
    runs = prepare_runs()
    csv = AIRLINE.read_text()
    results: dict[str, Any] = {"seconds_per_level": args.seconds, "forecast": {},
                               "sessions": {}}
    plain_script = WORK / "plain_server.py"
    plain_script.write_text(PLAIN_SERVER)
    lstmkit = [sys.executable, "-m", "lstmkit", "serve", f"air={runs['air']}",
               f"chars={runs['chars']}", "--max-sessions", "10000"]
    with Server(lstmkit) as ours:
        for clients in CLIENTS:
            results["forecast"].setdefault(str(clients), {})["lstmkit"] = load(
                ours, [("/v1/models/air/forecast", {"csv": csv})], clients, args.seconds)
        # one session per connection's worth of requests, pushed one character at a time
        sessions = [ours.post("/v1/models/chars/sessions", {"text": "def "})["session"]
                    for _ in range(4 * max(CLIENTS))]
        for clients in CLIENTS:
            results["sessions"][str(clients)] = load(
                ours, [(f"/v1/sessions/{s}", {"text": "x"}) for s in sessions], clients,
                args.seconds)
    plain = [sys.executable, "-m", "uvicorn", "--app-dir", str(WORK), "plain_server:app",
             "--log-level", "warning", "--no-access-log"]
    with Server(plain, {"PLAIN_RUN": str(runs["air"])}) as baseline:
        for clients in CLIENTS:
            results["forecast"][str(clients)]["plain"] = load(
                baseline, [("/forecast", {"csv": csv})], clients, args.seconds)
    results["onnx"] = onnx_against_eager(runs["air"])
    write_results(results)


def write_results(results: dict[str, Any]) -> None:
    lines = ["# Serving under load (benchmarks/serve.py)", "",
             f"wrk, closed loop, {results['seconds_per_level']:g} s per level, loopback, "
             "both servers one uvicorn worker and one torch thread.", "",
             "## Forecast requests (airline history as CSV, 3-member ensemble, h=24)", "",
             "| clients | lstmkit req/s | p50 ms | p99 ms | plain FastAPI req/s | p50 ms | "
             "p99 ms | throughput ratio |", "|---|---|---|---|---|---|---|---|"]
    for clients, pair in results["forecast"].items():
        ours, plain = pair["lstmkit"], pair["plain"]
        lines.append(f"| {clients} | {ours['requests_per_s']:.0f} | {ours['p50_ms']:.2f} | "
                     f"{ours['p99_ms']:.2f} | {plain['requests_per_s']:.0f} | "
                     f"{plain['p50_ms']:.2f} | {plain['p99_ms']:.2f} | "
                     f"{ours['requests_per_s'] / plain['requests_per_s']:.2f}x |")
    lines += ["", "## Streaming-session steps (char LM, 2 x 128 units, one character per "
              "push)", "", "| clients | steps/s | p50 ms | p99 ms |", "|---|---|---|---|"]
    for clients, level in results["sessions"].items():
        lines.append(f"| {clients} | {level['requests_per_s']:.0f} | {level['p50_ms']:.2f} | "
                     f"{level['p99_ms']:.2f} |")
    onnx = results["onnx"]
    lines += ["", "## Batch 1, one thread: the exported forecaster in ONNX Runtime against "
              "lstmkit eager", "",
              f"lstmkit eager {onnx['eager_ms']:.3f} ms, ONNX Runtime "
              f"{onnx['onnx_runtime_ms']:.3f} ms (ratio {onnx['ratio']:.2f})", ""]
    (RESULTS / "serve.md").write_text("\n".join(lines))
    (RESULTS / "serve.json").write_text(json.dumps(results, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
