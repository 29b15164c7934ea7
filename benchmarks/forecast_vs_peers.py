"""Forecasting: lstmkit against its peer libraries and the simple baselines, in one run.

The targets of issue 4, each measured on the same data and hold-out for every tool,
over several seeds (default 3):

- airline passengers (monthly, 144 points), the last 24 months held out, h = 24:
  mean MASE at most 1.2; Mauna Loa CO2 (weekly, averaged to months by lstmkit's
  loader, gaps interpolated), the last 36 months held out, h = 36: at most 0.40;
  and every seed below seasonal naive;
- fit at least 2 x faster than the fastest peer library (darts RNNModel and
  BlockRNNModel with model="LSTM", neuralforecast LSTM), same data and steps;
- predict under 5 ms per series after loading the saved model.

Protocol. Every round (one per seed) runs each side in a fresh process: lstmkit in
this venv, the peers in their own (``--peers``); the rounds alternate which side goes
first, and the one-minute load average is sampled around each. In a process, each
tool first fits WARMUP_STEPS optimizer steps on the first dataset, timed apart as
"warm-up" (the one-time set-up a fresh process pays, such as lazy imports and
Lightning's start-up, plus those few steps); the "fit" column is the median over
seeds of the fits that follow, the wall time of the fit call only (data already
loaded, imports excluded). Import time is ``python -c "import X"``
wall time, median of 3, interleaved across libraries. All tools run torch on one
thread (what the lstmkit CLI does: small networks run fastest on one thread, and
the machine has two shared cores). MASE is the M4 one: MAE over the in-sample MAE
of the seasonal-naive forecast (m = 12) on the training part.

With ``--peers`` the peers' venv is created under results/peers-venv (results/ is
git-ignored) and darts and neuralforecast are installed there through a constraints
file that pins only torch==2.13.0 (this machine's local CPU wheel): a dry run checks
first that pip resolves exactly that torch, and the installed one is checked after.

    .venv/bin/python benchmarks/forecast_vs_peers.py             # lstmkit + baselines
    .venv/bin/python benchmarks/forecast_vs_peers.py --peers     # + darts, neuralforecast
    .venv/bin/python benchmarks/forecast_vs_peers.py --quick     # one seed

Writes results/forecast_vs_peers.md and results/forecast_vs_peers.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import venvs  # noqa: E402
from venvs import TORCH_PIN  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "src" / "lstmkit" / "datasets"
PEERS_SCRIPT = Path(__file__).resolve().parent / "peers" / "run_peers.py"
RESULTS = ROOT / "results"
PEERS_VENV = RESULTS / "peers-venv"
PEERS_PACKAGES = ["darts", "neuralforecast"]
PEERS_CHECK = "import darts, neuralforecast"
LSTMKIT = "lstmkit"
LSTMKIT_ENSEMBLE = "lstmkit (ensemble=3)"
PREDICT_CALLS = 50  # lstmkit's predict is timed as the median of this many warm calls
IMPORT_REPEATS = 3
WARMUP_STEPS = 10


@dataclass(frozen=True)
class Case:
    """One dataset with its hold-out: what every tool is fitted and scored on."""

    name: str
    file: str
    target: str
    horizon: int
    window: int = 36
    resample: str | None = None
    mase_goal: float = 1.0

    def config(self, seed: int, ensemble: int = 1, **options: Any):
        from lstmkit.forecast import ForecastConfig

        return ForecastConfig(target=self.target, horizon=self.horizon, window=self.window,
                              resample=self.resample, seed=seed, ensemble=ensemble,
                              progress=False, **options)


CASES = [
    Case("airline", "airline_passengers.csv", "Passengers", horizon=24, mase_goal=1.2),
    Case("co2", "co2_mauna_loa_weekly.csv", "co2", horizon=36, resample="MS", mase_goal=0.40),
]


def load_average() -> float:
    return os.getloadavg()[0]


# --------------------------------------------------------------------------- lstmkit side


def lstmkit_round(seed: int) -> dict[str, Any]:
    """One seed of lstmkit on every case, in this (fresh) process, after a warm-up fit
    of WARMUP_STEPS steps on the first case (timed apart); what the worker writes."""
    import torch

    torch.set_num_threads(1)
    from lstmkit.data.splits import cut_data
    from lstmkit.forecast import Forecaster

    result: dict[str, Any] = {"seed": seed, "torch": torch.__version__,
                              "threads": torch.get_num_threads(), "datasets": {}}
    warmup = None
    for case in CASES:
        data = case.config(seed).load(DATASETS / case.file)
        train, _ = cut_data(data, -case.horizon)
        if warmup is None:
            started = time.perf_counter()
            Forecaster(case.config(seed, steps=WARMUP_STEPS)).fit(train)
            warmup = time.perf_counter() - started
        rows: dict[str, Any] = {}
        for tool, ensemble in ((LSTMKIT, 1), (LSTMKIT_ENSEMBLE, 3)):
            started = time.perf_counter()
            model = Forecaster(case.config(seed, ensemble)).fit(train)
            fit_seconds = time.perf_counter() - started  # the call, as for the peers
            scores = model.evaluate(data, holdout=case.horizon)
            rows[tool] = {"fit_s": fit_seconds, "fit_seconds_reported": model.fit_seconds,
                          "MASE": scores["model"]["MASE"],
                          "coverage": scores["model"]["coverage"],
                          "interval": scores["interval"], "predict_ms": _predict_ms(model, train)}
        rows[LSTMKIT]["warmup_s"] = warmup if case is CASES[0] else None
        rows["naive"] = {"MASE": scores["naive"]["MASE"]}
        rows["seasonal naive"] = {"MASE": scores["seasonal_naive"]["MASE"]}
        result["datasets"][case.name] = rows
    return result


def _predict_ms(model, history) -> float:
    """Milliseconds per series of predict() on a saved and reloaded model: median of
    warm calls, from already-loaded data (the data loading is the caller's)."""
    from lstmkit.forecast import Forecaster

    with tempfile.TemporaryDirectory() as directory:
        model.save(directory)
        loaded = Forecaster.load(directory)
    for _ in range(3):
        loaded.predict(history)
    timings = []
    for _ in range(PREDICT_CALLS):
        started = time.perf_counter()
        loaded.predict(history)
        timings.append(time.perf_counter() - started)
    return 1e3 * statistics.median(timings) / len(history.series)


def export_cases(folder: Path) -> Path:
    """Every case's series as lstmkit loads it (time, value), and the peers' spec."""
    from lstmkit.forecast import ForecastConfig
    from lstmkit.tasks.forecast.metrics import seasonality

    entries = []
    for case in CASES:
        data = case.config(0).load(DATASETS / case.file)
        series = data.series[0]
        csv = folder / f"{case.name}.csv"
        csv.write_text("time,value\n" + "".join(
            f"{t.isoformat()},{float(v)!r}\n" for t, v in zip(series.time, series.target)))
        season = seasonality(data.freq)
        entries.append({"name": case.name, "csv": str(csv), "freq": data.freq,
                        "horizon": case.horizon, "window": case.window, "season": season})
    defaults = ForecastConfig()
    spec = {"threads": 1, "steps": defaults.steps, "warmup_steps": WARMUP_STEPS,
            "batch_size": defaults.batch_size,
            "hidden": defaults.hidden_size, "datasets": entries}
    path = folder / "spec.json"
    path.write_text(json.dumps(spec, indent=1))
    return path


# --------------------------------------------------------------------------- peers' venv


def ensure_peers_venv(venv_dir: Path, log_path: Path) -> Path:
    """The peers' python, after creating its venv and installing darts and neuralforecast
    with only torch pinned (once; later runs reuse it). Raises RuntimeError with the
    reason when pip cannot resolve them with that torch."""
    python = venvs.venv_python(venv_dir)
    if venvs.ready(python, PEERS_CHECK):
        return python
    with venvs.pip_in(venv_dir, log_path) as pip, tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        print(f"resolving {' '.join(PEERS_PACKAGES)} with {TORCH_PIN} (dry run; log "
              f"{log_path}) ...", flush=True)
        pip("install", "--dry-run", "--report", str(report), "-c", str(pip.constraints),
            *PEERS_PACKAGES)
        resolved = {item["metadata"]["name"].lower(): item["metadata"]["version"]
                    for item in json.loads(report.read_text())["install"]}
        torch_version = resolved.get("torch", "(none)")
        if torch_version.split("+")[0] != TORCH_PIN.split("==")[1]:
            raise RuntimeError(f"pip would install torch {torch_version}, not {TORCH_PIN}")
        print(f"pip resolves torch {torch_version}, " + ", ".join(
            f"{name} {resolved[name]}" for name in PEERS_PACKAGES if name in resolved)
            + "; installing ...", flush=True)
        pip("install", "-c", str(pip.constraints), *PEERS_PACKAGES)
    if not venvs.ready(python, PEERS_CHECK):
        raise RuntimeError(f"installed, but darts/neuralforecast/{TORCH_PIN} do not import "
                           f"in {venv_dir}; see {log_path}")
    return python


def peers_round(python: Path, spec: Path, seed: int, log_path: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peers.json"
        with open(log_path, "a") as log:
            done = subprocess.run([str(python), str(PEERS_SCRIPT), "--spec", str(spec),
                                   "--seed", str(seed), "--out", str(out)],
                                  stdout=log, stderr=subprocess.STDOUT)
        if done.returncode:
            raise RuntimeError(f"the peers' run failed (exit {done.returncode}); the last "
                               f"lines of {log_path}:\n{venvs.tail(log_path)}")
        return json.loads(out.read_text())


# --------------------------------------------------------------------------- imports


def warm_native_kernel_cache() -> float:
    """Seconds to build (or load the cached build of) lstmkit's native kernel, in a
    fresh process. The layer builds it at first use even where it runs torch's fused
    kernel, and an edit of the C++ source invalidates the cache: done here once so no
    round's first fit pays a compile that depends on the state of the working tree."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from lstmkit.kernels import native; "
                    "native.unavailable_reason()"], check=True)
    return time.perf_counter() - started


def import_times(peers: Path | None) -> dict[str, float]:
    """``python -c "import X"`` wall seconds, median of IMPORT_REPEATS, interleaved. X is
    what the benchmark uses (``import darts.models`` alone is lazy: it imports no torch)."""
    statements = {"torch": (sys.executable, "import torch"),
                  LSTMKIT: (sys.executable, "from lstmkit.forecast import Forecaster")}
    if peers is not None:
        statements["darts"] = (str(peers), "from darts.models import BlockRNNModel, RNNModel")
        statements["neuralforecast"] = (str(peers), "from neuralforecast import "
                                        "NeuralForecast; from neuralforecast.models import LSTM")
    timings: dict[str, list[float]] = {name: [] for name in statements}
    for _ in range(IMPORT_REPEATS):
        for name, (python, statement) in statements.items():
            started = time.perf_counter()
            subprocess.run([python, "-c", statement], check=True, capture_output=True)
            timings[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in timings.items()}


def statsmodels_auto_ets(peers_module) -> dict[str, dict[str, Any]] | None:
    """AutoETS on every case when statsmodels imports here (it is not pinned)."""
    if importlib.util.find_spec("statsmodels") is None:
        return None
    import numpy as np

    from lstmkit.data.splits import cut_data

    rows = {}
    for case in CASES:
        data = case.config(0).load(DATASETS / case.file)
        history, actual = (np.asarray(part.series[0].target, dtype="float64")
                           for part in cut_data(data, -case.horizon))
        started = time.perf_counter()
        forecast = peers_module.auto_ets(history, case.horizon, 12)
        rows[case.name] = {"fit_s": time.perf_counter() - started,
                           "MASE": peers_module.mase(actual, forecast, history, 12)}
    return rows


def load_peers_module():
    spec = importlib.util.spec_from_file_location("run_peers", PEERS_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_peers"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- the table

PEER_LIBRARIES = ("darts", "neuralforecast")
COLUMNS = ["tool", "import s", "warm-up s", "fit s", "predict ms/series", "MASE mean",
           "MASE per seed", "coverage 80%", "fastest peer fit / fit"]


def summarise(rounds: list[dict[str, Any]], imports: dict[str, float],
              extra: dict[str, dict[str, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Per case, one summary row per tool: medians of times, means of MASE."""
    summary: dict[str, list[dict[str, Any]]] = {}
    for case in CASES:
        per_tool: dict[str, list[dict[str, Any]]] = {}
        for result in rounds:
            for tool, row in result["datasets"][case.name].items():
                if not tool.startswith("_"):
                    per_tool.setdefault(tool, []).append(row)
        for tool, row in extra.get(case.name, {}).items():
            per_tool.setdefault(tool, [row])
        rows = []
        for tool, records in per_tool.items():
            errors = [r["error"] for r in records if "error" in r]
            good = [r for r in records if "error" not in r]
            rows.append({
                "tool": tool,
                "import_s": imports.get(tool.split()[0]),
                "warmup_s": _median(r.get("warmup_s") for r in good),
                "fit_s": _median(r.get("fit_s") for r in good),
                "predict_ms": _median(r.get("predict_ms") for r in good),
                "MASE": statistics.fmean(r["MASE"] for r in good) if good else None,
                "MASE_seeds": [r["MASE"] for r in good],
                "coverage": _mean(r.get("coverage") for r in good),
                "errors": errors,
            })
        _dedupe_baselines(rows)
        peer_fits = [r["fit_s"] for r in rows
                     if r["tool"].split()[0] in PEER_LIBRARIES and r["fit_s"] is not None]
        for row in rows:
            if row["tool"].startswith(LSTMKIT) and peer_fits and row["fit_s"]:
                row["speedup"] = min(peer_fits) / row["fit_s"]
        summary[case.name] = rows
    return summary


def _dedupe_baselines(rows: list[dict[str, Any]]) -> None:
    """Naive and seasonal naive come from both sides: one row each (lstmkit's)."""
    seen = set()
    for row in list(rows):
        if row["tool"] in ("naive", "seasonal naive"):
            if row["tool"] in seen:
                rows.remove(row)
            else:
                row["MASE_seeds"] = row["MASE_seeds"][:1]  # deterministic: one value
                seen.add(row["tool"])


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def _cell(value: Any, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table_cells(row: dict[str, Any]) -> list[str]:
    seeds = " ".join(f"{v:.2f}" for v in row["MASE_seeds"])
    return [row["tool"] + (f" ({len(row['errors'])} failed)" if row["errors"] else ""),
            _cell(row["import_s"], 1), _cell(row["warmup_s"]), _cell(row["fit_s"]),
            _cell(row["predict_ms"], 1), _cell(row["MASE"]), seeds,
            _cell(row["coverage"]), _cell(row.get("speedup"), 1) + ("x" if "speedup" in row
                                                                    else "")]


def text_table(rows: list[dict[str, Any]]) -> str:
    cells = [COLUMNS] + [table_cells(r) for r in rows]
    widths = [max(len(line[k]) for line in cells) for k in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if k == 0 else c.rjust(w)
                       for k, (c, w) in enumerate(zip(line, widths))) for line in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(table_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def verdicts(case: Case, rows: list[dict[str, Any]], peers_ran: bool) -> list[str]:
    """The issue's targets for this case, each PASS or FAIL with its numbers."""
    by_tool = {r["tool"]: r for r in rows}
    naive = by_tool["seasonal naive"]["MASE"]
    lines = []
    for tool in (LSTMKIT, LSTMKIT_ENSEMBLE):
        row = by_tool[tool]
        checks = [
            (row["MASE"] <= case.mase_goal, f"mean MASE {row['MASE']:.3f} <= {case.mase_goal}"),
            (max(row["MASE_seeds"]) < naive,
             f"every seed below seasonal naive {naive:.3f} (worst {max(row['MASE_seeds']):.3f})"),
            (row["predict_ms"] < 5, f"predict {row['predict_ms']:.1f} ms/series < 5"),
        ]
        if peers_ran and "speedup" in row and tool == LSTMKIT:  # the default: one model
            checks.append((row["speedup"] >= 2,
                           f"fit {row['speedup']:.1f}x faster than the fastest peer >= 2x"))
        lines += [f"{tool}: {'PASS' if ok else 'FAIL'} {what}" for ok, what in checks]
    if not peers_ran:
        lines.append("speed against the peers: not measured (run with --peers)")
    return lines


# --------------------------------------------------------------------------- main


def run_worker(seed: int) -> dict[str, Any]:
    """lstmkit's round in a fresh process (this file with --worker-seed)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lstmkit.json"
        subprocess.run([sys.executable, __file__, "--worker-seed", str(seed),
                        "--worker-out", str(out)], check=True)
        return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--quick", action="store_true", help="one seed")
    parser.add_argument("--peers", action="store_true",
                        help=f"also run darts and neuralforecast (venv in {PEERS_VENV})")
    parser.add_argument("--worker-seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_seed is not None:
        args.worker_out.write_text(json.dumps(lstmkit_round(args.worker_seed)))
        return 0

    seeds = list(range(1 if args.quick else args.seeds))
    RESULTS.mkdir(exist_ok=True)
    peers_log = RESULTS / "forecast_vs_peers-peers.log"
    python = None
    peers_note = "peers not run (pass --peers to install and run darts and neuralforecast)"
    if args.peers:
        try:
            python = ensure_peers_venv(PEERS_VENV, RESULTS / "peers-venv-install.log")
            peers_note = f"peers run in {PEERS_VENV} (log {peers_log})"
        except RuntimeError as error:
            peers_note = f"peers NOT run: {error}"
            print(peers_note, file=sys.stderr, flush=True)
    peers_module = load_peers_module()

    native_seconds = warm_native_kernel_cache()
    loads = [load_average()]
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = export_cases(Path(tmp))
        if python is not None:
            spec = json.loads(spec_path.read_text())
            spec["auto_ets"] = True
            spec_path.write_text(json.dumps(spec))
        lstmkit_rounds, peer_rounds = [], []
        for k, seed in enumerate(seeds):
            sides = ["lstmkit", "peers"] if k % 2 == 0 else ["peers", "lstmkit"]
            for side in sides:
                if side == "lstmkit":
                    print(f"round {k + 1}/{len(seeds)}: lstmkit, seed {seed} ...", flush=True)
                    lstmkit_rounds.append(run_worker(seed))
                elif python is not None:
                    print(f"round {k + 1}/{len(seeds)}: peers, seed {seed} ...", flush=True)
                    peer_rounds.append(peers_round(python, spec_path, seed, peers_log))
                    spec = json.loads(spec_path.read_text())
                    spec["auto_ets"] = False  # deterministic: once is enough
                    spec_path.write_text(json.dumps(spec))
                loads.append(load_average())
    imports = import_times(python)
    loads.append(load_average())

    extra: dict[str, dict[str, dict[str, Any]]] = {}
    local_ets = statsmodels_auto_ets(peers_module)
    if local_ets is not None:
        for name, row in local_ets.items():
            extra.setdefault(name, {})["AutoETS (statsmodels)"] = row
    rounds = lstmkit_rounds + peer_rounds
    summary = summarise(rounds, imports, extra)

    checks = []
    for case in CASES:  # the peers' seasonal-naive MASE must equal lstmkit's
        ours = lstmkit_rounds[0]["datasets"][case.name]["seasonal naive"]["MASE"]
        for result in peer_rounds:
            theirs = result["datasets"][case.name]["seasonal naive"]["MASE"]
            if abs(theirs - ours) > 1e-9:
                checks.append(f"{case.name}: peers' seasonal-naive MASE {theirs} differs "
                              f"from lstmkit's {ours}: the peers saw other data")
    native_note = (f"lstmkit's native kernel cache warmed before the rounds in "
                   f"{native_seconds:.1f} s (fresh process: build if stale, else load)")
    load_note = (f"1-minute load average during the run: min {min(loads):.1f}, median "
                 f"{statistics.median(loads):.1f}, max {max(loads):.1f} "
                 f"({os.cpu_count()} cores, shared: times are noisy)")
    header = (f"forecast_vs_peers: {len(seeds)} seed(s) {seeds}, python "
              f"{platform.python_version()}, torch {lstmkit_rounds[0]['torch']} on 1 thread "
              f"per process (import torch alone: {imports['torch']:.1f} s); {peers_note}")
    sections = []
    for case in CASES:
        rows = summary[case.name]
        title = (f"{case.name}: last {case.horizon} points held out, h={case.horizon}, "
                 f"window {case.window}")
        sections.append((title, rows, verdicts(case, rows, bool(peer_rounds))))

    print(f"\n{header}\n{load_note}\n{native_note}")
    for title, rows, lines in sections:
        print(f"\n{title}\n{text_table(rows)}\n" + "\n".join(lines))
    for line in checks or ["peers' seasonal-naive MASE equals lstmkit's on every case"
                           if peer_rounds else ""]:
        if line:
            print(line)

    markdown = [f"# Forecasting: lstmkit against peers\n\n{header}\n\n{load_note}\n\n"
                f"{native_note}\n",
                "Columns: import s = `python -c \"import X\"` wall time (median of 3); "
                f"warm-up s = a first fit of {WARMUP_STEPS} steps in a fresh process (one-time "
                "set-up included); fit s = median over seeds of the fit call's wall time "
                "after that; predict = "
                "median of warm calls (lstmkit: after save and load); MASE per seed; "
                "coverage of the 0.1-0.9 interval; last column: fastest peer's fit s / "
                "this fit s.\n"]
    for title, rows, lines in sections:
        markdown.append(f"## {title}\n\n{markdown_table(rows)}\n\n"
                        + "\n".join(f"- {line}" for line in lines) + "\n")
    markdown += [f"- {line}" for line in checks]
    (RESULTS / "forecast_vs_peers.md").write_text("\n".join(markdown) + "\n")
    (RESULTS / "forecast_vs_peers.json").write_text(json.dumps({
        "seeds": seeds, "peers": peers_note, "load_average": loads,
        "native_kernel_warm_s": native_seconds, "imports": imports,
        "summary": summary, "rounds": rounds, "checks": checks,
        "verdicts": {title: lines for title, _, lines in sections}}, indent=1))
    print(f"\nwrote {RESULTS / 'forecast_vs_peers.md'} and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
