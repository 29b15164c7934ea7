"""Tuning: lstmkit's Optuna search beside neuralforecast's default LSTM and its AutoLSTM.

Goals (issue 15), on airline passengers (monthly, h = 24, the last 24 months held out as
in benchmarks/forecast_vs_peers.py; every tool tunes or validates on the months before):

- tuned lstmkit: test MASE at or below neuralforecast's default LSTM, in at most a fifth
  of its time;
- against neuralforecast's AutoLSTM (Optuna backend, its default search space with
  inputs capped at 4 horizons: its larger ones run for most of an hour on this series)
  with the same number of trials: a lower MASE, or the same in at most half the time
  (AutoLSTM also stops at --peer-search-time seconds, default 15 minutes);
- two lstmkit workers on one SQLite study finish the same number of trials in about half
  the wall time of one worker on this 2-core machine (trials of equal cost: 1000 steps,
  one model each, the other options searched).

Every lstmkit study runs as the CLI does (``lstmkit tune forecast``, one thread per
worker, the default search space); three search seeds. The peers run in their own
virtualenv (results/tune-peers-venv: neuralforecast and optuna with torch 2.13.0, made on
the first run), one after the other, one thread.

    .venv/bin/python benchmarks/tune.py                 # 10 trials each (about 25 minutes)
    .venv/bin/python benchmarks/tune.py --trials 4 --no-peers

Writes results/tune.md and results/tune.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import venvs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
AIRLINE = ROOT / "src/lstmkit/datasets/airline_passengers.csv"
LSTMKIT = [sys.executable, "-m", "lstmkit"]
TASK = ["--data", str(AIRLINE), "--target", "Passengers", "--horizon", "24", "--holdout",
        "24", "--quiet", "--threads", "1"]
PEERS_VENV = RESULTS / "tune-peers-venv"


def study(folder: Path, trials: int, seed: int, workers: int = 1, *options: str
          ) -> dict[str, Any]:
    """A CLI study with ``workers`` processes at once: wall time, trials, best's scores."""
    command = [*LSTMKIT, "tune", "forecast", *TASK, "--study-dir", str(folder), "--trials",
               str(trials), "--search-seed", str(seed), "--seed", str(seed), *options]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True) for _ in range(workers)]
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            raise RuntimeError(f"lstmkit tune failed: {err[-2000:]}")
    seconds = time.perf_counter() - started
    summary = json.loads((folder / "study.json").read_text())
    metrics = json.loads((folder / "best" / "metrics.json").read_text())
    return {"seconds": seconds, "trials": sum(summary["states"].values()),
            "validation_mase": summary["best_value"], "untuned_validation_mase":
            summary["untuned_value"], "test_mase": metrics["rows"]["model"]["MASE"],
            "best_options": summary["best_options"]}


def untuned(seed: int) -> dict[str, Any]:
    """lstmkit's default forecaster, trained and scored the same way (one model)."""
    code = ("import json, time, torch; torch.set_num_threads(1)\n"
            "from lstmkit.forecast import ForecastConfig, Forecaster\n"
            "t = time.perf_counter()\n"
            f"m = Forecaster(ForecastConfig(target='Passengers', horizon=24, seed={seed}, "
            "progress=False)).fit(" + repr(str(AIRLINE)) + ", holdout=24, report=False)\n"
            "print(json.dumps({'test_mase': m.scores.model['MASE'], "
            "'seconds': time.perf_counter() - t}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def peers(trials: int, search_time: float) -> dict[str, Any]:
    python = venvs.venv_python(PEERS_VENV)
    if not venvs.ready(python, "import neuralforecast, optuna"):
        with venvs.pip_in(PEERS_VENV, RESULTS / "tune-peers-venv.log") as pip:
            pip("install", "-c", str(pip.constraints), "neuralforecast", "optuna")
    log = RESULTS / "tune-peers.log"
    # in a folder of its own: Lightning writes lightning_logs/ where it runs
    with tempfile.TemporaryDirectory() as folder, open(log, "w") as output_log:
        output = Path(folder) / "peers.json"
        subprocess.run([str(python), str(Path(__file__).parent / "peers/run_autolstm.py"),
                        "--data", str(AIRLINE), "--time", "Date", "--target", "Passengers",
                        "--horizon", "24", "--trials", str(trials), "--search-time",
                        str(search_time), "--output", str(output)],
                       check=True, cwd=folder, stdout=output_log, stderr=subprocess.STDOUT)
        return json.loads(output.read_text())


def markdown(results: dict[str, Any], trials: int) -> str:
    lines = [f"Airline passengers, h = 24, the last 24 months held out; {trials} trials; one "
             "thread per process", "",
             "| | test MASE | seconds |", "|---|---|---|"]
    for row in results["lstmkit_studies"]:
        lines.append(f"| lstmkit tuned (search seed {row['seed']}; validation MASE "
                     f"{row['validation_mase']:.3f}) | {row['test_mase']:.3f} | "
                     f"{row['seconds']:.0f} |")
    mean = results["lstmkit_mean"]
    lines.append(f"| **lstmkit tuned, mean of seeds** | **{mean['test_mase']:.3f}** | "
                 f"**{mean['seconds']:.0f}** |")
    for row in results["untuned"]:
        lines.append(f"| lstmkit untuned default (seed {row['seed']}) | {row['test_mase']:.3f} "
                     f"| {row['seconds']:.1f} |")
    for name, row in results.get("peers", {}).items():
        done = "" if row["trials"] is None else f" ({row['trials']} trials finished)"
        lines.append(f"| {name}{done} | {row['test_mase']:.3f} | {row['seconds']:.0f} |")
    workers = results["workers"]
    lines += ["", f"Workers: {workers['trials']} trials on one SQLite study: one worker "
              f"{workers['one']:.0f} s, two workers {workers['two']:.0f} s (ratio "
              f"{workers['two'] / workers['one']:.2f})", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--peer-search-time", type=float, default=900,
                        help="AutoLSTM's time budget, seconds (default 900)")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        # workers first, on a quiet machine: two processes need both cores. Trials of
        # equal cost (steps and ensemble fixed), so that the two studies do equal work
        equal = ("--param", "steps=1000", "--param", "ensemble=1")
        one = study(root / "one", 2 * args.trials, 0, 1, *equal)
        two = study(root / "two", 2 * args.trials, 0, 2, *equal)
        results["workers"] = {"trials": 2 * args.trials, "one": one["seconds"],
                              "two": two["seconds"]}
        print(f"workers: {results['workers']}", flush=True)
        results["lstmkit_studies"] = []
        for seed in range(args.seeds):
            row = {"seed": seed, **study(root / f"seed{seed}", args.trials, seed)}
            results["lstmkit_studies"].append(row)
            print(f"lstmkit study seed {seed}: {row}", flush=True)
    studies = results["lstmkit_studies"]
    results["lstmkit_mean"] = {key: statistics.mean(r[key] for r in studies)
                               for key in ("test_mase", "seconds", "validation_mase")}
    results["untuned"] = [{"seed": seed, **untuned(seed)} for seed in range(args.seeds)]
    if not args.no_peers:
        results["peers"] = peers(args.trials, args.peer_search_time)
        print(f"peers: {results['peers']}", flush=True)
    text = markdown(results, args.trials)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tune.md").write_text(text)
    (RESULTS / "tune.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
